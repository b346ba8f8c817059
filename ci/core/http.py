"""The one HTTP client: an interface (stdlib urllib behind it), retry with backoff, one error.

Every HTTP call of the bundle (GitHub's REST API, chat webhooks, package index reads, the
OSV API) goes through :func:`send`, so the same failure ends the same way everywhere:

==================  =================================================  ====
kind                what happened                                      exit
==================  =================================================  ====
``unreachable``     refused, no route, DNS, timed out (every retry)    6
``server``          5xx, 429 or a rate-limited 403 after every retry   6
``malformed``       an answer that is not what the endpoint sends      6
                    (also one larger than the caller's limit)
``auth``            401 or 403: credentials missing or refused         3
``not found``       404 (where the caller does not expect one)         2
``refused``         any other 4xx, 3xx where none is expected          2
``bad url``         not an http(s) URL                                 2
==================  =================================================  ====

Answers are read up to a limit (``MAX_BODY`` unless the caller gives one): a larger one is
never read whole, and is not retried. Messages name the host only (webhook paths and
queries carry secrets) and pass through the redaction filter; credentials travel only in
headers.
"""

from __future__ import annotations

import enum
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from ci.core.errors import CIError, ExitCode
from ci.core.redact import redact

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Sending these again after a failure cannot do a thing twice; a POST is repeated only
# when its caller says so (a commit status, a webhook message: a duplicate is harmless).
SAFE_TO_REPEAT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
USER_AGENT = "noxgate"
TIMEOUT_S = 30.0
MAX_BODY = 16 * 2**20  # the largest answer read by default: an API answer, an index page
ERROR_BODY = 64 * 2**10  # of an error answer only the start is read: its message


class Failure(enum.StrEnum):
    """The kinds of HTTP failure; each has one exit code (``EXIT_CODES``)."""

    UNREACHABLE = "unreachable"
    SERVER = "server"
    MALFORMED = "malformed"
    AUTH = "auth"
    NOT_FOUND = "not found"
    REFUSED = "refused"
    BAD_URL = "bad url"


EXIT_CODES: Mapping[Failure, ExitCode] = {
    Failure.UNREACHABLE: ExitCode.TOOL_CRASHED,
    Failure.SERVER: ExitCode.TOOL_CRASHED,
    Failure.MALFORMED: ExitCode.TOOL_CRASHED,
    Failure.AUTH: ExitCode.PREFLIGHT,
    Failure.NOT_FOUND: ExitCode.USAGE,
    Failure.REFUSED: ExitCode.USAGE,
    Failure.BAD_URL: ExitCode.USAGE,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """What a server answered."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    def json(self) -> Any:  # noqa: ANN401 - JSON documents are untyped by nature
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body.strip() else None

    def excerpt(self, size: int = 200) -> str:
        """The server's message (JSON ``message``, else the body's start), one line, masked."""
        text = self.body.decode("utf-8", "replace")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("message"), str) and doc["message"]:
            text = doc["message"]
        return redact(" ".join(text.split())[:size])


class AnswerTooLargeError(Exception):
    """A server answered with more bytes than the caller reads: not what the endpoint sends."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        """``size``: what the server announced (None: it sent more than ``limit``)."""
        announced = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
        super().__init__(f"an answer of {announced}, over the limit of {limit:,}")
        self.limit = limit
        self.size = size


class HttpClient(Protocol):
    """Sends one request; the urllib client and test doubles share this shape."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = TIMEOUT_S,
        limit: int = MAX_BODY,
    ) -> Response:
        """Send it and return the response (any status); OSError when unreachable.

        AnswerTooLargeError when a 1xx/2xx answer's body is over ``limit`` bytes; an error
        answer's body is cut at ``ERROR_BODY`` (only its message is read).
        """
        ...


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects on the request's own host only: credentials never go elsewhere.

    A redirect to another host (pypiserver sends a project it lacks to PyPI) comes back
    as the 3xx response itself, for the caller to judge.
    """

    def redirect_request(  # noqa: PLR0917 - the signature urllib calls
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameHostRedirects)


class UrllibClient:
    """The real client: ``urllib.request`` from the standard library."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = TIMEOUT_S,
        limit: int = MAX_BODY,
    ) -> Response:
        """Send it and return the response (any status); OSError when unreachable."""
        if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
            msg = f"refusing to send a request to {host_of(url)!r}: only http(s) URLs are allowed"
            raise ValueError(msg)
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=body, method=method, headers={"User-Agent": USER_AGENT, **(headers or {})}
        )
        try:
            with _OPENER.open(request, timeout=timeout) as answer:
                headers = _lower(answer.headers.items())
                return Response(
                    status=answer.status, body=_read(answer, headers, limit), headers=headers
                )
        except urllib.error.HTTPError as exc:
            with exc:
                return Response(
                    status=exc.code,
                    body=exc.read(min(limit, ERROR_BODY)),
                    headers=_lower(exc.headers.items()),
                )
        except http.client.HTTPException as exc:  # a torn or garbled answer: the link failed
            msg = f"{type(exc).__name__}: {exc}"
            raise ConnectionError(msg) from None


