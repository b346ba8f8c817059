"""The GitHub release (create, idempotent re-run, asset replacement) against a loopback server."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from ci.cli.app import App
from ci.cli.main import main
from ci.core.http import ApiError, Retry, UrllibClient
from ci.deploy.ledger import Ledger
from ci.github import releases as ghrelease
from ci.github.client import GitHubClient
from ci.release import record
from tests.support.fake_github import REPO, TOKEN, FakeGitHub

NO_WAIT = Retry(sleep=lambda _s: None)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    """A real HTTP server on 127.0.0.1 (a free port) shared by this module's tests."""
    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    yield srv
    srv.clear()
    srv.stop()


@pytest.fixture
def github(server: HTTPServer) -> Iterator[FakeGitHub]:
    server.clear()  # handlers and log of the previous test
    yield FakeGitHub(server=server, token=TOKEN).install()
    server.clear()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


DIST_FILES = {
    "project-1.1.0-py3-none-any.whl": b"PK\x03\x04" + b"\x00\xff" * 598,  # 1200 B
    "project-1.1.0.tar.gz": b"\x1f\x8b sdist bytes" * 40,
    "project-1.1.0-bundle.tar.gz": b"\x1f\x8b bundle bytes" * 30,
}


def write_dist(dist: Path, files: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Artifacts plus SHA256SUMS and manifest.json, as packaging leaves them (assets beside)."""
    files = files or DIST_FILES
    assets = dist.with_name(f"{dist.name}-assets")
    dist.mkdir(parents=True, exist_ok=True)
    assets.mkdir(parents=True, exist_ok=True)
    sums = []
    artifacts = []
    for name, data in files.items():
        (assets if "-bundle" in name else dist).joinpath(name).write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        sums.append(f"{sha}  {name}\n")
        published = ["http://127.0.0.1:9/simple/project/"] if name.endswith(".whl") else []
        artifacts.append({"name": name, "size": len(data), "sha256": sha, "published": published})
    (assets / "SHA256SUMS").write_text("".join(sums), encoding="utf-8")
    manifest = {"schema": 1, "version": "1.1.0", "artifacts": artifacts}
    (assets / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    names = [*files, "SHA256SUMS", "manifest.json"]
    return {n: (dist / n if (dist / n).is_file() else assets / n).read_bytes() for n in names}


@pytest.fixture
def release_repo(make_repo: Callable[..., Path], tmp_path: Path) -> Path:
    """A repo tagged v1.0.0 and v1.1.0 with a feat and a fix between, a dist and a ledger."""
    repo = make_repo({"README.md": "x\n"})
    git(repo, "tag", "v1.0.0")
    git(repo, "commit", "-q", "--allow-empty", "-m", "feat(cli): add the export command")
    git(repo, "commit", "-q", "--allow-empty", "-m", "fix: keep the exit code")
    git(repo, "commit", "-q", "--allow-empty", "-m", "chore(release): 1.1.0")
    git(repo, "tag", "v1.1.0")
    write_dist(repo / "dist")
    ledger = Ledger.in_state_dir(tmp_path / "state")
    for outcome in ("started", "succeeded"):
        ledger.append(
            time="t", actor="a", action="deploy", env="staging", version="1.1.0", outcome=outcome
        )
    return repo


def ledger_head(tmp_path: Path) -> str:
    return Ledger.in_state_dir(tmp_path / "state").verify()[-1].hash


def github_env(github: FakeGitHub, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": github.api_url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "CI_STATE_DIR": str(tmp_path / "state"),
        **extra,
    }


def run_record(repo: Path, env: dict[str, str], *argv: str) -> int:
    return main(["release-record", *argv], app=App(cwd=repo, env=env, sleep=lambda _s: None))


# --- the command, end to end ---------------------------------------------------------------


def test_creates_the_release_then_a_rerun_changes_nothing(
    release_repo: Path,
    github: FakeGitHub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = github_env(github, tmp_path)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)  # so main() installs the mask for it
    assert run_record(release_repo, env) == 0
    out1 = capsys.readouterr()
    base = f"/api/repos/{REPO}"
    first = github.requests()
    assert first[:4] == [
        ("GET", f"{base}/releases/tags/v1.1.0"),
        ("GET", f"{base}/releases"),  # no published release: is there a draft of the tag?
        ("POST", f"{base}/releases"),
        ("GET", f"{base}/releases/1/assets"),
    ]
    uploads = github.uploads()
    expected = {
        name: next(
            p.read_bytes()
            for p in (release_repo / "dist" / name, release_repo / "dist-assets" / name)
            if p.is_file()
        )
        for name in [*DIST_FILES, "SHA256SUMS", "manifest.json"]
    }
    assert dict(uploads) == expected  # byte-equal bodies, each file once
    assert len(uploads) == len(expected)
    assert all(path.startswith("/uploads/") for m, path in first[4:])

    (release,) = github.releases.values()
    assert release["tag_name"] == "v1.1.0"
    assert release["prerelease"] is False
    body = release["body"]
    assert "### Features" in body
    assert "add the export command" in body
    assert "chore(release)" not in body
    assert "Ledger head: `" + ledger_head(tmp_path) + "`" in body
    wheel_sha = hashlib.sha256(DIST_FILES["project-1.1.0-py3-none-any.whl"]).hexdigest()
    assert f"| `project-1.1.0-py3-none-any.whl` | 1.2 KiB (1200 B) | `{wheel_sha}` |" in body
    assert "http://127.0.0.1:9/simple/project/" in body
    notes_file = release_repo / "dist-assets" / "RELEASE_NOTES.md"
    assert notes_file.read_text(encoding="utf-8") == body
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == body
    assert "GitHub release created, uploaded 5" in out1.out

    github.server.clear_log()
    assert run_record(release_repo, env) == 0
    out2 = capsys.readouterr()
    assert github.requests() == [
        ("GET", f"{base}/releases/tags/v1.1.0"),
        ("GET", f"{base}/releases/1/assets"),
    ]
    assert "GitHub release unchanged, 5 assets unchanged" in out2.out
    assert notes_file.read_text(encoding="utf-8") == body  # same body byte for byte

    written = [notes_file.read_text(), (tmp_path / "summary.md").read_text()]
    for text in [out1.out, out1.err, out2.out, out2.err, *written]:
        assert TOKEN not in text


def test_a_changed_artifact_and_body_are_replaced(
    release_repo: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    env = github_env(github, tmp_path)
    assert run_record(release_repo, env) == 0
    old_wheel_id = next(a["id"] for a in github.assets.values() if a["name"].endswith(".whl"))
    changed = {**DIST_FILES, "project-1.1.0-py3-none-any.whl": b"rebuilt wheel"}
    write_dist(release_repo / "dist", changed)
    github.server.clear_log()

    assert run_record(release_repo, env) == 0
    base = f"/api/repos/{REPO}"
    reqs = github.requests()
    assert ("PATCH", f"{base}/releases/1") in reqs  # the table's sha256 changed
    assert ("DELETE", f"{base}/releases/assets/{old_wheel_id}") in reqs
    replaced = dict(github.uploads())
    assert set(replaced) == {"project-1.1.0-py3-none-any.whl", "SHA256SUMS", "manifest.json"}
    assert replaced["project-1.1.0-py3-none-any.whl"] == b"rebuilt wheel"
    names = sorted(a["name"] for a in github.assets.values())
    assert names == sorted([*DIST_FILES, "SHA256SUMS", "manifest.json"])
    (release,) = github.releases.values()
    assert hashlib.sha256(b"rebuilt wheel").hexdigest() in release["body"]


def test_without_a_token_it_says_so_and_goes_on(
    release_repo: Path, github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = github_env(github, tmp_path)
    del env["GITHUB_TOKEN"]
    assert run_record(release_repo, env) == 0
    out = capsys.readouterr().out
    assert [ln for ln in out.splitlines() if "GitHub release" in ln] == [
        "no GITHUB_TOKEN (or GH_TOKEN): skipping the GitHub release (the notes are in dist-assets/)"
    ]
    assert github.requests() == []
    assert (release_repo / "dist-assets" / "RELEASE_NOTES.md").is_file()


def test_dry_run_writes_and_sends_nothing(
    release_repo: Path, github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = github_env(github, tmp_path)
    assert run_record(release_repo, env, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "plan (dry run" in out
    assert f"create or update the GitHub release v1.1.0 on {REPO}" in out
    assert github.requests() == []
    assert not (release_repo / "dist-assets" / "RELEASE_NOTES.md").exists()
    assert not (tmp_path / "summary.md").exists()


def test_bad_token_is_exit_3_without_the_token(
    release_repo: Path, github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # exit 3 (credentials refused), as for every GitHub call; it was 5 here before
    github.token = "another-token-entirely"
    env = github_env(github, tmp_path)
    assert run_record(release_repo, env) == 3
    captured = capsys.readouterr()
    assert (
        "GitHub API GET /api/repos/owner/project/releases/tags/v1.1.0 failed (HTTP 401: "
        "Bad credentials); the token was rejected: check GITHUB_TOKEN (or GH_TOKEN)"
    ) in captured.err
    assert "Traceback" not in captured.err
    assert TOKEN not in captured.out + captured.err


def test_unreachable_api_is_exit_6(
    release_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a free port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": url}
    # exit 6 (could not be reached), as for every HTTP call; it was 5 here before
    assert run_record(release_repo, env) == 6
    err = capsys.readouterr().err
    assert "failed after 4 attempt(s) (http://127.0.0.1 unreachable (" in err
    assert "refused" in err.lower()


def test_a_lower_tag_is_warned_about(
    release_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(release_repo, "tag", "v1.0.1")  # a feat since v1.0.0 calls for 1.1.0
    assert run_record(release_repo, {}, "--tag", "v1.0.1", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "warning: tag v1.0.1 is lower than the proposed 1.1.0" in out


def test_untagged_head_needs_a_tag(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"a": "1"})
    assert run_record(repo, {}) == 2
    assert "pass --tag" in capsys.readouterr().err


# --- the sync, through the client interface -------------------------------------------------


def spec_for(dist: Path, tag: str = "v1.1.0", body: str = "notes") -> ghrelease.ReleaseSpec:
    assets = tuple(
        ghrelease.Asset(name=a.name, path=a.path, size=a.size, sha256=a.sha256)
        for a in record.artifacts(dist)
    )
    return ghrelease.ReleaseSpec(tag=tag, name=tag, body=body, prerelease=False, assets=assets)


def api_for(github: FakeGitHub) -> GitHubClient:
    return GitHubClient(
        UrllibClient(), api_url=github.api_url, repository=REPO, token=TOKEN, retry=NO_WAIT
    )


def test_assets_are_paged_and_size_decides_without_digests(
    github: FakeGitHub, tmp_path: Path
) -> None:
    github.digests = False
    github.page_size = 2  # five assets: three pages, followed through the Link header
    write_dist(tmp_path / "dist")
    first = ghrelease.sync(api_for(github), spec_for(tmp_path / "dist"))
    assert first.release == "created"
    assert len(first.uploaded) == 5
    github.server.clear_log()
    again = ghrelease.sync(api_for(github), spec_for(tmp_path / "dist"))
    assert not again.changed
    assert [m for m, _ in github.requests()] == ["GET", "GET", "GET", "GET"]


def test_existing_release_gets_patched_only_where_it_differs(
    github: FakeGitHub, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    ghrelease.sync(api_for(github), spec_for(dist, body="first"))
    github.server.clear_log()
    result = ghrelease.sync(api_for(github), spec_for(dist, body="second"))
    assert result.release == "updated"
    (patch_req,) = [req for req, _ in github.server.log if req.method == "PATCH"]
    assert json.loads(patch_req.get_data()) == {"body": "second"}


def test_an_unknown_repository_is_exit_2(github: FakeGitHub, tmp_path: Path) -> None:
    api = GitHubClient(
        UrllibClient(),
        api_url=github.api_url,
        repository="someone/else",
        token=TOKEN,
        retry=NO_WAIT,
    )
    dist = tmp_path / "dist"
    dist.mkdir()
    with pytest.raises(ApiError, match="HTTP 404.*check GITHUB_REPOSITORY") as caught:
        # the tag lookup 404s (no release yet), then listing the drafts of an unknown repo 404s
        ghrelease.sync(api, spec_for(dist))
    assert caught.value.exit_code == 2


def test_transient_failures_of_idempotent_calls_are_retried(
    github: FakeGitHub, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    github.failures = [("GET", 503), ("GET", 502)]
    pauses: list[float] = []
    api = GitHubClient(
        UrllibClient(),
        api_url=github.api_url,
        repository=REPO,
        token=TOKEN,
        retry=Retry(sleep=pauses.append),
    )
    assert ghrelease.sync(api, spec_for(dist)).release == "created"
    assert pauses == [0.5, 1.0]
    github.failures = [("POST", 500)]  # a POST is never sent twice: it could create a duplicate
    dist2 = tmp_path / "dist2"
    dist2.mkdir()
    with pytest.raises(
        ApiError, match=r"POST /api/repos/owner/project/releases failed \(HTTP 500: Server Error\)"
    ):
        ghrelease.sync(api, spec_for(dist2, tag="v9.0.0"))
    assert pauses == [0.5, 1.0]


def test_a_manifest_that_only_records_another_publish_attempt_is_left_alone(
    release_repo: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    env = github_env(github, tmp_path)
    assert run_record(release_repo, env) == 0
    manifest = release_repo / "dist-assets" / "manifest.json"
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    doc["publish"] = {"status": "published", "at": "2026-01-02T00:00:00+00:00"}
    manifest.write_text(json.dumps(doc), encoding="utf-8")
    github.server.clear_log()
    assert run_record(release_repo, env) == 0
    assert github.changes() == []
    (release,) = github.releases.values()
    assert "manifest.json" not in release["body"]  # the table lists the artifacts only
    assert "SHA256SUMS" not in release["body"].split("### Artifacts")[1]


def test_a_secret_in_a_commit_message_never_reaches_github(
    release_repo: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    leaked = "hunter2-deploy-key-value"
    git(release_repo, "commit", "-q", "--allow-empty", "-m", f"fix: stop logging {leaked}")
    git(release_repo, "tag", "v1.1.1")
    env = github_env(github, tmp_path, DEPLOY_TOKEN=leaked)
    assert run_record(release_repo, env, "--tag", "v1.1.1") == 0
    (release,) = github.releases.values()
    assert "fix: stop logging" not in release["body"]  # the prefix is the section's
    assert "stop logging \\*\\*\\*" in release["body"]  # masked as git printed it
    assert leaked not in release["body"]
    assert leaked not in (release_repo / "dist-assets" / "RELEASE_NOTES.md").read_text(
        encoding="utf-8"
    )


@pytest.mark.parametrize("page_size", [100, 1])
def test_a_draft_of_the_tag_is_found_and_published_and_a_rerun_changes_nothing(
    release_repo: Path,
    github: FakeGitHub,
    tmp_path: Path,
    page_size: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    github.page_size = page_size  # 1: the draft is on a later page of the list
    draft = github.add_release("v1.1.0", draft=True, name="notes so far", body="draft notes")
    github.add_release("v1.0.0", name="v1.0.0", body="old")
    github.add_release("v1.2.0", draft=True, name="next", body="later")
    env = github_env(github, tmp_path)
    assert run_record(release_repo, env) == 0
    out = capsys.readouterr().out
    base = f"/api/repos/{REPO}"
    assert ("POST", f"{base}/releases") not in github.requests()
    assert [r["id"] for r in github.releases.values() if r["tag_name"] == "v1.1.0"] == [draft["id"]]
    assert draft["draft"] is False
    assert "### Features" in draft["body"]
    assert draft["html_url"].endswith("/releases/tag/v1.1.0")
    assert "GitHub release updated (it was a draft of this tag: now published)" in out
    assert github.releases[draft["id"] + 2]["draft"] is True  # another tag's draft: untouched

    github.server.clear_log()
    assert run_record(release_repo, env) == 0
    assert github.changes() == []
    assert "GitHub release unchanged, 5 assets unchanged" in capsys.readouterr().out
    assert len(github.releases) == 3


def test_the_by_tag_lookup_does_not_see_drafts_as_on_github(github: FakeGitHub) -> None:
    github.add_release("v9.9.9", draft=True)
    client = UrllibClient()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{github.api_url}/repos/{REPO}/releases"
    assert client.request("GET", f"{url}/tags/v9.9.9", headers=headers, body=None).status == 404
    listed = client.request("GET", url, headers=headers, body=None).json()
    assert [(r["tag_name"], r["draft"]) for r in listed] == [("v9.9.9", True)]
    assert "/releases/tag/untagged-" in listed[0]["html_url"]
