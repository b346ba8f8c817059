"""The ci workflow's gate jobs come from [tool.ci]: gates, Pythons and shards, then package."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from ci.core.config import load
from ci.gates import matrix

ROOT = Path(__file__).resolve().parents[2]


def project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent("""
            [project]
            name = "calc"
            version = "1.0"
            requires-python = ">=3.11"

            [tool.ci]
            """)
        + textwrap.dedent(table)
    )
    return tmp_path


def test_one_job_per_gate_session_and_python_and_no_package(tmp_path: Path) -> None:
    root = project(tmp_path, 'pythons = ["3.11", "3.13"]\n')
    found = matrix.jobs(load(cwd=root))
    sessions = [entry.session for entry in found.entries]
    assert sessions == ["lint", "test-3.11", "test-3.13", "security"]  # no workflows: no job
    assert "package" not in sessions  # it runs after them, in the package job
    assert {entry.python for entry in found.entries if entry.session == "lint"} == {"3.11"}
    assert found.combine == found.combine_dir == ""
    assert all(entry.shard == "" for entry in found.entries)


def test_the_default_python_is_split_into_shards_and_combined_once(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        pythons = ["3.12", "3.11"]

        [tool.ci.gates.test]
        shards = 3
        """,
    )
    found = matrix.jobs(load(cwd=root))
    tests = [e for e in found.entries if e.session.startswith("test-")]
    assert [(e.id, e.session, e.shard) for e in tests] == [
        ("test-3.12-1", "test-3.12", "1/3"),
        ("test-3.12-2", "test-3.12", "2/3"),
        ("test-3.12-3", "test-3.12", "3/3"),
        ("test-3.11", "test-3.11", ""),
    ]
    assert (found.combine, found.combine_dir) == ("test-3.12", "reports/shards/3.12")
    ids = [entry.id for entry in found.entries]
    assert len(ids) == len(set(ids))  # each job's artifacts and cache key are its own


def test_a_declared_gate_gets_a_job_like_a_built_in_one(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        [tool.ci.gates.docs]
        command = ["python", "-c", "print('docs')"]
        """,
    )
    found = matrix.jobs(load(cwd=root))
    assert "docs" in [entry.session for entry in found.entries]


def test_outputs_are_one_line_each_for_github_output(tmp_path: Path) -> None:
    found = matrix.jobs(load(cwd=project(tmp_path, "[tool.ci.gates.test]\nshards = 2\n")))
    lines = found.render().splitlines()
    assert [line.partition("=")[0] for line in lines] == ["gates", "combine", "combine-dir"]
    include = json.loads(lines[0].partition("=")[2])["include"]
    assert include == [entry.to_dict() for entry in found.entries]
    assert {row["cache"] for row in include} == {"true"}  # every built-in gate has inputs


def test_workflows_get_their_job_and_an_uncached_declared_gate_restores_nothing(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, '[tool.ci.gates.docs]\ncommand = ["python", "-V"]\n')
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    entries = {e.session: e for e in matrix.jobs(load(cwd=root)).entries}
    assert "workflows" in entries
    assert entries["workflows"].cache
    assert not entries["docs"].cache  # no `inputs`: never cached, so never restored


def test_plan_matrix_prints_the_outputs(tmp_path: Path) -> None:
    root = project(tmp_path, "[tool.ci.gates.test]\nshards = 2\n")
    done = subprocess.run(
        [sys.executable, "-m", "ci", "plan", "--matrix"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == matrix.jobs(load(cwd=root)).render()


def test_this_repositorys_ci_yml_runs_the_plan_matrix_and_combines_the_shards() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    jobs = workflow["jobs"]
    (plan_step,) = [s for s in jobs["plan"]["steps"] if "plan --matrix" in s.get("run", "")]
    for output in ("gates", "combine", "combine-dir"):
        assert (
            jobs["plan"]["outputs"][output]
            == f"${{{{ steps.{plan_step['id']}.outputs.{output} }}}}"
        )
    gate = jobs["gate"]
    assert gate["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.gates) }}"
    (run,) = [s for s in gate["steps"] if "nox" in s.get("run", "")]
    assert run["env"]["SESSION"] == "${{ matrix.session }}"
    assert run["env"]["CI_TEST_SHARD"] == "${{ matrix.shard }}"
    package = jobs["package"]
    assert package["needs"] == ["plan", "gate"]
    combine = next(s for s in package["steps"] if "CI_TEST_COMBINE" in s.get("env", {}))
    assert combine["env"]["CI_TEST_COMBINE"] == "${{ needs.plan.outputs.combine-dir }}"
    assert combine["env"]["CI_NO_CACHE"] == "1"  # the verdict comes from the shards' reports
    build = next(s for s in package["steps"] if "-s package" in s.get("run", ""))
    assert build["if"] == "needs.gate.result == 'success'"  # built only from passing gates
    assert package["steps"].index(combine) < package["steps"].index(build)
    # this repository's own shards reach the workflow through the plan, not written in it
    found = matrix.jobs(load(cwd=ROOT))
    assert found.combine == f"test-{load(cwd=ROOT).default_python}"
