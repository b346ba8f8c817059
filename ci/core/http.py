"""A small HTTP client interface (stdlib urllib behind it) with retry and backoff."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ci.core.errors import ToolError
from ci.core.redact import redact

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "noxgate"


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
        """The start of the body as text, one line, masked (servers may echo what they got)."""
        text = self.body.decode("utf-8", "replace").replace("\n", " ").strip()
        return redact(text[:size])


class HttpClient(Protocol):
    """Sends one request; the urllib client and test doubles share this shape."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """Send it and return the response (any status); OSError when unreachable."""
        ...


class UrllibClient:
    """The real client: ``urllib.request`` from the standard library."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """Send it and return the response (any status); OSError when unreachable."""
        if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
            msg = f"refusing to send a request to {host_of(url)!r}: only http(s) URLs are allowed"
            raise ValueError(msg)
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=body, method=method, headers={"User-Agent": USER_AGENT, **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                return Response(
                    status=answer.status, body=answer.read(), headers=_lower(answer.headers.items())
                )
        except urllib.error.HTTPError as exc:
            with exc:
                return Response(
                    status=exc.code, body=exc.read(), headers=_lower(exc.headers.items())
                )


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


class ApiError(ToolError):
    """A server could not be reached or kept failing; the message never holds credentials."""

    def __init__(self, message: str, *, exhausted: bool = False) -> None:
        """``exhausted``: every retry failed, so more requests now would most likely fail too."""
        super().__init__(message)
        self.exhausted = exhausted


def send(
    client: HttpClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    payload: object = None,
    retry: Retry | None = None,
    what: str = "request",
) -> Response:
    """Send ``payload`` as JSON, retrying transient failures; ApiError when it never succeeds."""
    retry = retry or Retry()
    body = None if payload is None else json.dumps(payload).encode()
    all_headers = {"Accept": "application/json", **(headers or {})}
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    delays = retry.delays()
    problem = ""
    for attempt in range(len(delays) + 1):
        try:
            answer = client.request(method, url, headers=all_headers, body=body)
        except ValueError as exc:  # a malformed URL: retrying cannot help
            del exc
            msg = f"{what} failed: {host_of(url)} is not a usable http(s) URL; check it"
            raise ApiError(msg) from None
        except OSError as exc:
            problem = f"{host_of(url)} unreachable ({type(exc).__name__}: {redact(str(exc))})"
        else:
            if answer.ok:
                return answer
            problem = f"HTTP {answer.status}: {answer.excerpt()}".rstrip(": ")
            if not _transient(answer):
                msg = f"{what} failed ({problem})"
                raise ApiError(msg)
        if attempt < len(delays):
            retry.sleep(delays[attempt])
    msg = f"{what} failed after {len(delays) + 1} attempt(s) ({problem})"
    raise ApiError(msg, exhausted=True)


def _transient(answer: Response) -> bool:
    """Server trouble and rate limits pass; everything else will fail the same way again."""
    if answer.status in RETRY_STATUSES:
        return True
    headers = _lower(answer.headers.items())
    limited = headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    return answer.status == 403 and limited


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {key.lower(): value for key, value in items}
