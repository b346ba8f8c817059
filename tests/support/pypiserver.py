"""A real pypiserver on 127.0.0.1 for tests, and a proxy in front of it that fails uploads.

Use the ``pypiserver`` fixture (tests/conftest.py) for an open index, or ``start()`` /
``running()`` directly, e.g. with ``auth=("user", "secret")`` for an index that needs a
password to upload. ``FlakyIndex`` forwards to a real index but answers the Nth upload with
HTTP 500 (or drops the connection), to exercise partial uploads.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

with warnings.catch_warnings():  # passlib imports the deprecated crypt module on 3.11/3.12
    warnings.simplefilter("ignore", DeprecationWarning)
    from passlib.apache import HtpasswdFile

READY_TIMEOUT_S = 60.0  # a loaded machine with parallel test workers starts it slowly


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PypiServer:
    """A running ``pypi-server run`` process and where it keeps its packages."""

    url: str
    packages: Path
    process: subprocess.Popen[bytes]
    log: Path
    username: str | None = None
    password: str | None = None

    def twine_env(self) -> dict[str, str]:
        """TWINE_* variables that upload here (twine wants some even when nothing checks them)."""
        return {
            "TWINE_USERNAME": self.username or "anonymous",
            "TWINE_PASSWORD": self.password or "anonymous",
            "TWINE_NON_INTERACTIVE": "1",
        }

    @property
    def simple_url(self) -> str:
        """The PEP 503 simple index."""
        return f"{self.url}simple/"

    def files(self) -> dict[str, bytes]:
        """File name -> bytes of every package file the index stores."""
        return {p.name: p.read_bytes() for p in sorted(self.packages.iterdir()) if p.is_file()}

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _command() -> list[str]:
    script = Path(sys.executable).with_name("pypi-server")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pypiserver"]


def start(
    packages: Path, *, auth: tuple[str, str] | None = None, port: int | None = None
) -> PypiServer:
    """Start pypiserver on 127.0.0.1 serving ``packages``; returns once it answers."""
    packages.mkdir(parents=True, exist_ok=True)
    log = packages.parent / f"{packages.name}.pypiserver.log"
    if auth is None:
        access = ["-a", ".", "-P", "."]  # no passwords at all
    else:
        htpasswd = packages.parent / f"{packages.name}.htpasswd"
        users = HtpasswdFile(str(htpasswd), new=True)
        users.set_password(*auth)
        users.save()
        access = ["-a", "update", "-P", str(htpasswd)]  # uploads and removals need the password
    port = port or free_port()
    argv = [
        *_command(),
        "run",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        *access,
        "--disable-fallback",  # a miss must be a 404 here, never a redirect to pypi.org
        "--server",
        "wsgiref",
        str(packages),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    server = PypiServer(
        url=f"http://127.0.0.1:{port}/",
        packages=packages,
        process=process,
        log=log,
        username=auth[0] if auth else None,
        password=auth[1] if auth else None,
    )
    _wait_ready(server)
    return server


def _wait_ready(server: PypiServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            msg = (
                f"pypi-server exited {server.process.returncode}: {server.log.read_text()[-2000:]}"
            )
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(f"{server.url}health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    server.stop()
    msg = (
        f"pypi-server did not answer within {READY_TIMEOUT_S:g} s: {server.log.read_text()[-2000:]}"
    )
    raise RuntimeError(msg)


@contextlib.contextmanager
def running(packages: Path, *, auth: tuple[str, str] | None = None) -> Iterator[PypiServer]:
    """A pypiserver for the duration of the ``with`` block."""
    server = start(packages, auth=auth)
    try:
        yield server
    finally:
        server.stop()


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


@dataclass
class FlakyIndex:
    """A proxy to a real index whose uploads fail from attempt number ``fail_on`` (1-based) on.

    ``mode="500"`` answers them with HTTP 500 (twine retries a 5xx a few times, so every
    later attempt fails too); ``mode="drop"`` closes the connection without an answer, like
    a server dying mid-upload. Everything else (reads, removals) is forwarded unchanged.
    """

    upstream: str
    fail_on: int = 2
    mode: str = "500"
    uploads: int = 0
    removals: int = 0
    _server: http.server.ThreadingHTTPServer | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self) -> FlakyIndex:
        """Start serving in a background thread."""
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving."""
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self
        target = urllib.parse.urlsplit(self.upstream)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if b"file_upload" in body:
                    proxy.uploads += 1
                    if proxy.uploads >= proxy.fail_on:
                        if proxy.mode == "drop":
                            self.close_connection = True
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        self.send_error(500, "Internal Server Error (injected by FlakyIndex)")
                        return
                if b"remove_pkg" in body:
                    proxy.removals += 1
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() in _HOP_BY_HOP:
                        continue
                    if key.lower() == "location":  # keep redirects on the proxy
                        upstream_host = f"{target.hostname}:{target.port}"
                        self.send_header(key, value.replace(upstream_host, self.headers["Host"]))
                        continue
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

        return Handler