def _read(answer: IO[bytes], headers: Mapping[str, str], limit: int) -> bytes:
    """The body, at most ``limit`` bytes; AnswerTooLargeError (unread) when it is longer."""
    length = headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > limit:
        raise AnswerTooLargeError(limit, int(length))
    body = answer.read(limit + 1)
    if len(body) > limit:
        raise AnswerTooLargeError(limit)
    return body


def host_of(url: str) -> str:
    """Scheme and host of ``url`` only: webhook paths and queries often carry secrets."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" if parts.scheme else "(no URL)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """How often and how patiently to retry: ``attempts`` tries, delays doubling from ``base_s``."""

    attempts: int = 4
    base_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def delays(self) -> list[float]:
        """The pauses between the tries."""
        return [self.base_s * 2**n for n in range(self.attempts - 1)]


class ApiError(CIError):
    """An HTTP call failed; ``kind`` decides the exit code. Never holds credentials."""

    def __init__(
        self,
        message: str,
        *,
        kind: Failure = Failure.UNREACHABLE,
        status: int | None = None,
        exhausted: bool = False,
    ) -> None:
        """``exhausted``: every retry failed, so more requests now would most likely fail too."""
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.exhausted = exhausted
        self.exit_code = EXIT_CODES[kind]


def failure_of(status: int) -> Failure:
    """The kind of failure an HTTP status is (when the caller did not expect it)."""
    if status in {401, 403}:
        return Failure.AUTH
    if status == 404:
        return Failure.NOT_FOUND
    if status in RETRY_STATUSES or status >= 500:
        return Failure.SERVER
    return Failure.REFUSED


def send(
    client: HttpClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    payload: object = None,
    body: bytes | None = None,
    retry: Retry | None = None,
    what: str = "request",
    timeout: float = TIMEOUT_S,
    ok: Collection[int] | None = None,
    repeat: bool | None = None,
    hints: Mapping[int, str] | None = None,
    limit: int = MAX_BODY,
) -> Response:
    """Send one request, retrying transient failures; ApiError when it never succeeds.

    ``payload`` goes as JSON (``body`` as given); ``ok``: the statuses that are an answer
    (default: 2xx); ``repeat``: whether a failed try may be sent again (default: for the
    methods in ``SAFE_TO_REPEAT``); ``hints``: per status, what the user should check;
    ``limit``: the most bytes of an answer read (a larger one fails at once, exit 6).
    """
    retry = retry or Retry()
    all_headers = {"Accept": "application/json", **(headers or {})}
    if payload is not None:
        body = json.dumps(payload).encode()
        all_headers["Content-Type"] = "application/json"
    delays = retry.delays() if (method in SAFE_TO_REPEAT if repeat is None else repeat) else []
    tries = len(delays) + 1
    problem, kind, status = "", Failure.UNREACHABLE, None
    for attempt in range(tries):
        try:
            answer = client.request(
                method, url, headers=all_headers, body=body, timeout=timeout, limit=limit
            )
        except AnswerTooLargeError as exc:  # the same server would answer the same again
            msg = (
                f"{what} failed: {host_of(url)} sent {exc}, which is not what it answers "
                "(a wrong URL or a broken server); check the URL"
            )
            raise ApiError(msg, kind=Failure.MALFORMED) from None
        except ValueError:  # a malformed URL: retrying cannot help
            msg = f"{what} failed: {host_of(url)} is not a usable http(s) URL; check it"
            raise ApiError(msg, kind=Failure.BAD_URL) from None
        except OSError as exc:
            reason = getattr(exc, "reason", exc)
            detail = redact(str(reason)) or type(reason).__name__
            problem = f"{host_of(url)} unreachable ({type(reason).__name__}: {detail})"
            kind, status = Failure.UNREACHABLE, None
        else:
            if (answer.status in ok) if ok is not None else answer.ok:
                return answer
            status, kind = answer.status, failure_of(answer.status)
            problem = f"HTTP {answer.status}: {answer.excerpt()}".rstrip(": ")
            if not _transient(answer):
                hint = (hints or {}).get(answer.status, "")
                msg = f"{what} failed ({problem})" + (f"; {hint}" if hint else "")
                raise ApiError(msg, kind=kind, status=status)
            kind = Failure.SERVER  # a rate-limited 403 that stayed limited is server trouble
        if attempt < len(delays):
            retry.sleep(delays[attempt])
    check = "check the URL and the network" if kind is Failure.UNREACHABLE else "try again later"
    after = f" after {tries} attempt(s)" if tries > 1 else ""
    msg = f"{what} failed{after} ({problem}); {check}"
    raise ApiError(msg, kind=kind, status=status, exhausted=True)


def parse_json(answer: Response, what: str) -> Any:  # noqa: ANN401 - JSON is untyped by nature
    """The answer's JSON; ApiError (malformed, exit 6) when it is not JSON."""
    try:
        return answer.json()
    except ValueError:
        msg = f"{what}: the server answered with something that is not JSON"
        raise ApiError(msg, kind=Failure.MALFORMED, status=answer.status) from None


def _transient(answer: Response) -> bool:
    """Server trouble and rate limits pass; everything else will fail the same way again."""
    if answer.status in RETRY_STATUSES or answer.status >= 500:
        return True
    headers = _lower(answer.headers.items())
    limited = headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    return answer.status == 403 and limited


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {key.lower(): value for key, value in items}
