from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from ci.core.errors import DeployError, ExitCode, UsageError
from ci.core.runner import ProcessRunner
from ci.deploy.backend import StateBackend
from ci.deploy.ledger import Ledger, LedgerCorruptError, canonical, digest
from ci.deploy.store import LocalStore
from ci.release import record
from tests.conftest import git


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """dist/ (distributions) with its dist-assets/ sibling (everything else), as package writes."""
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist-assets").mkdir()
    return tmp_path / "dist"


def assets(dist: Path) -> Path:
    return dist.with_name("dist-assets")


def test_without_manifest_or_sums_the_wheels_and_sdists_are_the_assets(dist: Path) -> None:
    (dist / "p-1.0-py3-none-any.whl").write_bytes(b"w")
    (dist / "p-1.0.tar.gz").write_bytes(b"s")
    (assets(dist) / "RELEASE_NOTES.md").write_text("old", encoding="utf-8")
    found = record.artifacts(dist)
    assert [a.name for a in found] == ["p-1.0-py3-none-any.whl", "p-1.0.tar.gz"]
    assert found[0].sha256 == sha(b"w")
    assert found[0].size == 1
    assert found[0].published == ()


def test_an_empty_or_missing_dist_has_no_assets(dist: Path) -> None:
    assert record.artifacts(dist / "nowhere") == []
    text = record.body("## v1\n", [], None)
    assert "No artifacts were found in dist/ or dist-assets/." in text
    assert "No deploy ledger yet" in text


def test_sums_only_and_a_mismatch_is_refused(dist: Path) -> None:
    (dist / "a.whl").write_bytes(b"a")
    (assets(dist) / "SHA256SUMS").write_text(f"{sha(b'a')} *a.whl\n", encoding="utf-8")
    assert [a.name for a in record.artifacts(dist)] == ["a.whl", "SHA256SUMS"]
    (dist / "a.whl").write_bytes(b"tampered")
    with pytest.raises(DeployError, match="does not match its recorded sha256"):
        record.artifacts(dist)


def test_a_listed_but_missing_file_is_refused(dist: Path) -> None:
    doc = {"artifacts": [{"name": "gone.whl"}]}
    (assets(dist) / "manifest.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DeployError, match=r"gone\.whl is listed"):
        record.artifacts(dist)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"published": "https://index/simple/p/"}, ("https://index/simple/p/",)),
        ({"published": ["u1", "u2"]}, ("u1", "u2")),
        ({"published": {"url": "u"}}, ("u",)),
        ({"urls": ["u"]}, ("u",)),
        ({"published": None}, ()),
        ({}, ()),
    ],
)
def test_where_published_is_read_tolerantly(
    dist: Path, entry: dict[str, object], expected: tuple[str, ...]
) -> None:
    (dist / "a.whl").write_bytes(b"a")
    doc = {"artifacts": [{"name": "a.whl", **entry}]}
    (assets(dist) / "manifest.json").write_text(json.dumps(doc), encoding="utf-8")
    (artifact, manifest) = record.artifacts(dist)
    assert artifact.published == expected
    assert manifest.name == "manifest.json"


def test_a_broken_manifest_names_the_fix(dist: Path) -> None:
    (assets(dist) / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match="python -m ci package"):
        record.artifacts(dist)


def test_the_anchor_is_the_verified_ledger_head(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"README.md": "x\n"})
    git(repo, "tag", "v1.0.0")
    backend = StateBackend(LocalStore(repo / ".ci-state"))
    runner = ProcessRunner()
    build = partial(
        record.build, runner, repo, {}, tag="v1.0.0", dist=repo / "dist", ledger_head=backend.head
    )
    assert build().anchor is None
    ledger = Ledger.in_state_dir(backend.store.root)
    for version in ("1.0.0", "1.0.1"):
        ledger.append(
            time="t", actor="a", action="deploy", env="staging", version=version, outcome="ok"
        )
    entries = ledger.verify()
    assert build().anchor == entries[-1].hash
    # a tampered ledger (an edited entry with its hash recomputed) never yields an anchor
    lines = ledger.path.read_text(encoding="utf-8").splitlines()
    forged = json.loads(lines[0])
    forged["version"] = "6.6.6"
    forged["hash"] = digest({k: v for k, v in forged.items() if k != "hash"})
    ledger.path.write_text("\n".join([canonical(forged), lines[1]]) + "\n", encoding="utf-8")
    with pytest.raises(LedgerCorruptError, match="entry 2") as caught:
        build()
    assert caught.value.exit_code == ExitCode.PREFLIGHT


