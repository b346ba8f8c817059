from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ci.cli.app import App
from ci.cli.main import main
from ci.core.runner import ProcessRunner
from ci.release import commits as history
from ci.release import notes
from ci.release.notes import Bump, Commit
from ci.release.version import TagFormat

MakeRepo = Callable[..., Path]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


def commit(repo: Path, message: str, *, author: str | None = None) -> str:
    """An empty commit with ``message`` (optionally by ``author``); returns its sha."""
    args = ["commit", "-q", "--allow-empty", "-m", message]
    if author:
        args.append(f"--author={author}")
    git(repo, *args)
    return git(repo, "rev-parse", "HEAD").strip()


def tag(repo: Path, name: str) -> None:
    git(repo, "tag", "-a", name, "-m", name)


def run_cli(repo: Path, *argv: str, env: dict[str, str] | None = None) -> int:
    return main(list(argv), app=App(cwd=repo, env=env or {}))


@pytest.fixture
def tagged_repo(make_repo: MakeRepo) -> Path:
    """v1.2.0, then every kind of change, a merge and release bookkeeping."""
    repo = make_repo({"README.md": "x\n"})
    tag(repo, "v1.1.0")
    commit(repo, "feat: old feature")
    tag(repo, "v1.2.0")
    commit(repo, "feat(api): add the export endpoint")
    commit(repo, "fix: handle empty input", author="Second Person <second@example.invalid>")
    commit(repo, "perf(db): batch the inserts")
    commit(repo, "docs: explain the config")
    commit(repo, "security: pin the parser to a patched release")
    commit(repo, "refactor!: drop the legacy settings file")
    commit(
        repo,
        "feat(cli): new output format\n\nLonger text.\n\n"
        "BREAKING CHANGE: --json is now --format json\n"
        "Co-authored-by: Third Person <third@example.invalid>",
    )
    commit(repo, "tidy up the imports")
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, "fix(io): close the file on error")
    git(repo, "checkout", "-q", "main")
    commit(repo, "test: cover the parser")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'topic'", "topic")
    commit(repo, "chore(release): 2.0.0")
    commit(repo, "Release v2.0.0")
    commit(repo, "bump version to 2.0.0")
    return repo


def test_groups_excludes_and_proposes_from_a_real_history(tagged_repo: Path) -> None:
    found = history.gather_notes(ProcessRunner(), tagged_repo, {})
    assert found.since == "v1.2.0"
    sections = {s.key: [c.description for c in s.changes] for s in found.sections}
    assert sections == {
        "breaking": ["drop the legacy settings file", "new output format"],
        "security": ["pin the parser to a patched release"],
        "feat": ["add the export endpoint"],
        "fix": ["handle empty input", "close the file on error"],
        "perf": ["batch the inserts"],
        "docs": ["explain the config"],
        "other": ["tidy up the imports", "cover the parser"],
    }
    assert [s.key for s in found.sections] == [k for k, _ in notes.SECTIONS]
    # the merge and the three release commits are left out; the old feature is before v1.2.0
    assert found.excluded == 4
    assert "old feature" not in notes.render_markdown(found)
    people = {p.name: p.commits for p in found.contributors}
    assert people == {"Test Author": 9, "Second Person": 1, "Third Person": 1}
    assert found.contributors[0].name == "Test Author"
    assert found.proposal.version == "2.0.0"
    assert found.proposal.bump is Bump.MAJOR


