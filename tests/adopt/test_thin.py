"""The thin files, the state file and the three-way merge of ``init --upgrade``."""

from __future__ import annotations

import ast
from pathlib import Path

import nox.project
import pytest
from packaging.requirements import Requirement

from ci.adopt import thin
from ci.core.errors import UsageError
from ci.core.runner import ProcessRunner

REQ = "noxgate==0.1.0"


def script_of(text: str, tmp_path: Path) -> dict[str, object]:
    """The script block as nox itself reads it (nox.project.load_toml)."""
    path = tmp_path / "noxfile.py"
    path.write_text(text, encoding="utf-8")
    return nox.project.load_toml(path)


def test_a_project_without_a_noxfile_gets_the_thin_one(tmp_path: Path) -> None:
    assert thin.noxfile(None, REQ) == thin.thin_noxfile(REQ)
    assert thin.thin_noxfile(REQ).endswith(thin.NOXFILE)
    assert "sessions.declare(Path(__file__).parent)" in thin.NOXFILE
    assert "noqa" not in thin.NOXFILE + thin.TASKS + thin.NOXFILE_BLOCK
    # a plain `nox` (pipx, not the project's venv) builds its environment from this block
    assert script_of(thin.noxfile(None, REQ), tmp_path) == {"dependencies": [thin.SCRIPT_NOX, REQ]}
    ast.parse(thin.noxfile(None, REQ))


def test_an_own_noxfile_keeps_its_sessions_and_gets_the_block_once(tmp_path: Path) -> None:
    own = 'import nox\n\n\n@nox.session\ndef docs(session):\n    session.run("sphinx-build")\n'
    once = thin.noxfile(own, REQ)
    assert once.startswith(thin.script_block(REQ) + own)
    assert once.count(thin.BLOCK_START) == 1
    assert thin.noxfile(once, REQ) == once  # idempotent
    assert script_of(once, tmp_path)["dependencies"] == [thin.SCRIPT_NOX, REQ]
    newer = thin.with_block(once, thin.NOXFILE_BLOCK.replace("this noxfile", "the noxfile"))
    assert newer.count(thin.BLOCK_START) == 1
    assert newer.startswith(thin.script_block(REQ) + own)
    assert "the noxfile does not" in newer
    assert thin.without_block(newer) == thin.script_block(REQ) + own + "\n\n"


def test_the_script_block_follows_the_version_and_a_shebang_stays_first(tmp_path: Path) -> None:
    own = "#!/usr/bin/env python\nimport nox\n"
    text = thin.noxfile(own, REQ)
    assert text.startswith("#!/usr/bin/env python\n# /// script\n")
    newer = thin.noxfile(text, "noxgate==0.2.0")
    assert script_of(newer, tmp_path)["dependencies"] == [thin.SCRIPT_NOX, "noxgate==0.2.0"]
    assert newer.count("# /// script") == 1


def test_an_own_script_block_gets_noxgate_replaced_or_is_left_alone() -> None:
    theirs = '# /// script\n# dependencies = ["nox", "noxgate>=0.0.1"]\n# ///\nimport nox\n'
    text, ok = thin.with_script(theirs, REQ)
    assert ok
    assert text == theirs.replace('"noxgate>=0.0.1"', f'"{REQ}"')
    without = '# /// script\n# dependencies = ["nox"]\n# ///\nimport nox\n'
    assert thin.with_script(without, REQ) == (without, False)  # nox allows one block only


def test_the_script_requirement_names_where_noxgate_comes_from() -> None:
    assert thin.script_requirement("0.3.0", "index") == "noxgate>=0.3.0"
    assert thin.script_requirement("0.3.0", "url", "https://idx/simple") == "noxgate>=0.3.0"
    git = thin.script_requirement("0.3.0", "git", "https://h/noxgate.git", "v0.3.0")
    assert git == "noxgate @ git+https://h/noxgate.git@v0.3.0"
    assert thin.script_requirement("0.3.0", "path", "../noxgate") == "noxgate @ file:../noxgate"
    for requirement in ("noxgate==0.3.0", git, "noxgate @ file:../noxgate"):
        assert Requirement(requirement).name == "noxgate"  # nox parses each one


