"""A small stateful stand-in for GitHub's release and deployment endpoints (pytest-httpserver).

Drafts behave as on GitHub: the by-tag endpoint answers only for published releases, the
list of releases (newest first, paged) holds drafts too, a draft's page is
``releases/tag/untagged-...`` until it is published.

Deployments are listed newest first, filtered by ``environment``; a deployment's statuses
too. The fake checks what a real server would refuse (a status state GitHub does not
know, a deployment without a ref) and does not add ``inactive`` statuses by itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

REPO = "owner/project"
# made at run time: a token-shaped literal here would (rightly) trip the secrets gate
TOKEN = "test-token-" + secrets.token_hex(16)
RELEASE_METHODS = {"POST", "PATCH", "DELETE"}  # the requests that change a release


@dataclass
class FakeGitHub:
    """Releases and assets in memory; checks the token on every request."""

    server: HTTPServer
    token: str
    digests: bool = True  # GitHub reports asset digests; older servers do not
    page_size: int = 100
    # (method, status) answers to give first, in order, to requests of that method
    failures: list[tuple[str, int]] = field(default_factory=list)
    releases: dict[int, dict[str, Any]] = field(default_factory=dict)
    assets: dict[int, dict[str, Any]] = field(default_factory=dict)
    contents: dict[int, bytes] = field(default_factory=dict)
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)
    deployment_statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    next_id: Iterator[int] = field(default_factory=lambda: iter(range(1, 10_000)))

    def install(self) -> FakeGitHub:
        self.server.expect_request(re.compile(r"^/.*")).respond_with_handler(self.handle)
        return self

    @property
    def api_url(self) -> str:
        return self.server.url_for("/api").rstrip("/")

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request received so far."""
        return [(req.method, req.path) for req, _ in self.server.log]

    def uploads(self) -> list[tuple[str, bytes]]:
        """(name, body) of every asset upload received so far."""
        found = []
        for req, _ in self.server.log:
            if req.method == "POST" and req.path.startswith("/uploads/"):
                found.append((req.args["name"], req.get_data()))
        return found

    def add_release(self, tag: str, *, draft: bool = False, **fields: Any) -> dict[str, Any]:
        """A release made outside the code under test (by hand, or by another tool)."""
        rid = next(self.next_id)
        release = self._release(rid, {"tag_name": tag, "draft": draft, **fields})
        self.releases[rid] = release
        return release

    def _release(self, rid: int, payload: dict[str, Any]) -> dict[str, Any]:
        release = {
            "id": rid,
            "upload_url": self.server.url_for(f"/uploads/repos/{REPO}/releases/{rid}/assets")
            + "{?name,label}",
            "name": None,
            "body": None,
            "draft": False,
            "prerelease": False,
            **payload,
        }
        return self._with_page(release)

    def _with_page(self, release: dict[str, Any]) -> dict[str, Any]:
        where = f"untagged-{release['id']:08x}" if release["draft"] else release["tag_name"]
        release["html_url"] = f"https://github.example/{REPO}/releases/tag/{where}"
        return release

    def _json(self, status: int, doc: object) -> Response:
        return Response(json.dumps(doc), status=status, content_type="application/json")

    def _asset_doc(self, asset: dict[str, Any]) -> dict[str, Any]:
        doc = {k: v for k, v in asset.items() if k != "release_id"}
        if not self.digests:
            doc.pop("digest", None)
        return doc

    def handle(self, request: Request) -> Response:
        if self.failures and self.failures[0][0] == request.method:
            return self._json(self.failures.pop(0)[1], {"message": "Server Error"})
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._json(401, {"message": "Bad credentials"})
        path, method = request.path, request.method
        base = f"/api/repos/{REPO}"
        if method == "GET" and (m := re.fullmatch(f"{base}/releases/tags/(.+)", path)):
            for release in self.releases.values():  # published releases only, as on GitHub
                if release["tag_name"] == m.group(1) and not release["draft"]:
                    return self._json(200, release)
            return self._json(404, {"message": "Not Found"})
        if method == "GET" and path == f"{base}/releases":
            newest_first = sorted(self.releases.values(), key=lambda r: -r["id"])
            return self._page(request, path, newest_first)
        if method == "POST" and path == f"{base}/releases":
            payload = json.loads(request.get_data())
            rid = next(self.next_id)
            self.releases[rid] = self._release(rid, payload)
            return self._json(201, self.releases[rid])
        if method == "PATCH" and (m := re.fullmatch(f"{base}/releases/(\\d+)", path)):
            release = self.releases[int(m.group(1))]
            release.update(json.loads(request.get_data()))
            return self._json(200, self._with_page(release))
        if method == "GET" and (m := re.fullmatch(f"{base}/releases/(\\d+)/assets", path)):
            rid = int(m.group(1))
            mine = [self._asset_doc(a) for a in self.assets.values() if a["release_id"] == rid]
            return self._page(request, path, mine)
        if method == "DELETE" and (m := re.fullmatch(f"{base}/releases/assets/(\\d+)", path)):
            self.assets.pop(int(m.group(1)))
            return Response(status=204)
        if method == "POST" and (
            m := re.fullmatch(f"/uploads/repos/{REPO}/releases/(\\d+)/assets", path)
        ):
            name = parse_qs(request.query_string.decode())["name"][0]
            data = request.get_data()
            aid = next(self.next_id)
            self.assets[aid] = {
                "id": aid,
                "name": name,
                "size": len(data),
                "state": "uploaded",
                "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                "content_type": request.headers.get("Content-Type"),
                "release_id": int(m.group(1)),
            }
            self.contents[aid] = data
            return self._json(201, self._asset_doc(self.assets[aid]))
        found = self._deployments(request, base)
        if found is not None:
            return found
        return self._json(404, {"message": f"no such endpoint: {method} {path}"})

    def _deployments(self, request: Request, base: str) -> Response | None:
        path, method = request.path, request.method
        if path == f"{base}/deployments" and method == "POST":
            payload = json.loads(request.get_data())
            if not payload.get("ref"):
                return self._json(422, {"message": "ref is missing"})
            did = next(self.next_id)
            self.deployments[did] = {"id": did, **payload}
            self.deployment_statuses[did] = []
            return self._json(201, self.deployments[did])
        if path == f"{base}/deployments" and method == "GET":
            env = request.args.get("environment")
            found = [d for d in self.deployments.values() if env in {None, d["environment"]}]
            return self._page(request, path, sorted(found, key=lambda d: -d["id"]))
        m = re.fullmatch(f"{base}/deployments/(\\d+)/statuses", path)
        if m is None or int(m.group(1)) not in self.deployments:
            return None
        did = int(m.group(1))
        if method == "GET":
            return self._page(request, path, self.deployment_statuses[did][::-1])
        payload = json.loads(request.get_data())
        known = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
        if payload.get("state") not in known:
            return self._json(422, {"message": f"unknown state {payload.get('state')!r}"})
        status = {"id": next(self.next_id), **payload}
        self.deployment_statuses[did].append(status)
        return self._json(201, status)

    def deployment_history(self) -> list[tuple[str, str, list[str]]]:
        """(environment, description, the states posted in order) of every deployment."""
        return [
            (d["environment"], d["description"], [s["state"] for s in self.deployment_statuses[i]])
            for i, d in sorted(self.deployments.items())
        ]

    def _page(self, request: Request, path: str, items: list[dict[str, Any]]) -> Response:
        page = int(request.args.get("page", "1"))
        size = min(self.page_size, int(request.args.get("per_page", "30")))
        resp = self._json(200, items[(page - 1) * size : page * size])
        if page * size < len(items):
            nxt = self.server.url_for(f"{path}?per_page={size}&page={page + 1}")
            resp.headers["Link"] = f'<{nxt}>; rel="next"'
        return resp

    def changes(self) -> list[tuple[str, str]]:
        """(method, path) of every request that changed something."""
        return [(m, p) for m, p in self.requests() if m in RELEASE_METHODS]
