"""A local OSV advisory database: loading, PEP 440 matching, and an OSV-compatible HTTP server."""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ci.core import http
from ci.core.errors import CIError, ConfigError, ToolError, UsageError

SUFFIXES = (".yaml", ".yml", ".json")
Record = dict[str, Any]
_MAX_PAGES = 100  # an OSV answer that keeps handing out page tokens is not an answer


class Source(Protocol):
    """What the OSV-compatible server answers from: a local database or an upstream API."""

    def query(self, name: str, version: str) -> list[Record]:
        """The records affecting ``name`` ``version``."""
        ...

    def get(self, vuln_id: str) -> Record | None:
        """One record by id, or None."""
        ...


@functools.cache
def _yaml_loader() -> Any:  # noqa: ANN401 - a PyYAML loader class, untyped when imported late
    """A safe YAML loader that keeps dates as strings, as OSV's JSON carries them."""
    import yaml  # noqa: PLC0415 - PyYAML lives in the security group, not in every session

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~10x faster

    class Loader(base):  # type: ignore[misc]
        """A safe loader without the timestamp resolver."""

    Loader.yaml_implicit_resolvers = {
        key: [(tag, rx) for tag, rx in value if tag != "tag:yaml.org,2002:timestamp"]
        for key, value in base.yaml_implicit_resolvers.items()
    }
    return Loader


def _yaml_load(text: str) -> object:
    import yaml  # noqa: PLC0415 - see _yaml_loader

    return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass


# The advisory database is the user's input (--advisory-db, $CI_ADVISORY_DB, [tool.ci]
# advisory_db), as a waiver or a baseline is: a damaged file in it is theirs to fix, exit 2
# (ConfigError), not a tool that broke (6).


