"""A small GitHub REST API on a real HTTP server (pytest-httpserver): statuses, combined status,
check runs, branch protection and a chat webhook, recording every request it receives."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

STATES = {"pending", "success", "failure", "error"}
PROTECTION_KEYS = {
    "required_status_checks",
    "enforce_admins",
    "required_pull_request_reviews",
    "restrictions",
}


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None
    raw: bytes
    raw_path: str


@dataclass
class GitHubAPI:
    """The endpoints the bundle uses, backed by in-memory state."""

    server: HTTPServer
    token: str
    repo: str = "octo/demo"
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhook: list[Any] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    fail_statuses: int = 0  # answer this many status posts with 500 first
    always_fail: bool = False
    echo_auth_on_error: bool = True  # a careless server that echoes credentials in errors
    public_reads: bool = True
    checks_forbidden: bool = False  # a token without checks:read

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile(r"^/.*$")).respond_with_handler(self._handle)

    @property
    def api_url(self) -> str:
        return self.server.url_for("/api/v3").rstrip("/")

    @property
    def webhook_url(self) -> str:
        return self.server.url_for("/hooks/chat/T000/B000/XXXXSECRETPATH")

    def requests(self, method: str | None = None, contains: str = "") -> list[Seen]:
        return [
            s for s in self.seen if (method is None or s.method == method) and contains in s.path
        ]

    def posted_states(self, sha: str) -> list[tuple[str, str]]:
        return [(s["context"], s["state"]) for s in self.statuses.get(sha, [])]

    # --- the server side --------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        seen = Seen(
            method=request.method,
            path=request.path,
            query=dict(request.args),
            body=body,
            authorization=request.headers.get("Authorization"),
            raw=raw,
            raw_path=str(request.environ.get("RAW_URI", "")).split("?")[0],
        )
        self.seen.append(seen)
        if request.path.startswith("/hooks/"):
            self.webhook.append(body)
            return Response("ok", status=200)
        prefix = f"/api/v3/repos/{self.repo}/"
        if not request.path.startswith(prefix):
            return _json({"message": "Not Found"}, 404)
        rest = request.path[len(prefix) :]
        authorized = seen.authorization == f"Bearer {self.token}"
        if self.always_fail:
            text = (
                f"server trouble; you sent {seen.authorization}" if self.echo_auth_on_error else ""
            )
            return _json({"message": text}, 500)
        if request.method == "GET" and not authorized and not self.public_reads:
            return _json({"message": "Requires authentication"}, 401)
        if request.method != "GET" and not authorized:
            return _json({"message": "Bad credentials"}, 401)
        if match := re.fullmatch(r"statuses/([0-9a-f]{7,40})", rest):
            return self._post_status(match[1], body, request.method)
        if match := re.fullmatch(r"commits/([0-9a-f]{7,40})/status", rest):
            return self._combined(match[1], seen.query)
        if match := re.fullmatch(r"commits/([0-9a-f]{7,40})/check-runs", rest):
            if self.checks_forbidden:
                return _json({"message": "Resource not accessible by integration"}, 403)
            runs = self.check_runs.get(match[1], [])
            return _json({"total_count": len(runs), "check_runs": runs})
        if match := re.fullmatch(r"branches/(.+)/protection", rest):
            if request.method != "PUT" or not isinstance(body, dict):
                return _json({"message": "Not Found"}, 404)
            if set(body) < PROTECTION_KEYS:
                return _json({"message": "Invalid request: missing keys"}, 422)
            self.protection[match[1]] = body
            return _json(body)
        return _json({"message": "Not Found"}, 404)

    def _post_status(self, sha: str, body: Any, method: str) -> Response:
        if method != "POST":
            return _json({"message": "Not Found"}, 404)
        if self.fail_statuses > 0:
            self.fail_statuses -= 1
            return _json({"message": "Server Error"}, 502)
        if not isinstance(body, dict) or body.get("state") not in STATES:
            return _json({"message": "Validation Failed: state"}, 422)
        if len(str(body.get("description", ""))) > 140:
            return _json({"message": "Validation Failed: description is too long"}, 422)
        self.statuses.setdefault(sha, []).append(body)
        return _json({"id": len(self.seen), **body}, 201)

    def _combined(self, sha: str, query: dict[str, str]) -> Response:
        latest: dict[str, dict[str, Any]] = {}
        for status in self.statuses.get(sha, []):
            latest[status["context"]] = status  # GitHub shows the latest per context
        items = list(latest.values())
        per_page = int(query.get("per_page", "30"))
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        states = {s["state"] for s in items}
        combined = (
            "failure"
            if states & {"failure", "error"}
            else "pending"
            if "pending" in states or not items
            else "success"
        )
        return _json({"state": combined, "sha": sha, "statuses": chunk})


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")
