"""Upload a build with twine, verify what the index serves, and undo a partial upload.

Order of work: verify SHA256SUMS, read the index, plan (skip files already there with the
same sha256, refuse a name already there with other bytes), upload wheel then sdist one
file per twine call, read the index again and compare sha256, and on any failure remove
what this run uploaded (pypiserver's ``remove_pkg``) or say exactly what to yank.
"""

from __future__ import annotations

import base64
import configparser
import dataclasses
import hashlib
import html.parser
import re
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from ci.core.clock import Clock
from ci.core.errors import DeployError, PreflightError, UsageError
from ci.core.http import MAX_BODY, ApiError, HttpClient, Response, Retry, send
from ci.core.runner import Runner
from ci.release.package import (
    MANIFEST,
    PLAIN_LINUX_FIX,
    SUMS,
    Artifact,
    Manifest,
    artifact_path,
    assets_dir,
    parse_sums,
    plain_linux_wheels,
    read_manifest,
    sha256_file,
    write_manifest,
)
from ci.testing import faults

UPLOAD_KINDS = ("wheel", "sdist")  # wheel first: installers prefer it, and it is smaller
PYPI_HOSTS = {
    "upload.pypi.org": "https://pypi.org/simple/",
    "test.pypi.org": "https://test.pypi.org/simple/",
    "pypi.org": "https://pypi.org/simple/",
}
KNOWN_REPOSITORIES = {
    "pypi": "https://upload.pypi.org/legacy/",
    "testpypi": "https://test.pypi.org/legacy/",
}
TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Repository:
    """Where to upload, where to read the simple API, and the credentials for both."""

    upload_url: str
    simple_url: str
    name: str | None = None
    username: str | None = dataclasses.field(default=None, repr=False)
    password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def display(self) -> str:
        """The upload URL without any user:password part, safe to print."""
        return safe_url(self.upload_url)

    @property
    def is_pypi(self) -> bool:
        """True for PyPI and TestPyPI, which never delete files for reuse."""
        return (urllib.parse.urlsplit(self.upload_url).hostname or "") in PYPI_HOSTS

    def twine_target(self) -> list[str]:
        """The twine flags that pick this repository."""
        if self.name:
            return ["--repository", self.name]
        return ["--repository-url", self.upload_url]


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexFile:
    """One file the simple API lists for the project."""

    filename: str
    url: str
    sha256: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What publishing would do: upload some files, skip others, or refuse a conflict."""

    upload: tuple[Artifact, ...]
    present: tuple[Artifact, ...]
    conflicts: tuple[tuple[Artifact, str], ...]

    def lines(self, repo: Repository) -> list[str]:
        """The plan as printable lines."""
        out = [f"upload {a.name} ({a.size:,} B, sha256 {a.sha256[:12]})" for a in self.upload]
        out += [f"skip   {a.name}: already on the index with the same sha256" for a in self.present]
        out += [
            f"refuse {a.name}: on the index with sha256 {remote[:12]}, ours is {a.sha256[:12]}"
            for a, remote in self.conflicts
        ]
        return [f"publish to {repo.display}:", *(f"  {line}" for line in out)]


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishOutcome:
    """How a publish ended: what was uploaded, skipped, removed again or left behind."""

    status: str
    uploaded: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    error: str | None = None

    def __bool__(self) -> bool:
        """True when every file is on the index with the right bytes."""
        return self.status == "published"


def safe_url(url: str) -> str:
    """``url`` without credentials of any form: no user:password, query or fragment.

    Safe to print and to record (manifest.json is uploaded as a public release asset); a
    token in an index URL's query (``?token=...``) is as secret as a password.
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_URL = re.compile(r"https?://[^\s'\"<>]+")


def simple_url_for(upload_url: str) -> str:
    """The simple API beside an upload URL (PyPI's; ``/legacy/`` -> ``/simple/``; else appended)."""
    parts = urllib.parse.urlsplit(upload_url)
    host = parts.hostname or ""
    if host in PYPI_HOSTS:
        return PYPI_HOSTS[host]
    path = parts.path.rstrip("/")
    if path.endswith("/legacy"):
        path = path[: -len("/legacy")]
    return urllib.parse.urlunsplit(parts._replace(path=f"{path}/simple/", query="", fragment=""))