def test_step_summary_is_appended_to(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    assert record.append_summary("x\n", {}) is None
    summary.write_text("earlier step", encoding="utf-8")
    assert record.append_summary("## v1\n", {"GITHUB_STEP_SUMMARY": str(summary)}) == summary
    assert summary.read_text(encoding="utf-8") == "earlier step\n## v1\n"


def test_github_target_needs_a_token_and_a_repository() -> None:
    assert "no GITHUB_TOKEN" in str(record.github_target({"GITHUB_REPOSITORY": "o/r"}))
    assert "GITHUB_REPOSITORY" in str(record.github_target({"GH_TOKEN": "t0ken"}))
    assert record.github_target({"GH_TOKEN": "t0ken", "GITHUB_REPOSITORY": "o/r"}) == (
        "o/r",
        "t0ken",
    )


def test_long_notes_are_clipped_at_a_line(tmp_path: Path) -> None:
    notes_md = "## v1\n\n" + "".join(f"- change {i}\n" for i in range(1000))
    clipped = record.clip(notes_md, limit=200)
    assert len(clipped) < 300
    assert "- change 1\n" in clipped
    assert "- change 999" not in clipped
    kept = clipped.count("\n- ")
    assert f"... {1000 - kept} more lines" in clipped
    assert record.clip(notes_md) == notes_md
    assert "### Audit anchor" in record.body(notes_md * 200, [], "h")


def test_reads_what_packaging_writes(dist: Path) -> None:
    from ci.release import package

    data = {"p-1.0-py3-none-any.whl": b"wheel", "p-1.0.tar.gz": b"sdist"}
    built = []
    for name, content in data.items():
        (dist / name).write_bytes(content)
        built.append(
            package.Artifact(
                name=name,
                kind="wheel" if name.endswith(".whl") else "sdist",
                size=len(content),
                sha256=sha(content),
                published=("http://127.0.0.1:1/packages/" + name,),
            )
        )
    info = package.BuildInfo(
        name="p",
        version="1.0",
        commit="0" * 40,
        branch=None,
        tag="v1.0",
        dirty=False,
        uv_lock_sha256=None,
        python="3.12",
        source_date_epoch=0,
        build_time="1970-01-01T00:00:00Z",
    )
    manifest = package.Manifest(
        name="p", version="1.0", build_id="b", build=info, artifacts=tuple(built)
    )
    package.write_manifest(assets(dist), manifest)
    (assets(dist) / package.SUMS).write_text(package.render_sums(built), encoding="utf-8")

    found = {a.name: a for a in record.artifacts(dist)}
    assert set(found) == {*data, "SHA256SUMS", "manifest.json"}
    wheel = found["p-1.0-py3-none-any.whl"]
    assert wheel.sha256 == sha(b"wheel")
    assert wheel.published == ("http://127.0.0.1:1/packages/p-1.0-py3-none-any.whl",)


def test_sums_and_ledger_of_bytes_that_are_not_utf8_are_reported_not_a_crash(
    tmp_path: Path,
) -> None:
    (tmp_path / "SHA256SUMS").write_bytes(b"\xff\xfe\n")
    assert record.read_sums(tmp_path / "SHA256SUMS") == {}
    (tmp_path / "ledger.jsonl").write_bytes(b"\xff\xfe{\n")
    with pytest.raises(LedgerCorruptError, match="entry 1: not valid JSON"):
        Ledger.in_state_dir(tmp_path).head()
