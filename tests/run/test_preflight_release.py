"""``preflight --release`` against real git repositories and real ``uv lock``."""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ci.cli.main import main
from tests.conftest import git

PYTHON = ".".join(platform.python_version_tuple()[:2])


def pyproject(version: str = "0.1.0", extra: str = "") -> str:
    return (
        f'[project]\nname = "tagged"\nversion = "{version}"\nrequires-python = ">={PYTHON}"\n'
        f'dependencies = []\n\n[tool.ci]\npythons = ["{PYTHON}"]\n{extra}'
    )


@pytest.fixture
def release_repo(make_repo: Callable[..., Path]) -> Callable[..., Path]:
    def make(version: str = "0.1.0", tag: str | None = "v0.1.0", extra: str = "") -> Path:
        repo = make_repo({"pyproject.toml": pyproject(version, extra), ".gitignore": ".venv/\n"})
        subprocess.run(["uv", "lock", "--quiet"], cwd=repo, check=True)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "lock")
        if tag:
            git(repo, "tag", tag)
        return repo

    return make


def preflight(repo: Path) -> int:
    return main(["--config", str(repo / "pyproject.toml"), "preflight", "--release"])


def test_a_clean_tagged_repo_passes(
    release_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = release_repo()
    assert preflight(repo) == 0
    out = capsys.readouterr().out
    assert "v0.1.0 matches version 0.1.0 (tag format v{version}, detected from 1 tags" in out
    assert "0.1.0 (static [project] version)" in out
    assert "clean tree" in out


def test_a_dirty_tree_fails(
    release_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = release_repo()
    (repo / "notes.txt").write_text("wip\n", encoding="utf-8")
    assert preflight(repo) == 3
    assert "not clean (?? notes.txt): commit or stash" in capsys.readouterr().err


def test_an_untagged_head_fails_with_the_tag_to_make(
    release_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = release_repo(tag=None)
    assert preflight(repo) == 3
    assert (
        "HEAD has no release tag (tag format v{version}, default: no version tags yet): "
        "tag the release commit with `git tag v0.1.0`"
    ) in capsys.readouterr().err


def test_a_tag_that_does_not_match_the_version_names_both(
    release_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = release_repo(tag="v0.2.0")
    assert preflight(repo) == 3
    err = capsys.readouterr().err
    assert "tag v0.2.0 on HEAD does not match the release version 0.1.0" in err


def test_a_tag_equal_under_pep_440_matches(
    release_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = release_repo(version="1.0.0", tag="v1.0")
    assert preflight(repo) == 0
    assert "v1.0 matches version 1.0.0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("version", "tag"),
    [("1.0.0rc1", "v1.0.0rc1"), ("1.0rc1", "v1.0rc1"), ("2.0.post1", "v2.0.post1")],
)
def test_any_pep_440_public_version_releases(
    release_repo: Callable[..., Path], version: str, tag: str
) -> None:
    assert preflight(release_repo(version=version, tag=tag)) == 0


def test_a_calendar_version_with_plain_tags_releases(
    release_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = release_repo(version="26.4", tag=None)
    git(repo, "tag", "26.3", "HEAD~1")
    git(repo, "tag", "26.4")
    assert preflight(repo) == 0
    out = capsys.readouterr().out
    assert "26.4 matches version 26.4 (tag format {version}, detected from 2 tags" in out


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("1.1.dev4", "release version 1.1.dev4 is a development release (.dev4), not a release"),
        ("1.1+corp.2", "release version 1.1+corp.2 is a local version (+corp.2"),
    ],
)
def test_development_and_local_versions_are_refused_with_the_reason(
    release_repo: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    version: str,
    reason: str,
) -> None:
    repo = release_repo(version=version, tag=f"v{version}")
    assert preflight(repo) == 3
    err = capsys.readouterr().err
    assert reason in err
    assert 'set [project] version in pyproject.toml to a release version (e.g. "1.1")' in err


def test_a_tag_in_another_format_names_the_setting(
    release_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    extra = '\n[tool.ci.release]\ntag_format = "v{version}"\n'
    repo = release_repo(version="1.2.0", tag="1.2.0", extra=extra)
    assert preflight(repo) == 3
    assert (
        "HEAD is tagged 1.2.0, but release tags have the tag format v{version}, set in "
        '[tool.ci.release]: set [tool.ci.release] tag_format = "{version}" or tag with '
        "`git tag v1.2.0`"
    ) in capsys.readouterr().err


def test_a_configured_tag_format_is_used(release_repo: Callable[..., Path]) -> None:
    extra = '\n[tool.ci.release]\ntag_format = "release-{version}"\n'
    assert preflight(release_repo(version="3.0", tag="release-3.0", extra=extra)) == 0
    assert preflight(release_repo(version="3.0", tag="v3.0", extra=extra)) == 3


def test_an_invalid_project_version_fails(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"pyproject.toml": pyproject("1.0-final-final")})  # uv cannot even lock it
    git(repo, "tag", "v1.0-final-final")
    assert preflight(repo) == 3
    assert "release version '1.0-final-final' is not a valid PEP 440 version" in (
        capsys.readouterr().out
    )


def test_a_missing_required_secret_fails_with_the_fix(
    release_repo: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = (
        "required_secrets = []\n\n[tool.ci.environments.staging]\n"
        'required_secrets = ["GEMINI_API_KEY"]\n'
    )
    repo = release_repo(extra=extra)
    assert preflight(repo) == 3
    assert (
        "GEMINI_API_KEY is not set: add it as a repository secret and map it in release.yml; "
        "locally, export it"
    ) in capsys.readouterr().err
    monkeypatch.setenv("GEMINI_API_KEY", "value-123")
    assert preflight(repo) == 0


def test_a_stale_uv_lock_fails(
    release_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = release_repo(tag=None)
    text = (repo / "pyproject.toml").read_text(encoding="utf-8")
    (repo / "pyproject.toml").write_text(
        text.replace("dependencies = []", 'dependencies = ["packaging"]'), encoding="utf-8"
    )
    git(repo, "commit", "-q", "-am", "add a dependency, forget the lock")
    git(repo, "tag", "v0.1.0")
    assert preflight(repo) == 3
    assert "does not match pyproject.toml" in capsys.readouterr().err


def test_plain_preflight_does_not_need_a_tag(
    release_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = release_repo(tag=None)
    assert main(["--config", str(repo / "pyproject.toml"), "preflight"]) == 0
    assert "release tag" not in capsys.readouterr().out


@pytest.mark.parametrize("other", ["v0.2.0", "v0.0.9", "v0.1.0rc1"])
def test_two_release_tags_on_head_are_refused_naming_both(
    release_repo: Callable[..., Path], other: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = release_repo(tag="v0.1.0")
    git(repo, "tag", other)
    assert preflight(repo) == 3
    err = capsys.readouterr().err
    assert "HEAD carries 2 release tags" in err
    assert "v0.1.0" in err
    assert other in err


def test_a_tag_that_is_not_a_version_beside_the_release_tag_is_fine(
    release_repo: Callable[..., Path],
) -> None:
    repo = release_repo(tag="v0.1.0")
    git(repo, "tag", "vendored-drop")
    git(repo, "tag", "deployed")
    assert preflight(repo) == 0