def normalize(name: str) -> str:
    """The PEP 503 normalized project name."""
    return str(canonicalize_name(name))


def resolve_repository(
    *,
    url: str | None,
    name: str | None,
    index_url: str | None,
    env: Mapping[str, str],
    config_url: str | None,
    pypirc: Path | None = None,
) -> Repository:
    """Pick the index: --repository-url, --repository, CI_PUBLISH_REPOSITORY_URL, then config."""
    username = env.get("TWINE_USERNAME") or None
    password = env.get("TWINE_PASSWORD") or None
    upload = url
    if upload is None and name is not None:
        upload, rc_user, rc_password = _from_pypirc(name, pypirc or Path.home() / ".pypirc")
        username = username or rc_user
        password = password or rc_password
    upload = upload or env.get("CI_PUBLISH_REPOSITORY_URL") or config_url
    if not upload:
        msg = (
            "no package index to publish to: pass --repository-url URL, set "
            "CI_PUBLISH_REPOSITORY_URL, or set [tool.ci.publish] repository_url"
        )
        raise UsageError(msg)
    if urllib.parse.urlsplit(upload).scheme not in {"http", "https"}:
        msg = f"repository URL {safe_url(upload)!r} is not an http(s) URL; fix it"
        raise UsageError(msg)
    simple = index_url or env.get("CI_PUBLISH_INDEX_URL") or simple_url_for(upload)
    return Repository(
        upload_url=upload,
        simple_url=simple if simple.endswith("/") else simple + "/",
        name=name if url is None else None,
        username=username,
        password=password,
    )


def _from_pypirc(name: str, path: Path) -> tuple[str, str | None, str | None]:
    parser = configparser.RawConfigParser()
    if path.is_file():
        parser.read(path, encoding="utf-8")
    if parser.has_section(name):
        section = parser[name]
        upload = section.get("repository") or KNOWN_REPOSITORIES.get(name)
        if upload:
            return upload, section.get("username"), section.get("password")
    if name in KNOWN_REPOSITORIES:
        return KNOWN_REPOSITORIES[name], None, None
    msg = f"repository {name!r} is not a section of {path} (with a `repository =` URL); add it"
    raise UsageError(msg)