def test_tasks_module_adds_only_the_tasks_the_project_lacks() -> None:
    assert thin.tasks_module(None) == thin.TASKS
    own = "from invoke import task\n\n\n@task\ndef release(c):\n    pass\n"
    text = thin.tasks_module(own)
    assert '__import__("ci.run.tasks", fromlist=["__all__"])' in text
    bound = text.split("for name in (", 1)[1].split(")", 1)[0]
    assert '"release"' not in bound
    assert '\n            "ci",\n' in bound
    assert thin.tasks_module(text) == text


def test_a_tasks_package_gets_the_tasks_from_a_submodule() -> None:
    plain = "from invoke import task\n\n\n@task\ndef docs(c):\n    pass\n"
    text = thin.tasks_package_init(plain)
    assert '__import__(f"{__name__}.noxgate", fromlist=["__all__"])' in text
    assert '"ci",\n            "dashboard",\n            "deploy",' in text
    assert thin.tasks_package_init(text) == text
    with_ns = "from invoke import Collection\n\nns = Collection()\n"
    text = thin.tasks_package_init(with_ns)
    assert "ns.add_task(getattr(_noxgate_tasks, _name))" in text
    assert "if _name not in ns.tasks" in text


def test_workflows_run_nox_from_the_locked_dev_group() -> None:
    bundle = 'env:\n  NOX: nox>=2026.10.20\njobs:\n  run: uvx --from "$NOX" nox -s lint\n'
    assert thin.workflow(bundle) == f"env:\njobs:\n  run: {thin.LOCKED_NOX} -s lint\n"


def test_the_plan_job_runs_the_noxgate_of_the_noxgate_dev_group() -> None:
    bundle = f"  run: {thin.BUNDLE_CI} plan --matrix\n"
    written = thin.workflow(bundle)
    assert written == "  run: uv run --locked --only-group noxgate-dev python -m ci plan --matrix\n"
    assert thin.workflow(f"  run: {thin.VENDORED_CI} plan --matrix\n") == written
    ci_yml = (Path(__file__).resolve().parents[2] / ".github/workflows/ci.yml").read_text()
    assert thin.BUNDLE_CI in ci_yml  # what the rewrite looks for is what the bundle runs


def test_state_round_trips_and_a_broken_one_is_exit_2() -> None:
    state = thin.State(version="0.1.0", source="git+x@v1", files={"b": "2\n", "a": "1\n"})
    text = state.to_json()
    assert thin.read_state(text, "T") == state
    assert text.index('"a"') < text.index('"b"')  # stable: sorted
    assert thin.read_state(None, "T") is None
    with pytest.raises(UsageError, match="not a state file"):
        thin.read_state("{}", "T")


def test_merge_keeps_the_users_edit_and_applies_ours() -> None:
    base = "one\ntwo\nthree\nfour\nfive\n"
    mine = base.replace("one", "ONE (a local edit)")
    ours = base.replace("five", "five, newer")
    merged = thin.merge(mine, base, ours, ProcessRunner())
    assert merged == thin.Merged(
        text="ONE (a local edit)\ntwo\nthree\nfour\nfive, newer\n", conflicts=0
    )
    assert thin.merge(base, base, ours, ProcessRunner()).text == ours
    assert thin.merge(mine, base, base, ProcessRunner()).text == mine


def test_a_clash_is_left_as_conflict_markers() -> None:
    base = "a\nb\nc\n"
    merged = thin.merge("a\nMINE\nc\n", base, "a\nOURS\nc\n", ProcessRunner())
    assert merged.conflicts == 1
    assert "<<<<<<< yours\nMINE\n=======\nOURS\n>>>>>>> noxgate\n" in merged.text


def test_the_thin_tasks_name_every_task_noxgate_ships() -> None:
    from ci.run import tasks

    assert tuple(tasks.__all__) == thin.TASK_NAMES
    namespace: dict[str, object] = {}
    exec(compile(thin.TASKS, "tasks.py", "exec"), namespace)  # noqa: S102 - our own template
    assert namespace["__all__"] == list(tasks.__all__)
