from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ci.core.runner import ProcessRunner
from ci.gates import filehash
from ci.gates.filehash import HashIndex, glob_regex, select, tracked_files
from tests.conftest import git


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/*.py", "a.py", True),
        ("**/*.py", "ci/sub/a.py", True),
        ("**/*.py", "a.pyc", False),
        ("*.py", "ci/a.py", False),
        ("docs/**", "docs/x/y.md", True),
        ("docs/**", "docsx/y.md", False),
        ("**", ".github/workflows/ci.yml", True),
        ("a?.txt", "ab.txt", True),
        ("a?.txt", "a/.txt", False),
        ("uv.lock", "uv.lock", True),
        ("uv.lock", "uv.lock.bak", False),
    ],
)
def test_glob_regex(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_regex([pattern]).match(path)) is matches


def test_no_patterns_match_nothing() -> None:
    assert select(["a.py", "b"], []) == []


def test_select_applies_excludes() -> None:
    paths = ["docs/a.md", "tests/t.py", "ci/x.py", "README.md"]
    assert select(paths, ["**"], ["docs/**"]) == ["README.md", "ci/x.py", "tests/t.py"]


def test_tracked_files_lists_untracked_but_not_ignored(make_repo) -> None:
    repo = make_repo({"a.py": "x = 1\n", ".gitignore": "ignored/\n"})
    (repo / "new.py").write_text("y = 2\n")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "z.py").write_text("z = 3\n")
    assert tracked_files(repo, ProcessRunner()) == [".gitignore", "a.py", "new.py"]


def test_tracked_files_outside_git_is_none(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # tmp may be in a tree
    assert tracked_files(tmp_path, ProcessRunner()) is None


def _old(path: Path) -> None:
    past = time.time() - 60
    os.utime(path, (past, past))


@pytest.fixture
def memoize_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memoize files changed just now (their ctime is now, whatever their mtime says)."""
    monkeypatch.setattr(filehash, "RACY_S", -1.0)


@pytest.mark.usefixtures("memoize_fresh")
def test_index_reuses_hash_of_unchanged_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "a.txt"
    target.write_text("hello\n")
    _old(target)
    index = HashIndex(tmp_path / "state" / "files.json", tmp_path)
    first = index.hash(target, "a.txt")
    index.save()

    def boom(path: Path) -> str:
        raise AssertionError(f"{path} was re-read")

    monkeypatch.setattr(filehash, "_sha256_file", boom)
    again = HashIndex(tmp_path / "state" / "files.json", tmp_path)
    assert again.hash(target, "a.txt") == first


def test_index_rehashes_changed_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("hello\n")
    _old(target)
    index = HashIndex(tmp_path / "files.json", tmp_path)
    before = index.hash(target, "a.txt").sha256
    target.write_text("hellO\n")  # same size, another (old) mtime
    os.utime(target, ns=(1, time.time_ns() - 30_000_000_000))
    assert index.hash(target, "a.txt").sha256 != before


@pytest.mark.usefixtures("memoize_fresh")
def test_same_size_edit_with_the_mtime_set_back_is_rehashed(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("hello\n")
    _old(target)
    stamp = target.stat()
    index = HashIndex(tmp_path / "files.json", tmp_path)
    before = index.hash(target, "a.txt").sha256
    index.save()
    # edit until the ctime has moved on: within one tick of the file system's clock an edit
    # keeps it, and then no stat can tell (the index's racy window is off in this test)
    deadline = time.monotonic() + 30
    while target.stat().st_ctime_ns == stamp.st_ctime_ns:
        assert time.monotonic() < deadline, "the ctime never moved on"
        with target.open("r+") as handle:  # the same inode, the same size
            handle.write("hellO\n")
        os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the mtime set back
    assert target.read_text() == "hellO\n"
    assert target.stat().st_mtime_ns == stamp.st_mtime_ns
    again = HashIndex(tmp_path / "files.json", tmp_path)
    assert again.hash(target, "a.txt").sha256 != before


def test_recently_modified_file_is_not_memoized(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("fresh\n")
    index = HashIndex(tmp_path / "files.json", tmp_path)
    index.hash(target, "a.txt")
    assert "a.txt" not in index.entries


def test_missing_file_hashes_as_missing(tmp_path: Path) -> None:
    index = HashIndex(tmp_path / "files.json", tmp_path)
    assert index.hash(tmp_path / "gone", "gone").sha256 == filehash.MISSING


def test_corrupt_index_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "files.json").write_text("{not json")
    index = HashIndex(tmp_path / "files.json", tmp_path)
    assert index.entries == {}


@pytest.mark.usefixtures("memoize_fresh")
def test_save_drops_files_that_no_longer_exist(make_repo) -> None:
    repo = make_repo({"a.txt": "a\n", "b.txt": "b\n"})
    for name in ("a.txt", "b.txt"):
        _old(repo / name)
    index = HashIndex(repo / ".state" / "files.json", repo)
    index.hash_tree(repo, ["a.txt", "b.txt"])
    (repo / "b.txt").unlink()
    index.save()
    assert set(HashIndex(repo / ".state" / "files.json", repo).entries) == {"a.txt"}
    git(repo, "status")  # the repo is still a valid work tree


def test_walk_covers_ignored_files_and_leaves_out_tool_folders(tmp_path: Path) -> None:
    for rel in (
        "a.py",
        "data/ignored.csv",
        "docs/guide.md",
        ".venv/lib/x.py",
        "env/pyvenv.cfg",
        "env/lib/y.py",
        ".nox/lint/z.py",
        "pkg/__pycache__/a.pyc",
        ".mypy_cache/x",
        "dist/a.whl",
        "pkg/build/real.py",
        "pkg.egg-info/PKG-INFO",
        "reports/r.json",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    tree = filehash.walk_tree(tmp_path, skip=["reports"])
    assert sorted(tree.files) == ["a.py", "data/ignored.csv", "docs/guide.md", "pkg/build/real.py"]
    assert tree.git == (".git",)
    assert "pkg/build" in tree.dirs  # build/ is left out at the top only
    assert tree.escapes == ()


def test_walk_sorts_symlinks_into_kept_and_leaving(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f.txt").write_text("x")
    (tmp_path / "outside").mkdir()
    (root / ".venv").mkdir()
    (root / "inside").symlink_to(root / "real")
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "away").symlink_to(tmp_path / "outside")
    (root / "tool").symlink_to(root / ".venv")
    tree = filehash.walk_tree(root)
    assert tree.links == {"inside": str(root / "real"), "dangling": str(root / "nowhere")}
    assert tree.escapes == ("away", "tool")


def test_package_outputs_are_left_out_at_the_top(tmp_path: Path) -> None:
    for rel in ("dist-assets/builds/0001/manifest.json", "docs/dist-assets/real.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert list(filehash.walk_tree(tmp_path).files) == ["docs/dist-assets/real.md"]
