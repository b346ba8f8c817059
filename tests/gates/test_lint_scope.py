from pathlib import Path

import pytest

from ci.core.config import DEFAULT_LINT_EXCLUDE
from ci.gates import lint_scope
from ci.gates.lint_scope import Hook, Scope


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        ("tests/data/invalid/a.toml", True),
        ("tests/invalid/deep/er/b.json", True),
        ("pkg/tests/bad/c.yaml", True),
        ("test/broken/d.sh", True),
        ("tests/data/valid/a.toml", False),
        ("tests/data/config.toml", False),
        ("invalid/a.toml", False),  # not under a test tree
        ("mytests/invalid/a.toml", False),
        ("tests/invalid_names.toml", False),  # a file, not a folder named invalid
    ],
)
def test_default_excludes_only_invalid_fixture_folders(path: str, left_out: bool) -> None:
    assert Scope(exclude=DEFAULT_LINT_EXCLUDE).left_out("toml", path) is left_out


@pytest.mark.parametrize(
    ("glob", "path", "left_out"),
    [
        ("schemas/broken", "schemas/broken/x.json", True),  # a folder: all beneath it
        ("schemas/broken/", "schemas/broken/x.json", True),
        ("./schemas/**", "schemas/a/x.json", True),
        ("*.min.json", "web/dist/app.min.json", True),  # no slash: a name at any depth
        ("fixtures", "a/fixtures/b/c.toml", True),
        ("schemas/*.json", "schemas/a/x.json", False),  # * stays inside a folder
        ("schemas/broken", "schemas/broken-not/x.json", False),
    ],
)
def test_exclude_globs(glob: str, path: str, left_out: bool) -> None:
    assert Scope(exclude=(glob,)).left_out("json", path) is left_out


def test_hook_scope_is_pre_commits_regex_search() -> None:
    hook = Hook(id="check-toml", files=r"\.toml$", exclude="^tests/toml-test/")
    assert not hook.skips("conf/a.toml")
    assert hook.skips("tests/toml-test/a.toml")
    assert hook.skips("conf/a.txt")
    assert Hook(id="check-toml", top_exclude="^vendor/").skips("vendor/a.toml")
    assert not Hook(id="check-toml", exclude="([unclosed").skips("a.toml")  # unreadable: checks


def test_pre_commit_hooks_are_read_with_their_repo_rev() -> None:
    text = """
exclude: ^vendor/
repos:
  - repo: https://github.com/astral-sh/ruff-pre-commit
    rev: v0.5.2
    hooks:
      - id: ruff
        types_or: [python, pyi]
        exclude: ^docs/
  - repo: local
    hooks:
      - {id: no-types}
      - not-a-hook
"""
    ruff, local = lint_scope.pre_commit_hooks(text)
    assert (ruff.id, ruff.rev, ruff.types_or, ruff.exclude) == (
        "ruff",
        "v0.5.2",
        ("python", "pyi"),
        "^docs/",
    )
    assert (local.id, local.rev, local.types, local.top_exclude) == (
        "no-types",
        "",
        None,
        "^vendor/",
    )


@pytest.mark.parametrize("text", ["", "repos: [\n", "- a list\n", "repos: 3\n"])
def test_a_pre_commit_config_the_gate_cannot_read_narrows_nothing(text: str) -> None:
    assert lint_scope.pre_commit_hooks(text) == []


def test_a_family_with_no_hook_is_not_narrowed_by_other_hooks() -> None:
    scope = Scope(hooks=(Hook(id="trailing-whitespace", exclude="^data/"),))
    assert not scope.left_out("toml", "data/x.toml")


@pytest.mark.parametrize(
    ("hooks", "include", "check", "fmt"),
    [
        ((), (), (), ()),
        ((Hook(id="ruff", rev="v0.5.7"),), (), ("*.ipynb",), ()),
        (
            (Hook(id="ruff", rev="v0.6.0"), Hook(id="ruff-format", rev="v0.4.0")),
            (),
            (),
            ("*.ipynb",),
        ),
        ((Hook(id="ruff-check", rev="0123abc"),), (), (), ()),  # a commit: the current default
        ((Hook(id="ruff", types=("python",)),), (), ("*.ipynb", "*.pyi"), ()),
        ((Hook(id="ruff", types_or=("python", "jupyter")),), (), ("*.pyi",), ()),
        ((Hook(id="ruff", rev="v0.5.0"),), ("*.ipynb",), (), ()),  # the ruff config includes them
        # two hooks: a type either of them takes stays in
        ((Hook(id="ruff", rev="v0.5.0"), Hook(id="ruff", rev="v0.9.0")), (), (), ()),
    ],
)
def test_ruff_excludes_follow_the_ruff_hooks(
    hooks: tuple[Hook, ...], include: tuple[str, ...], check: tuple[str, ...], fmt: tuple[str, ...]
) -> None:
    scope = Scope(hooks=hooks, ruff_include=include)
    assert scope.ruff_excludes() == check
    assert scope.ruff_excludes(format_=True) == fmt


def test_read_finds_taplo_and_ruff_configs(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.ruff]\nextend-include = ["*.ipynb"]\n')
    (tmp_path / "taplo.toml").write_text('exclude = ["./fixtures/**"]\n')
    scope = lint_scope.read(tmp_path, ("x",))
    assert scope.ruff_include == ("*.ipynb",)
    assert scope.taplo_exclude == ("fixtures/**",)
    assert scope.left_out("toml", "fixtures/a.toml")
    assert not scope.left_out("json", "fixtures/a.json")
    (tmp_path / "ruff.toml").write_text('include = ["src/**/*.py"]\n')  # wins over pyproject
    assert lint_scope.read(tmp_path).ruff_include == ("src/**/*.py",)


def test_ruff_skips_only_what_every_ruff_hook_skips() -> None:
    check = Hook(id="ruff", exclude="^docs/")
    assert check.narrows and not Hook(id="ruff").narrows
    assert Hook(id="ruff", top_exclude="^vendor/").narrows
    scope = Scope(hooks=(check, Hook(id="ruff-format")))
    assert scope.ruff_skips("docs/conf.py")
    assert not scope.ruff_skips("docs/conf.py", format_=True)  # the format hook takes it
    assert not Scope().ruff_skips("docs/conf.py")  # no hook: ruff's config decides
    both = Scope(hooks=(check, Hook(id="ruff-check", files="^docs/")))
    assert not both.ruff_skips("docs/conf.py")