class _Links(html.parser.HTMLParser):
    """Collects ``<a href>`` targets and texts from a PEP 503 page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def parse_simple_page(text: str, base: str) -> dict[str, IndexFile]:
    """File name -> IndexFile from a PEP 503 project page (sha256 from ``#sha256=``)."""
    parser = _Links()
    parser.feed(text)
    files = {}
    for href, label in parser.links:
        url, _, fragment = urllib.parse.urljoin(base, href).partition("#")
        filename = label or urllib.parse.unquote(url.rstrip("/").rsplit("/", 1)[-1])
        sha = fragment.split("=", 1)[1] if fragment.startswith("sha256=") else None
        files[filename] = IndexFile(filename=filename, url=url, sha256=sha)
    return files


INDEX_HINTS = dict.fromkeys(
    (401, 403), "check TWINE_USERNAME/TWINE_PASSWORD (or the repository's entry in ~/.pypirc)"
)


def _request(
    http: HttpClient,
    repo: Repository,
    url: str,
    *,
    what: str,
    data: bytes | None = None,
    accept: str = "text/html",
    retry: Retry | None = None,
    limit: int = MAX_BODY,
) -> Response:
    """One request to the index through the HTTP client (redirects: same host only)."""
    headers = {"Accept": accept, "User-Agent": "noxgate-publish"}
    hosts = {urllib.parse.urlsplit(u).netloc for u in (repo.upload_url, repo.simple_url)}
    mine = urllib.parse.urlsplit(url).netloc in hosts  # a file link may point to a CDN
    if mine and repo.username is not None and repo.password is not None:
        token = base64.b64encode(f"{repo.username}:{repo.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    if data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    # a 404 or a redirect to another host (pypiserver sends misses to PyPI): not on this index
    ok = {404, *range(200, 400)} if data is None else None
    return send(
        http,
        "POST" if data is not None else "GET",
        url,
        headers=headers,
        body=data,
        retry=retry,
        what=what,
        timeout=TIMEOUT_S,
        ok=ok,
        hints=INDEX_HINTS,
        limit=limit,
    )


def fetch_index(
    http: HttpClient, repo: Repository, project: str, retry: Retry | None = None
) -> dict[str, IndexFile]:
    """The project's files on the index; empty when it has none. ApiError when unreachable."""
    page = f"{repo.simple_url}{normalize(project)}/"
    answer = _request(http, repo, page, what=f"reading the index at {safe_url(page)}", retry=retry)
    if answer.status != 200:
        return {}
    return parse_simple_page(answer.body.decode("utf-8", errors="replace"), page)


def verify_sums(dist: Path, manifest: Manifest) -> None:
    """Check SHA256SUMS against the files and the manifest; DeployError (exit 5) on any mismatch."""
    sums_path = assets_dir(dist) / SUMS
    try:
        sums = parse_sums(sums_path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        msg = f"{sums_path} is missing: rebuild with `python -m ci package`"
        raise DeployError(msg) from None
    except UsageError as exc:
        raise DeployError(f"{sums_path}: {exc}") from None
    for artifact in manifest.artifacts:
        expected = sums.get(artifact.name)
        path = artifact_path(dist, artifact)
        if expected is None:
            msg = f"{artifact.name} is not listed in {SUMS}: rebuild with `python -m ci package`"
            raise DeployError(msg)
        if not path.is_file():
            msg = f"{path} is missing: rebuild with `python -m ci package`"
            raise DeployError(msg)
        actual = sha256_file(path)
        if actual != expected or actual != artifact.sha256:
            msg = (
                f"{artifact.name} does not match {SUMS} (expected sha256 {expected[:12]}, "
                f"file has {actual[:12]}): the artifact is corrupt; rebuild, nothing was uploaded"
            )
            raise DeployError(msg)


def uploads(manifest: Manifest) -> list[Artifact]:
    """The artifacts that go to the index, wheel first, then sdist (the bundle stays out)."""
    return [a for kind in UPLOAD_KINDS for a in manifest.artifacts if a.kind == kind]


def plan(artifacts: Sequence[Artifact], index: Mapping[str, IndexFile]) -> Plan:
    """Split ``artifacts`` into uploads, files already there, and conflicts (pure)."""
    upload, present, conflicts = [], [], []
    for artifact in artifacts:
        remote = index.get(artifact.name)
        if remote is None:
            upload.append(artifact)
        elif remote.sha256 is None or remote.sha256 == artifact.sha256:
            present.append(artifact)  # a listing without a hash is checked by download later
        else:
            conflicts.append((artifact, remote.sha256))
    return Plan(upload=tuple(upload), present=tuple(present), conflicts=tuple(conflicts))


def remote_sha256(http: HttpClient, repo: Repository, entry: IndexFile, *, size: int = 0) -> str:
    """The sha256 the index serves for ``entry``: the fragment, else a download.

    ``size``: the bytes the file should have (a download is read up to that, at least
    ``MAX_BODY``; a longer one is not the file and fails).
    """
    if entry.sha256:
        return entry.sha256
    what = f"downloading {entry.filename} from the index to verify it"
    answer = _request(http, repo, entry.url, what=what, accept="*/*", limit=max(MAX_BODY, size))
    if answer.status != 200:
        msg = f"{what}: the index answered HTTP {answer.status}"
        raise DeployError(msg)
    return hashlib.sha256(answer.body).hexdigest()


def verify_served(
    http: HttpClient,
    repo: Repository,
    project: str,
    artifacts: Sequence[Artifact],
    retry: Retry | None = None,
) -> dict[str, str]:
    """Check the index serves each artifact with its sha256; file name -> URL on the index."""
    index = fetch_index(http, repo, project, retry)
    served = {}
    for artifact in artifacts:
        entry = index.get(artifact.name)
        if entry is None:
            msg = f"{artifact.name} was uploaded but the index does not list it"
            raise DeployError(msg)
        remote = remote_sha256(http, repo, entry, size=artifact.size)
        if remote != artifact.sha256:
            msg = (
                f"the index serves {artifact.name} with sha256 {remote[:12]}, "
                f"but we uploaded {artifact.sha256[:12]}"
            )
            raise DeployError(msg)
        served[artifact.name] = entry.url
    return served


def _upload(runner: Runner, repo: Repository, path: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "twine",
        "--no-color",
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        *repo.twine_target(),
        str(path),
    ]
    done = runner.run(argv, env={"TWINE_NON_INTERACTIVE": "1"}, timeout=900)
    if done:
        return
    lines = [" ".join(line.split()) for line in done.output.splitlines() if line.strip()]
    detail = next((ln for ln in lines if ln.startswith("ERROR")), lines[-1] if lines else "")
    detail = detail.removeprefix("ERROR").strip() or f"twine exited {done.returncode}"
    detail = _URL.sub(lambda m: safe_url(m.group()), detail)  # no credentials from URLs
    if "No module named twine" in detail:
        detail = f"twine is not installed for {sys.executable}: run `uv sync --group package`"
    elif "Credential not found" in detail:
        detail = (
            "no credentials: set TWINE_USERNAME and TWINE_PASSWORD (any values for an index "
            "that does not check them) or use --repository with a ~/.pypirc entry"
        )
    msg = f"uploading {path.name} to {repo.display} failed: {detail}"
    raise DeployError(msg)


def remove_uploaded(
    http: HttpClient,
    repo: Repository,
    manifest: Manifest,
    uploaded: Sequence[str],
    before: Mapping[str, IndexFile],
) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """Undo this run's uploads where the index allows it: (removed, left behind, note)."""
    if not uploaded:
        return (), (), ""
    files = ", ".join(uploaded)
    if repo.is_pypi:
        note = (
            f"PyPI never deletes files for reuse: yank {manifest.name} {manifest.version} at "
            f"https://pypi.org/manage/project/{normalize(manifest.name)}/release/"
            f"{manifest.version}/ (files: {files})"
        )
        return (), tuple(uploaded), note
    version_files = [n for n in before if _is_version(n, manifest)]
    if version_files:
        # the index's remove action deletes a whole version: it would take these too
        note = (
            f"not removed automatically because {', '.join(version_files)} was on the index "
            f"before this run; remove by hand: {files}"
        )
        return (), tuple(uploaded), note
    # pypiserver matches the name exactly as the file names spell it (sample_pkg, not sample-pkg)
    spellings = dict.fromkeys(n.rsplit(f"-{manifest.version}", 1)[0] for n in uploaded)
    try:
        for spelling in spellings:
            form = {":action": "remove_pkg", "name": spelling, "version": manifest.version}
            data = urllib.parse.urlencode(form).encode()
            _request(http, repo, repo.upload_url, what="removing them", data=data)
        after = fetch_index(http, repo, manifest.name)
    except (ApiError, DeployError) as exc:
        note = f"could not remove them ({exc}); remove or yank by hand: {files}"
        return (), tuple(uploaded), note
    removed = tuple(n for n in uploaded if n not in after)
    left = tuple(n for n in uploaded if n in after)
    note = f"removed again: {', '.join(removed)}" if removed else ""
    if left:
        note += ("; " if note else "") + f"still on the index, remove by hand: {', '.join(left)}"
    return removed, left, note


def _is_version(filename: str, manifest: Manifest) -> bool:
    """True when ``filename`` is a wheel or sdist of the manifest's name and version."""
    try:
        if filename.endswith(".whl"):
            name, version, *_ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return False
    return name == canonicalize_name(manifest.name) and str(version) == manifest.version


def publish(
    dist: Path,
    repo: Repository,
    *,
    runner: Runner,
    clock: Clock,
    http: HttpClient,
    retry: Retry | None = None,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> tuple[Plan, PublishOutcome]:
    """Verify, plan, upload, verify again; record the outcome in ``dist-assets/manifest.json``.

    An index that cannot be read before anything is sent fails as every HTTP call does
    (``ci.core.http``: 6 unreachable, 3 credentials refused); a failure after an upload is
    DeployError (exit 5), saying what was removed again.
    """
    manifest = read_manifest(dist)
    verify_sums(dist, manifest)
    if manifest.build.dirty:
        print(
            f"warning: {manifest.build_id} was built from a tree with uncommitted changes",
            file=sys.stderr,
        )
    wanted = uploads(manifest)
    if not wanted:
        msg = (
            f"{assets_dir(dist) / MANIFEST} lists no wheel or sdist: rebuild with "
            "`python -m ci package`"
        )
        raise DeployError(msg)
    refused = plain_linux_wheels(a.name for a in wanted) if repo.is_pypi else []
    if refused:
        msg = (
            f"{repo.display} refuses wheels tagged plain linux ({', '.join(refused)}): "
            f"{PLAIN_LINUX_FIX}; nothing was uploaded"
        )
        raise PreflightError(msg)
    try:
        before = fetch_index(http, repo, manifest.name, retry)
    except ApiError as exc:
        if not dry_run:  # the attempt is part of the build's record, even when nothing was sent
            failed = PublishOutcome(status="failed", error=str(exc))
            _record(dist, manifest, repo, failed, served={}, clock=clock)
        raise
    todo = plan(wanted, before)
    if dry_run:
        return todo, PublishOutcome(status="dry-run")
    if todo.conflicts:
        names = ", ".join(a.name for a, _ in todo.conflicts)
        error = (
            f"version {manifest.version} already published with different content ({names}); "
            "bump the version"
        )
        outcome = PublishOutcome(status="failed", error=error)
        _record(dist, manifest, repo, outcome, served={}, clock=clock)
        raise DeployError(error)
    uploaded: list[str] = []
    try:
        for index, artifact in enumerate(todo.upload):
            # fault injection: CI_INJECT_FAULT=publish kills uploads after the first
            url = faults.upload_url(repo.upload_url, index, env or {})
            target = (
                repo
                if url == repo.upload_url
                else dataclasses.replace(repo, upload_url=url, name=None)
            )
            _upload(runner, target, artifact_path(dist, artifact))
            uploaded.append(artifact.name)
        served = verify_served(http, repo, manifest.name, wanted, retry)
    except (DeployError, ApiError) as exc:
        removed, left, note = remove_uploaded(http, repo, manifest, uploaded, before)
        outcome = PublishOutcome(
            status="failed",
            uploaded=tuple(uploaded),
            present=tuple(a.name for a in todo.present),
            removed=removed,
            left=left,
            error=str(exc),
        )
        _record(dist, manifest, repo, outcome, served={}, clock=clock)
        tail = f"; {note}" if note else ("; nothing was uploaded" if not uploaded else "")
        raise DeployError(f"publish failed: {exc}{tail}") from None
    outcome = PublishOutcome(
        status="published",
        uploaded=tuple(uploaded),
        present=tuple(a.name for a in todo.present),
    )
    _record(dist, manifest, repo, outcome, served=served, clock=clock)
    return todo, outcome


def _record(
    dist: Path,
    manifest: Manifest,
    repo: Repository,
    outcome: PublishOutcome,
    *,
    served: Mapping[str, str],
    clock: Clock,
) -> None:
    """Write the attempt into manifest.json (atomic): where each file now lives, and how it went."""
    artifacts = tuple(
        dataclasses.replace(
            a, published=tuple(dict.fromkeys([*a.published, safe_url(served[a.name])]))
        )
        if a.name in served
        else a
        for a in manifest.artifacts
    )
    record: dict[str, Any] = {
        "repository": repo.display,
        "status": outcome.status,
        "at": clock.now().isoformat(timespec="seconds"),
        "uploaded": list(outcome.uploaded),
        "already_present": list(outcome.present),
        "removed": list(outcome.removed),
        "left_on_index": list(outcome.left),
        "error": outcome.error,
    }
    write_manifest(
        assets_dir(dist), dataclasses.replace(manifest, artifacts=artifacts, publish=record)
    )


def render(repo: Repository, outcome: PublishOutcome) -> str:
    """One summary line for a successful publish."""
    parts = []
    if outcome.uploaded:
        parts.append(f"uploaded {', '.join(outcome.uploaded)}")
    if outcome.present:
        parts.append(f"already there with the same sha256: {', '.join(outcome.present)}")
    return f"published to {repo.display}: " + "; ".join(parts) + " (verified by sha256)"
