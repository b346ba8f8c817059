"""The one GitHub REST client: base URL, token, API version, pagination, on ``ci.core.http``.

Statuses, branch protection, releases and deployments all talk to GitHub through it, so
the token rule (``GITHUB_TOKEN``, else ``GH_TOKEN``) and the exit code of each kind of
failure (``ci.core.http.EXIT_CODES``) are the same for every command. The token only
ever travels in the Authorization header.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from ci.core.errors import UsageError
from ci.core.http import (
    TIMEOUT_S,
    ApiError,
    Failure,
    HttpClient,
    Response,
    Retry,
    parse_json,
    send,
)

TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
API_VERSION = "2022-11-28"
DEFAULT_API_URL = "https://api.github.com"
MAX_PAGES = 50  # 5,000 items at 100 a page: more means a loop, not a repository
HINTS = {
    401: "the token was rejected: check GITHUB_TOKEN (or GH_TOKEN)",
    403: "the token may not do this: grant the job the permission it needs "
    "(`permissions:` in the workflow) or use a token that has it",
    404: "no such repository or no access: check GITHUB_REPOSITORY and the token",
    422: "GitHub refused the request as sent",
}


def token_from(env: Mapping[str, str]) -> str:
    """The API token: ``GITHUB_TOKEN``, else ``GH_TOKEN`` ("" when neither is set)."""
    return next((env[name] for name in TOKEN_VARS if env.get(name)), "")


def api_url_from(env: Mapping[str, str]) -> str:
    """The REST API root: ``GITHUB_API_URL``, else github.com's."""
    return (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


class GitHubClient:
    """One repository's REST API through an HttpClient (retries, timeouts, one error type)."""

    def __init__(
        self,
        http: HttpClient,
        *,
        api_url: str,
        repository: str,
        token: str,
        retry: Retry | None = None,
        timeout: float = TIMEOUT_S,
    ) -> None:
        """Talk to ``api_url`` about ``repository`` (owner/name) with ``token`` ("" for none)."""
        repository = repository.strip().strip("/")
        if repository.count("/") != 1:
            msg = "GITHUB_REPOSITORY is not set to owner/name; set it or pass --repo OWNER/NAME"
            raise UsageError(msg)
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self.retry = retry or Retry()
        self.timeout = timeout
        self._token = token

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        http: HttpClient,
        *,
        retry: Retry | None = None,
        repository: str | None = None,
    ) -> GitHubClient:
        """A client for ``GITHUB_REPOSITORY`` (or ``repository``) at ``GITHUB_API_URL``."""
        return cls(
            http,
            api_url=api_url_from(env),
            repository=repository or env.get("GITHUB_REPOSITORY", ""),
            token=token_from(env),
            retry=retry,
        )

    @property
    def authenticated(self) -> bool:
        """True when requests carry a token."""
        return bool(self._token)

    def repo_url(self, *parts: str, **query: str | int) -> str:
        """``<api>/repos/<owner>/<name>/<parts...>[?query]``."""
        url = "/".join([self.api_url, "repos", self.repository, *parts])
        return f"{url}?{urllib.parse.urlencode(query)}" if query else url

    def request(
        self,
        method: str,
        url: str,
        *,
        payload: object = None,
        data: bytes | None = None,
        content_type: str | None = None,
        ok: Collection[int] | None = None,
        what: str | None = None,
        repeat: bool | None = None,
    ) -> Response:
        """One call; ApiError naming the method, path and GitHub's message when not ``ok``."""
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if content_type and payload is None:
            headers["Content-Type"] = content_type
        path = urllib.parse.urlsplit(url).path
        return send(
            self.http,
            method,
            url,
            headers=headers,
            payload=payload,
            body=data,
            retry=self.retry,
            what=what or f"GitHub API {method} {path}",
            timeout=self.timeout,
            ok=ok,
            repeat=repeat,
            hints=HINTS,
        )

    def json(
        self,
        method: str,
        url: str,
        *,
        payload: object = None,
        what: str | None = None,
        repeat: bool | None = None,
    ) -> Any:  # noqa: ANN401 - GitHub's JSON has the endpoint's shape
        """One call and its JSON answer; ApiError (malformed) when the answer is not JSON."""
        answer = self.request(method, url, payload=payload, what=what, repeat=repeat)
        return parse_json(answer, what or f"GitHub API {method} {urllib.parse.urlsplit(url).path}")

    def pages(self, url: str, *, what: str | None = None) -> Iterator[Any]:
        """Each page's JSON of a listing, following ``Link: rel="next"``."""
        next_url: str | None = url
        for _ in range(MAX_PAGES):
            if next_url is None:
                return
            answer = self.request("GET", next_url, what=what)
            yield parse_json(answer, what or "GitHub API listing")
            next_url = next_link(answer)
        msg = f"{what or 'GitHub API listing'}: more than {MAX_PAGES} pages; the server loops"
        raise ApiError(msg, kind=Failure.MALFORMED)


def next_link(answer: Response) -> str | None:
    """The ``rel="next"`` URL of a paged answer's Link header, or None on the last page."""
    for part in answer.headers.get("link", "").split(","):
        match = re.search(r'<([^>]+)>\s*;\s*rel="next"', part)
        if match:
            return match.group(1)
    return None
