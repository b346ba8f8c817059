"""Loopback endpoints that fail the way networks do: nothing listening, or never answering."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.pypiserver import free_port


def closed_url(path: str = "/") -> str:
    """An http URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}{path}"


@contextmanager
def silent_server() -> Iterator[str]:
    """An http URL on 127.0.0.1 that accepts connections and never answers (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # the kernel completes the handshakes; nobody ever reads or writes
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