def read_advisory(path: Path) -> object:
    """A YAML or JSON file's data; ConfigError naming the file and what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else _yaml_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"advisory {path} cannot be read ({exc}); fix or remove the file"
        raise ConfigError(msg) from None
    except ValueError as exc:  # json.JSONDecodeError
        msg = f"advisory {path} is not valid JSON ({exc}); fix or remove the file"
        raise ConfigError(msg) from None
    except Exception as exc:  # yaml.YAMLError: PyYAML is imported late
        msg = f"advisory {path} is not valid YAML ({_yaml_problem(exc)}); fix or remove the file"
        raise ConfigError(msg) from None


def _yaml_problem(exc: Exception) -> str:
    """Where and what PyYAML found wrong, on one line (``line 2, column 5: ...``)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
    problem = " ".join(str(problem).split())
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def as_record(path: Path, data: object) -> Record:
    """``data`` read from ``path`` as an OSV record; ConfigError naming what it lacks."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        msg = f"advisory {path} is not an OSV record (no id); fix or remove the file"
        raise ConfigError(msg)
    if "modified" not in data:  # OSV requires it: a JSON file with an "id" is not enough
        msg = f"advisory {path} is not an OSV record (no modified); fix or remove the file"
        raise ConfigError(msg)
    return data


def load_record(path: Path) -> Record:
    """One OSV record from a YAML or JSON file; ConfigError naming the file when it is not."""
    return as_record(path, read_advisory(path))


def affects(record: Mapping[str, Any], name: str, version: str) -> bool:
    """True when ``record`` (not withdrawn) affects PyPI package ``name`` at ``version``."""
    if record.get("withdrawn"):
        return False
    wanted = canonicalize_name(name)
    parsed = _version(version)
    for affected in record.get("affected") or []:
        package = affected.get("package") or {}
        if package.get("ecosystem") != "PyPI":
            continue
        if canonicalize_name(str(package.get("name", ""))) != wanted:
            continue
        for listed in affected.get("versions") or []:
            if str(listed) == version or (parsed is not None and _version(str(listed)) == parsed):
                return True
        if parsed is None:
            continue
        for span in affected.get("ranges") or []:
            if span.get("type") == "ECOSYSTEM" and in_range(span.get("events") or [], parsed):
                return True
    return False


def in_range(events: list[Mapping[str, Any]], version: Version) -> bool:
    """Whether ``version`` lies in an OSV ECOSYSTEM range (introduced/fixed/last_affected)."""
    steps: list[tuple[Version, int, str]] = []
    for event in events:
        for kind, order in (("introduced", 0), ("fixed", 1), ("last_affected", 1)):
            if kind in event:
                raw = str(event[kind])
                at = Version("0") if raw == "0" else _version(raw)
                if at is not None:  # an unparseable bound is skipped: reports more, not less
                    steps.append((at, order, kind))
    affected = False
    for at, _, kind in sorted(steps):
        if kind == "introduced" and version >= at:
            affected = True
        elif (kind == "fixed" and version >= at) or (kind == "last_affected" and version > at):
            affected = False
    return affected


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _fix_hint(root: Path) -> str:
    """How to point at the records: at ``root/vulns`` when that is where they are."""
    folder = root / "vulns" if (root / "vulns").is_dir() else Path(".../vulns")
    return (
        "point --advisory-db, $CI_ADVISORY_DB or [tool.ci] advisory_db at the folder that "
        f"holds the *.json/*.yaml OSV records (directly or one folder per package), e.g. {folder}"
    )


class AdvisoryDB:
    """A folder of OSV records, read lazily: ``<db>/<package>/<ID>.yaml`` like the PyPA database.

    A package's folder is read on its first query; records lying directly in the folder
    (a flat layout) are read once, on the first query of any package. A folder that holds
    no records in either layout is refused: served, it would answer "no vulnerabilities".
    """

    def __init__(self, root: Path) -> None:
        """Index ``root``; UsageError when it is not a folder or holds no OSV records."""
        if not root.is_dir():
            msg = (
                f"advisory database {root} does not exist or is not a folder; "
                "pass --advisory-db DIR with a folder of OSV records"
            )
            raise UsageError(msg)
        self.root = root
        self._folders: dict[str, list[Path]] = {}
        self._loose: list[Path] = []
        self._by_id: dict[str, Path] = {}
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.is_dir():
                files = sorted(
                    Path(e.path)
                    for e in os.scandir(entry.path)
                    if Path(e.name).suffix in SUFFIXES and e.is_file()
                )
                self._folders.setdefault(canonicalize_name(entry.name), []).extend(files)
            elif Path(entry.name).suffix in SUFFIXES and entry.is_file():
                self._loose.append(Path(entry.path))
        for files in (self._loose, *self._folders.values()):
            for path in files:
                self._by_id.setdefault(path.stem, path)
        self._loaded: set[str] = set()
        self._index: dict[str, list[Record]] = {}
        self._records: dict[str, Record] = {}
        self._lock = threading.Lock()
        # the first damaged record a query met (queries run in the server's threads, whose
        # errors reach pip-audit only as "server error"): the audit raises it afterwards
        self.problem: CIError | None = None
        self._check()

    def _check(self) -> None:
        """UsageError unless the folder holds records and the first one is an OSV record.

        A first file that cannot be read or parsed is named with what is wrong with it (a
        damaged database); one that parses but is not a record says this is not the folder.
        """
        if not self._by_id:
            msg = f"advisory database {self.root} holds no OSV records; {_fix_hint(self.root)}"
            raise UsageError(msg)
        first = next(iter(self._by_id.values()))
        data = read_advisory(first)
        try:
            as_record(first, data)
        except ConfigError:
            msg = f"advisory database {self.root} holds no OSV records ({first} is not one); "
            raise UsageError(msg + _fix_hint(self.root)) from None

    def __len__(self) -> int:
        """How many record files the database holds."""
        return len(self._by_id)

    def _record(self, path: Path) -> Record:
        """The record in ``path``; a damaged one is kept as ``problem`` and raised."""
        try:
            return load_record(path)
        except CIError as exc:
            self.problem = self.problem or exc
            raise

    def _load(self, key: str, files: list[Path]) -> None:
        if key in self._loaded:
            return
        for path in files:
            record = self._record(path)
            self._records.setdefault(record["id"], record)
            names = {
                canonicalize_name(str((a.get("package") or {}).get("name", "")))
                for a in record.get("affected") or []
                if (a.get("package") or {}).get("ecosystem") == "PyPI"
            }
            for name in names:
                self._index.setdefault(name, []).append(record)
        self._loaded.add(key)

    def query(self, name: str, version: str) -> list[Record]:
        """The records (not withdrawn) that affect ``name`` at ``version``, by id."""
        wanted = canonicalize_name(name)
        with self._lock:
            self._load("\0loose", self._loose)
            self._load(wanted, self._folders.get(wanted, []))
            candidates = list(self._index.get(wanted, []))
        found = {r["id"]: r for r in candidates if affects(r, wanted, version)}
        return [found[key] for key in sorted(found)]

    def get(self, vuln_id: str) -> Record | None:
        """The record ``vuln_id`` (withdrawn ones too), or None.

        Found by file name, or among the records already read; never by reading the whole
        database, which would cost seconds for an alias (a CVE id) that has no record here.
        """
        with self._lock:
            if vuln_id not in self._records and vuln_id in self._by_id:
                record = self._record(self._by_id[vuln_id])
                self._records.setdefault(record["id"], record)
            return self._records.get(vuln_id)


class Upstream:
    """An OSV API behind the local server, every answer checked before pip-audit sees it.

    pip-audit takes ``[]``, ``null`` or ``{"vulns": {}}`` for "no vulnerabilities"; relayed
    through here, anything but an OSV query result is a problem recorded in ``problem``
    (the first one), answered as a server error, so the audit fails instead of passing.
    """

    def __init__(self, api: str, client: http.HttpClient, retry: http.Retry | None = None) -> None:
        """Relay queries to the OSV API at ``api`` (``https://api.osv.dev``) with ``client``."""
        self.api = api.rstrip("/")
        self.client = client
        self.retry = retry or http.Retry(attempts=2)
        self.problem = ""
        self.unreachable = False

    def query(self, name: str, version: str) -> list[Record]:
        """The upstream's records for ``name`` ``version``; ToolError for anything else."""
        if self.problem:  # one broken answer condemns the audit: do not ask again per pin
            raise ToolError(self.problem)
        payload: dict[str, Any] = {
            "package": {"name": name, "ecosystem": "PyPI"},
            "version": version,
        }
        found: list[Record] = []
        for _ in range(_MAX_PAGES):
            try:
                answer = http.send(
                    self.client,
                    "POST",
                    f"{self.api}/v1/query",
                    payload=payload,
                    retry=self.retry,
                    what=f"the OSV query for {name} {version}",
                    repeat=True,  # a query changes nothing: asking again is safe
                )
            except http.ApiError as exc:
                self.unreachable = exc.kind is http.Failure.UNREACHABLE
                raise self._fail(str(exc)) from None
            records, token = self._read(answer, name, version)
            found += records
            if not token:
                return found
            payload["page_token"] = token
        raise self._fail(f"the OSV API kept paging its answer for {name} {version}")

    def _read(
        self, answer: http.Response, name: str, version: str
    ) -> tuple[list[Record], str | None]:
        """The records and next page token of one answer; ToolError when it is not a result."""
        where = f"the OSV API at {http.host_of(self.api)} answered the query for {name} {version}"
        try:
            data = answer.json()
        except ValueError:
            problem = f"{where} with something that is not JSON: {answer.excerpt(80)}"
            raise self._fail(problem) from None
        if not isinstance(data, dict):
            raise self._fail(f"{where} with {type(data).__name__}, not an OSV result object")
        vulns = data.get("vulns", [])  # {} is OSV's "no vulnerabilities"
        if not isinstance(vulns, list) or not all(
            isinstance(v, dict) and isinstance(v.get("id"), str) for v in vulns
        ):
            raise self._fail(f"{where} with a `vulns` that is not a list of records with ids")
        token = data.get("next_page_token")
        return vulns, (str(token) if token else None)

    def _fail(self, problem: str) -> ToolError:
        self.problem = self.problem or problem
        return ToolError(problem)

    def get(self, vuln_id: str) -> Record | None:
        """Records are fetched from the API directly (``/v1/vulns/<id>``), not through here."""
        del vuln_id
        return None


class _Handler(BaseHTTPRequestHandler):
    """``/v1/query``, ``/v1/querybatch`` and ``/v1/vulns/<id>`` over an AdvisoryDB."""

    server: _Server
    protocol_version = "HTTP/1.1"
    # headers and body go out as two writes; with Nagle's algorithm each keep-alive
    # response would wait for the client's delayed ACK (~40 ms per package)
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ANN401
        """Quiet: pip-audit makes one request per package."""

    def _send(self, status: HTTPStatus, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._send(
            status, {"code": 3 if status is HTTPStatus.BAD_REQUEST else 5, "message": message}
        )

    def do_GET(self) -> None:
        """``/v1/vulns/<id>``: one record."""
        prefix = "/v1/vulns/"
        if not self.path.startswith(prefix):
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        try:
            record = self.server.db.get(self.path[len(prefix) :])
        except CIError as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))
            return
        if record is None:
            self._error(HTTPStatus.NOT_FOUND, "Bug not found.")
        else:
            self._send(HTTPStatus.OK, record)

    def do_POST(self) -> None:
        """``/v1/query`` and ``/v1/querybatch``."""
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "body is not JSON")
            return
        try:
            if self.path == "/v1/query":
                vulns = self._query(body)
                self._send(HTTPStatus.OK, {"vulns": vulns} if vulns else {})
            elif self.path == "/v1/querybatch":
                queries = body.get("queries") if isinstance(body, dict) else None
                if not isinstance(queries, list):
                    raise ValueError("querybatch needs a list of queries")
                results = []
                for query in queries:
                    found = [
                        {"id": v["id"], "modified": v.get("modified", "")}
                        for v in self._query(query)
                    ]
                    results.append({"vulns": found} if found else {})
                self._send(HTTPStatus.OK, {"results": results})
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except CIError as exc:  # a damaged record, an upstream that answered wrongly
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))

    def _query(self, query: object) -> list[Record]:
        if not isinstance(query, dict):
            raise ValueError("a query must be an object")
        package = query.get("package") or {}
        name, version = package.get("name"), query.get("version")
        if package.get("purl") and not name:
            raise ValueError("purl queries are not supported; send package name and ecosystem")
        if not isinstance(name, str) or not isinstance(version, str):
            raise ValueError("a query needs package.name and version")
        if package.get("ecosystem", "PyPI") != "PyPI":
            return []
        return self.server.db.query(name, version)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], db: Source) -> None:
        self.db = db
        super().__init__(address, _Handler)


def make_server(db: Source, port: int = 0, host: str = "127.0.0.1") -> _Server:
    """A bound (not yet serving) OSV-compatible server; UsageError when the port is taken."""
    try:
        return _Server((host, port), db)
    except OSError as exc:
        msg = f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port"
        raise UsageError(msg) from None


def base_url(server: _Server) -> str:
    """``http://host:port`` of a bound server."""
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


@contextmanager
def serving(db: Source, port: int = 0) -> Iterator[str]:
    """Serve ``db`` (a database or a checked upstream) on 127.0.0.1 in a thread; yields its URL."""
    server = make_server(db, port)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="osv-mirror", daemon=True
    )
    thread.start()
    try:
        yield base_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