def test_markdown_has_scopes_short_shas_links_and_breaking_notes(tagged_repo: Path) -> None:
    env = {"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "o/r"}
    found = history.gather_notes(ProcessRunner(), tagged_repo, env)
    text = notes.render_markdown(found)
    cli_change = next(c for c in found.changes if c.description == "new output format")
    assert f"[`{cli_change.short}`](https://github.example/o/r/commit/{cli_change.sha})" in text
    assert "- feat: **cli:** new output format" in text
    assert "--json is now --format json" in text
    assert "### Breaking changes" in text
    assert text.index("### Breaking changes") < text.index("### Features")
    assert "- Second Person (1 change)" in text
    assert "[v1.2.0...HEAD](https://github.example/o/r/compare/v1.2.0...HEAD)" in text
    assert "Proposed next version: **2.0.0**" in text
    plain = notes.render_markdown(history.gather_notes(ProcessRunner(), tagged_repo, {}))
    assert "/commit/" not in plain
    assert f"(`{cli_change.short}`)" in plain


def test_notes_for_a_tagged_head_start_at_the_previous_tag(tagged_repo: Path) -> None:
    tag(tagged_repo, "v2.0.0")
    found = history.gather_notes(ProcessRunner(), tagged_repo, {}, until="v2.0.0")
    assert found.since == "v1.2.0"
    assert found.title == "v2.0.0"
    assert history.tag_warning(ProcessRunner(), tagged_repo, "v2.0.0", {}) is None
    assert history.previous_tag(ProcessRunner(), tagged_repo, "v1.2.0") == "v1.1.0"


def test_since_and_until_select_a_range(tagged_repo: Path) -> None:
    found = history.gather_notes(ProcessRunner(), tagged_repo, {}, since="v1.1.0", until="v1.2.0")
    assert [c.description for c in found.changes] == ["old feature"]
    assert found.proposal.version == "1.2.0"


def test_a_lower_tag_gets_a_warning(tagged_repo: Path) -> None:
    tag(tagged_repo, "v1.2.1")
    warning = history.tag_warning(ProcessRunner(), tagged_repo, "v1.2.1", {})
    assert warning is not None
    assert "v1.2.1 is lower than the proposed 2.0.0" in warning


@pytest.mark.parametrize(
    ("previous", "messages", "expected"),
    [
        ("v0.3.1", ["fix: a"], "0.3.2"),
        ("v0.3.1", ["feat: a", "fix: b"], "0.3.2"),
        ("v0.3.1", ["feat!: a"], "0.4.0"),
        ("v0.3.1", ["fix: a\n\nBREAKING CHANGE: gone"], "0.4.0"),
        ("v1.4.2", ["fix: a"], "1.4.3"),
        ("v1.4.2", ["docs: a", "feat: b"], "1.5.0"),
        ("v1.4.2", ["feat(x)!: a"], "2.0.0"),
        ("v1.4.2", [], "1.4.2"),
        (None, ["feat!: a"], "0.1.0"),
    ],
)
def test_next_version_rules(previous: str | None, messages: list[str], expected: str) -> None:
    changes = [
        notes.parse(Commit(sha=f"{i:040x}", author="a", message=m)) for i, m in enumerate(messages)
    ]
    assert notes.propose(previous, changes).version == expected


def test_next_version_in_a_real_0x_repo(make_repo: MakeRepo) -> None:
    repo = make_repo({"a": "1"})
    tag(repo, "v0.3.1")
    commit(repo, "feat: something")
    assert history.gather_notes(ProcessRunner(), repo, {}).proposal.version == "0.3.2"
    commit(repo, "feat!: break it")
    assert history.gather_notes(ProcessRunner(), repo, {}).proposal.version == "0.4.0"


@pytest.mark.parametrize(
    ("subject", "release"),
    [
        ("chore(release): 1.2.0", True),
        ("Release v1.2.0", True),
        ("release: 1.2.0", True),
        ("bump version", True),
        ("Bump version to 1.2.0", True),
        ("chore: bump version to 1.2.0", True),
        ("v1.2.0", True),
        ("feat: release the lock earlier", False),
        ("fix: bump the timeout", False),
        ("chore(deps): bump requests to 2.32.0", False),
        ("Released memory on shutdown", False),
    ],
)
def test_release_commits(subject: str, release: bool) -> None:
    assert notes.is_release(Commit(sha="0" * 40, author="a", message=subject)) is release


@pytest.mark.parametrize(
    ("message", "kind", "scope", "breaking"),
    [
        ("feat(api): x", "feat", "api", False),
        ("Fix: x", "fix", None, False),
        ("feat(api)!: x", "feat", "api", True),
        ("chore!: x", "chore", None, True),
        ("fix: x\n\nBREAKING-CHANGE: y", "fix", None, True),
        ("Add a thing", "other", None, False),
        ("Add a thing\n\nBREAKING CHANGE: y", "other", None, True),
        ("feature: x", "feat", None, False),
        ("fix:no space", "other", None, False),
    ],
)
def test_parse(message: str, kind: str, scope: str | None, breaking: bool) -> None:
    change = notes.parse(Commit(sha="a" * 40, author="a", message=message))
    assert (change.type, change.scope, change.breaking) == (kind, scope, breaking)


def test_merge_commits_by_parents_or_subject() -> None:
    two = Commit(sha="a" * 40, parents=("b" * 40, "c" * 40), author="a", message="feat: x")
    assert notes.is_merge(two)
    pr = Commit(
        sha="a" * 40, parents=("b" * 40,), author="a", message="Merge pull request #4 from x"
    )
    assert notes.is_merge(pr)
    assert not notes.is_merge(Commit(sha="a" * 40, author="a", message="feat: merge sorted runs"))


def test_version_warning() -> None:
    proposal = notes.Proposal(previous="v1.2.0", bump=Bump.MINOR, version="1.3.0", reason="r")
    assert notes.version_warning("v1.2.1", proposal) is not None
    assert notes.version_warning("v1.3.0", proposal) is None
    assert notes.version_warning("v1.3.0rc1", proposal) is None
    assert notes.version_warning("v2.0.0", proposal) is None
    assert notes.version_warning("not-a-version", proposal) is None


def test_cli_markdown_json_and_output(
    tagged_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(tagged_repo, "notes") == 0
    out = capsys.readouterr().out
    assert out.startswith("## Unreleased\n")
    assert "### Fixes" in out

    env = {"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "o/r"}
    assert run_cli(tagged_repo, "notes", "--format", "json", env=env) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1
    assert doc["proposal"] == {
        "previous": "v1.2.0",
        "bump": "major",
        "version": "2.0.0",
        "reason": "breaking changes: major bump",
    }
    first = doc["sections"][0]["changes"][0]
    assert first["url"] == f"https://github.example/o/r/commit/{first['sha']}"

    target = tmp_path / "out" / "NOTES.md"
    assert run_cli(tagged_repo, "notes", "--since", "v1.1.0", "--output", str(target)) == 0
    assert "old feature" in target.read_text(encoding="utf-8")
    assert "wrote" in capsys.readouterr().out


def test_cli_bad_ref_and_not_a_repo(
    make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"a": "1"})
    assert run_cli(repo, "notes", "--since", "v9.9.9") == 2
    err = capsys.readouterr().err
    assert "'v9.9.9' is not a commit" in err
    assert "Traceback" not in err
    plain = tmp_path / "plain"
    plain.mkdir()
    assert run_cli(plain, "notes") == 3
    assert "not a git repository" in capsys.readouterr().err


def test_empty_range_says_no_changes(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"a": "1"})
    tag(repo, "v1.0.0")
    assert run_cli(repo, "notes", "--since", "v1.0.0") == 0
    out = capsys.readouterr().out
    assert "No changes." in out
    assert "**1.0.0**" in out


def test_a_shallow_clone_is_refused(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = make_repo({"a": "1"})
    commit(origin, "feat: second")
    clone = origin.parent / "shallow"
    git(origin.parent, "clone", "-q", "--depth", "1", f"file://{origin}", str(clone))
    assert run_cli(clone, "notes") == 3
    assert "fetch-depth: 0" in capsys.readouterr().err


def _released_project(make_repo: MakeRepo, version: str) -> Path:
    """A locked project tagged v1.0.0, a feat after it, and HEAD tagged v<version>."""
    python = ".".join(platform.python_version_tuple()[:2])
    pyproject = (
        f'[project]\nname = "tagged"\nversion = "{version}"\nrequires-python = ">={python}"\n'
        f'dependencies = []\n\n[tool.ci]\npythons = ["{python}"]\n'
    )
    repo = make_repo({"pyproject.toml": pyproject, ".gitignore": ".venv/\n"})
    subprocess.run(["uv", "lock", "--quiet"], cwd=repo, check=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "chore: lock")
    tag(repo, "v1.0.0")
    commit(repo, "feat: a new command")
    tag(repo, f"v{version}")
    return repo


@pytest.mark.parametrize(
    ("version", "status", "text"),
    [
        ("1.0.1", "warn", "tag v1.0.1 is lower than the proposed 1.1.0"),
        ("1.1.0", "ok", "v1.1.0 is not lower than the proposed 1.1.0 (new features: minor bump)"),
    ],
)
def test_preflight_release_warns_about_a_lower_tag(
    make_repo: MakeRepo,
    capsys: pytest.CaptureFixture[str],
    version: str,
    status: str,
    text: str,
) -> None:
    repo = _released_project(make_repo, version)
    assert main(["--config", str(repo / "pyproject.toml"), "preflight", "--release"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "version proposal" in ln)
    assert line.split()[0] == status
    assert text in line


def test_plain_version_tags_bound_the_notes_when_detected(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tags like 1.2.3 (no v): the notes start at the previous one, not at the first commit."""
    repo = make_repo({"README.md": "x\n"})
    commit(repo, "feat: ancient history")
    tag(repo, "1.0.0")
    commit(repo, "fix: the only change since 1.0.0")
    tag(repo, "1.0.1")
    assert run_cli(repo, "notes", "--until", "1.0.1", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["since"] == "1.0.0"
    described = [c["description"] for s in doc["sections"] for c in s["changes"]]
    assert described == ["the only change since 1.0.0"]
    assert doc["proposal"]["previous"] == "1.0.0"
    fmt = TagFormat(text="{version}")
    found = history.gather_notes(ProcessRunner(), repo, {}, until="1.0.1", tag_format=fmt)
    assert found.title == "1.0.1"
    assert history.tag_warning(ProcessRunner(), repo, "1.0.1", {}, fmt) is None


def test_a_configured_tag_format_reads_only_its_tags(make_repo: MakeRepo) -> None:
    repo = make_repo({"README.md": "x\n"})
    tag(repo, "v9.0.0")  # another scheme's tag: not a release of this format
    commit(repo, "feat: first")
    tag(repo, "pkg-1.0")
    commit(repo, "feat: second")
    fmt = TagFormat(text="pkg-{version}")
    assert history.previous_tag(ProcessRunner(), repo, "HEAD", tag_format=fmt) == "pkg-1.0"
    found = history.gather_notes(ProcessRunner(), repo, {}, tag_format=fmt)
    assert found.proposal.version == "1.1.0"  # a feat since pkg-1.0 (v9.0.0 is not ours)
    proposal = notes.Proposal(previous="pkg-1.0", bump=Bump.MINOR, version="1.1.0", reason="r")
    assert notes.version_warning("pkg-1.0.1", proposal, fmt) == (
        "tag pkg-1.0.1 is lower than the proposed 1.1.0 (r since pkg-1.0); retag as pkg-1.1.0 "
        "if the changes are what the notes say"
    )
    assert notes.version_warning("pkg-1.1", proposal, fmt) is None  # 1.1 is 1.1.0
