"""The GitHub release for a tag: created or brought up to date through the REST API, idempotently.

Steps: GET the release by tag, else look for a draft of the tag in the list of releases
(the by-tag endpoint answers only for published releases; drafts show only in the list, to
a token with push access); POST it when there is neither, PATCH it when its name, body,
pre-release or draft flag differ (a draft is published); list its assets; upload each file
that is missing, delete and re-upload each whose size or sha256 differs, skip the identical
ones. HTTP goes through the one GitHub client (``ci.github.client``, on ``ci.core.http``),
so tests can point it at a loopback server; idempotent calls are retried with backoff on
transient failures, and each kind of failure has the exit code every command gives it. The
token only ever travels in the Authorization header: it is never printed, logged or
written, and error messages carry only the method, path, status and GitHub's message.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.http import ApiError, Failure, Response
from ci.github.client import GitHubClient

TIMEOUT_S = 60.0  # uploads of large wheels take a while
CONTENT_TYPES = {
    ".whl": "application/zip",
    ".gz": "application/gzip",
    ".json": "application/json",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """A file to attach to the release.

    A ``volatile`` asset (manifest.json: it records the time of the last publish attempt)
    differs on every run without its meaning changing: once uploaded it is replaced only
    when some other asset changed, so re-running a release leaves the release alone.
    """

    name: str
    path: Path
    size: int
    sha256: str
    volatile: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseSpec:
    """What the release should look like."""

    tag: str
    name: str
    body: str
    prerelease: bool
    assets: tuple[Asset, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    """What syncing the release did."""

    release: str  # "created", "updated" or "unchanged"
    url: str
    was_draft: bool = False
    uploaded: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when anything on GitHub was changed."""
        return self.release != "unchanged" or bool(self.uploaded or self.replaced)

    def summary(self) -> str:
        """One line describing the outcome."""
        parts = [f"GitHub release {self.release}"]
        if self.was_draft:
            parts[0] += " (it was a draft of this tag: now published)"
        if self.uploaded:
            parts.append(f"uploaded {len(self.uploaded)}")
        if self.replaced:
            parts.append(f"replaced {len(self.replaced)}")
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} assets unchanged")
        return ", ".join(parts) + (f": {self.url}" if self.url else "")


def upload_base(release: Mapping[str, Any], api: GitHubClient) -> str:
    """The asset upload URL of a release, its ``{?name,label}`` template removed."""
    raw = str(release.get("upload_url") or "")
    if not raw:
        return api.repo_url("releases", str(release["id"]), "assets")
    return raw.split("{", 1)[0]


def _doc(resp: Response) -> Any:  # noqa: ANN401 - GitHub's JSON has the endpoint's shape
    """The body as JSON, or None when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return None


def _list_assets(api: GitHubClient, release_id: int) -> list[dict[str, Any]]:
    url = api.repo_url("releases", str(release_id), "assets", per_page=100)
    assets: list[dict[str, Any]] = []
    for page in api.pages(url, what="listing the release's assets"):
        if isinstance(page, list):
            assets.extend(a for a in page if isinstance(a, dict))
    return assets


def _same(remote: Mapping[str, Any], asset: Asset) -> bool:
    """True when the uploaded asset is byte-identical as far as GitHub tells.

    GitHub reports a ``digest`` ("sha256:...") for assets; where it is absent (older
    servers) the size has to do, and the release body's sha256 column stays authoritative.
    """
    if remote.get("state", "uploaded") != "uploaded" or remote.get("size") != asset.size:
        return False
    digest = remote.get("digest")
    if isinstance(digest, str) and digest.startswith("sha256:"):
        return digest.removeprefix("sha256:").lower() == asset.sha256.lower()
    return True


def find_release(api: GitHubClient, tag: str) -> dict[str, Any] | None:
    """The release of ``tag``: the published one, else a draft of it, else None.

    GitHub's by-tag endpoint answers only for published releases; drafts show only in the
    list of releases (newest first), and only to a token with push access.
    """
    tag_path = urllib.parse.quote(tag, safe="")
    found = api.request("GET", api.repo_url("releases", "tags", tag_path), ok=(200, 404))
    if found.status == 200:
        release = _doc(found)
        if not isinstance(release, dict):
            msg = "GitHub API answered the release lookup without a release; check GITHUB_API_URL"
            raise ApiError(msg, kind=Failure.MALFORMED)
        return release
    for page in api.pages(api.repo_url("releases", per_page=100), what="listing releases"):
        for release in page if isinstance(page, list) else []:
            if (
                isinstance(release, dict)
                and release.get("draft")
                and release.get("tag_name") == tag
            ):
                return release
    return None


def sync(api: GitHubClient, spec: ReleaseSpec) -> SyncResult:
    """Create or update the release for ``spec.tag`` and its assets; a re-run changes nothing."""
    found = find_release(api, spec.tag)
    desired = {"name": spec.name, "body": spec.body, "prerelease": spec.prerelease, "draft": False}
    was_draft = bool(found and found.get("draft"))
    if found is None:
        payload = {"tag_name": spec.tag, **desired}
        release = _doc(api.request("POST", api.repo_url("releases"), payload=payload, ok=(201,)))
        state = "created"
    else:
        release = found
        changes = {k: v for k, v in desired.items() if _normal(release.get(k)) != _normal(v)}
        if changes:
            url = api.repo_url("releases", str(release["id"]))
            release = _doc(api.request("PATCH", url, payload=changes))
            state = "updated"
        else:
            state = "unchanged"
    if not isinstance(release, dict) or "id" not in release:
        msg = "GitHub API answered without a release id; check GITHUB_API_URL"
        raise ApiError(msg, kind=Failure.MALFORMED)
    remote = {a.get("name"): a for a in _list_assets(api, int(release["id"]))}
    uploaded: list[str] = []
    replaced: list[str] = []
    unchanged: list[str] = []
    base = upload_base(release, api)
    ordered = sorted(spec.assets, key=lambda a: a.volatile)  # stable order, volatile last
    for asset in ordered:
        existing = remote.get(asset.name)
        settled = asset.volatile and not (uploaded or replaced)
        if existing is not None and (_same(existing, asset) or settled):
            unchanged.append(asset.name)
            continue
        if existing is not None:
            url = api.repo_url("releases", "assets", str(existing["id"]))
            api.request("DELETE", url, ok=(204, 404))
            replaced.append(asset.name)
        else:
            uploaded.append(asset.name)
        query = urllib.parse.urlencode({"name": asset.name})
        api.request(
            "POST",
            f"{base}?{query}",
            data=asset.path.read_bytes(),
            content_type=CONTENT_TYPES.get(asset.path.suffix, "application/octet-stream"),
            ok=(201,),
        )
    return SyncResult(
        release=state,
        url=str(release.get("html_url") or ""),
        was_draft=was_draft,
        uploaded=tuple(uploaded),
        replaced=tuple(replaced),
        unchanged=tuple(unchanged),
    )


def _normal(value: Any) -> Any:  # noqa: ANN401 - compares JSON scalars of any type
    # GitHub may hand the body back with CRLF line ends; those are not a change.
    return value.replace("\r\n", "\n").strip() if isinstance(value, str) else value
