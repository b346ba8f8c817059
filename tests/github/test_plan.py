from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core.errors import UsageError
from ci.github import expressions, plan
from ci.github.workflow_files import parse

ROOT = Path(__file__).resolve().parents[2]


def wf(text: str, rel: str = ".github/workflows/w.yml"):
    return parse(textwrap.dedent(text).lstrip("\n"), rel)


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("main", "main", True),
        ("main", "mainline", False),
        ("release/*", "release/1.2", True),
        ("release/*", "release/1.2/hotfix", False),
        ("release/**", "release/1.2/hotfix", True),
        ("release/**", "release", False),
        ("**", "any/thing", True),
        ("*", "feature/x", False),
        ("v*", "v1.0.0", True),
        ("v[12].*", "v2.0", True),
        ("v[12].*", "v3.0", False),
        ("v1.?0", "v1.0", True),  # ? makes the character before it optional
        ("v1.?0", "v10", True),
        ("ab+c", "abbbc", True),
        ("ab+c", "ac", False),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("v[0-9]+.[0-9]+.[0-9]+", "v12.3.4", True),
    ],
)
def test_github_filter_patterns(pattern, name, expected):
    assert bool(plan.pattern_regex(pattern).match(name)) is expected


def test_negated_patterns_later_ones_win():
    patterns = ["releases/**", "!releases/**-alpha", "releases/keep-alpha"]
    assert plan.matches(patterns, "releases/1.0")
    assert not plan.matches(patterns, "releases/1.0-alpha")
    assert plan.matches(patterns, "releases/keep-alpha")
    assert not plan.matches(patterns, "main")


def test_event_for_normalises_refs_and_rejects_bad_input():
    assert plan.event_for("push", None) == plan.Event(name="push", ref="refs/heads/main")
    assert plan.event_for("tag", None, version="1.2.0").ref == "refs/tags/v1.2.0"
    assert plan.event_for("tag", "refs/tags/v9").ref_name == "v9"
    assert plan.event_for("pull_request", "develop").ref == "refs/heads/develop"
    with pytest.raises(UsageError, match="needs a tag"):
        plan.event_for("tag", "refs/heads/main")
    with pytest.raises(UsageError, match="unknown event"):
        plan.event_for("release", None)


FILTERS = """
on:
  push:
    branches: [main, "release/**", "!release/**-wip"]
    tags: ["v*"]
  pull_request:
    branches: [main]
permissions: {}
jobs:
  a: {runs-on: x, steps: [{run: 'true'}]}
"""


@pytest.mark.parametrize(
    ("event", "ref", "runs"),
    [
        ("push", "main", True),
        ("push", "release/2.0", True),
        ("push", "release/2.0-wip", False),
        ("push", "feature/x", False),
        ("tag", "v1.0.0", True),
        ("tag", "nightly", False),
        ("pull_request", "main", True),
        ("pull_request", "develop", False),
        ("schedule", None, False),
    ],
)
def test_trigger_filters(event, ref, runs):
    result = plan.plan_workflow(wf(FILTERS), plan.event_for(event, ref))
    assert result.triggered is runs
    assert bool(result.jobs) is runs


def test_branch_only_push_filters_ignore_tags_and_the_other_way_round():
    branches = wf("on:\n  push:\n    branches: [main]\njobs: {a: {runs-on: x, steps: []}}\n")
    tags = wf("on:\n  push:\n    tags: ['v*']\njobs: {a: {runs-on: x, steps: []}}\n")
    bare = wf("on: [push]\njobs: {a: {runs-on: x, steps: []}}\n")
    tag = plan.event_for("tag", "v1")
    main_push = plan.event_for("push", "main")
    assert not plan.plan_workflow(branches, tag).triggered
    assert "only branches" in plan.plan_workflow(branches, tag).reason
    assert not plan.plan_workflow(tags, main_push).triggered
    assert plan.plan_workflow(bare, tag).triggered
    assert plan.plan_workflow(bare, main_push).triggered


def test_ignore_filters():
    text = "on:\n  push:\n    branches-ignore: ['dependabot/**']\njobs: {a: {runs-on: x}}\n"
    assert plan.plan_workflow(wf(text), plan.event_for("push", "main")).triggered
    assert not plan.plan_workflow(wf(text), plan.event_for("push", "dependabot/pip/x")).triggered


ORDERED = """
on: [push, pull_request]
permissions: {}
jobs:
  package:
    needs: [lint, test]
    runs-on: x
    if: github.event_name == 'push'
    steps: [{uses: astral-sh/setup-uv@x, with: {python-version: "3.12"}}]
  deploy:
    needs: package
    runs-on: x
    environment: {name: staging}
    steps: [{run: 'true'}]
  report:
    needs: package
    if: always()
    runs-on: x
    steps: [{run: 'true'}]
  test:
    runs-on: x
    strategy:
      matrix:
        python: ["3.11", "3.12", "3.13"]
        os: [a, b]
        include: [{python: "3.14", os: a}]
    steps: [{uses: astral-sh/setup-uv@x, with: {python-version: "${{ matrix.python }}"}}]
  lint:
    runs-on: x
    if: startsWith(github.ref, 'refs/tags/') || github.ref_type == 'branch'
    steps: [{run: 'true'}]
  odd:
    runs-on: x
    if: ${{ vars.ENABLED == 'yes' }}
    steps: [{run: 'true'}]
"""


def test_jobs_are_ordered_by_needs_with_pythons_and_conditions():
    push = plan.plan_workflow(wf(ORDERED), plan.event_for("push", "main"))
    assert [(j.stage, j.id) for j in push.jobs] == [
        (1, "lint"),
        (1, "odd"),
        (1, "test"),
        (2, "package"),
        (3, "deploy"),
        (3, "report"),
    ]
    jobs = {j.id: j for j in push.jobs}
    assert jobs["test"].pythons == ("3.11", "3.12", "3.13", "3.14")
    assert jobs["test"].matrix_size == 7
    assert jobs["package"].pythons == ("3.12",)
    assert jobs["package"].needs == ("lint", "test")
    assert jobs["deploy"].environment == "staging"
    assert all(j.runs for j in push.jobs)
    assert "known only at run time" in jobs["odd"].note

    pr = plan.plan_workflow(wf(ORDERED), plan.event_for("pull_request", "main"))
    jobs = {j.id: j for j in pr.jobs}
    assert not jobs["package"].runs
    assert "github.event_name == 'push'" in jobs["package"].note
    assert not jobs["deploy"].runs
    assert "needs package" in jobs["deploy"].note
    assert jobs["report"].runs  # always() runs even after a skipped need
    assert jobs["lint"].runs


def test_a_cycle_or_an_unknown_need_is_a_usage_error():
    cycle = "on: push\njobs:\n  a: {needs: b, runs-on: x}\n  b: {needs: a, runs-on: x}\n"
    with pytest.raises(UsageError, match="cycle: a -> b -> a"):
        plan.plan_workflow(wf(cycle), plan.event_for("push", "main"))
    ghost = "on: push\njobs:\n  a: {needs: ghost, runs-on: x}\n"
    with pytest.raises(UsageError, match="'ghost', which is not a job"):
        plan.plan_workflow(wf(ghost), plan.event_for("push", "main"))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("github.event_name == 'push'", True),
        ("github.event_name == 'PUSH'", True),  # string comparison ignores case
        ("github.event_name != 'push'", False),
        ("${{ startsWith(github.ref, 'refs/tags/v') }}", True),
        ("endsWith(github.ref_name, '.0')", True),
        ("contains(github.ref, 'tags')", True),
        ("!startsWith(github.ref, 'refs/heads/')", True),
        ("github.ref_type == 'tag' && success()", True),
        ("failure() || github.ref_type == 'branch'", False),
        ("(1 < 2) && 'a' == 'a'", True),
        ("vars.X == 'y'", expressions.UNKNOWN),
        ("vars.X == 'y' || github.event_name == 'push'", True),
        ("vars.X == 'y' && github.event_name == 'pull_request'", False),
        ("matrix.python", expressions.UNKNOWN),
        ("format('{0}', github.ref)", expressions.UNKNOWN),
        ("'it''s'", "it's"),
        ("null", None),
        ("1 == '1'", True),  # different types compare as numbers
        ("true == 1", True),
        ("null == 0", True),
        ("'abc' == 1", False),  # NaN equals nothing
        ("'b' > 'a'", True),
        ("2.5 >= 2", True),
        ("endsWith(1.0, '1')", True),
        ("contains(true, 'tru')", True),
        ("startsWith(null, '')", True),
        ("github['ref_type'] == 'tag'", True),
        ("vars.X[0]", expressions.UNKNOWN),
        ("!vars.X", expressions.UNKNOWN),
        ("'' || 'fallback'", "fallback"),
        ("'x' && ''", ""),
    ],
)
def test_expressions(expression, expected):
    context = plan.event_for("tag", "v1.0").context()
    assert expressions.evaluate(expression, context) == expected


def test_expression_errors_are_usage_errors():
    with pytest.raises(expressions.ExpressionError):
        expressions.evaluate("github.ref ==", {})
    with pytest.raises(expressions.ExpressionError):
        expressions.evaluate("(a", {})
    with pytest.raises(expressions.ExpressionError):
        expressions.evaluate("a b", {})


def _project(tmp_path: Path, workflows: dict[str, str] | None = None) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "2.1.0"\n')
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    if workflows is None:
        for path in (ROOT / ".github" / "workflows").glob("*.yml"):
            (folder / path.name).write_text(path.read_text())
    else:
        for name, text in workflows.items():
            (folder / name).write_text(text)
    return tmp_path


def test_cli_plan_of_this_repository_workflows(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path))
    assert main(["plan", "--event", "tag"]) == 0
    out = capsys.readouterr().out
    assert "plan for push of refs/tags/v2.1.0" in out
    assert ".github/workflows/release.yml (release): runs" in out
    # the gate job's matrix is the plan job's output: what `plan --matrix` writes for [tool.ci]
    assert "gate       python 3.12, 3.11, 3.13 (matrix of 6)  needs plan" in out
    assert "environment production" in out

    assert main(["plan", "--event", "push", "--ref", "feature/x", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == 1
    assert data["ref"] == "refs/heads/feature/x"
    assert not any(w["triggered"] for w in data["workflows"])

    assert main(["plan", "--event", "pull_request", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ci = next(w for w in data["workflows"] if w["file"].endswith("ci.yml"))
    assert ci["triggered"]
    order = [(j["stage"], j["id"]) for j in ci["jobs"]]
    assert order[:2] == [(1, "plan"), (2, "gate")]
    assert (3, "package") in order  # after the gates (and their shards combined)
    assert order[-1] == (4, "dashboard")  # the run history of every job, drawn last
    release = next(w for w in data["workflows"] if w["file"].endswith("release.yml"))
    assert not release["triggered"]


def test_cli_plan_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, {"w.yml": "on: push\njobs: [\n"}))
    assert main(["plan"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: .github/workflows/w.yml:3: not valid YAML")
    assert len(err.strip().splitlines()) == 1
    assert main(["plan", "--event", "release"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_plan_shows_the_test_shards_of_a_matrix() -> None:
    job = {
        "strategy": {
            "matrix": {
                "include": [
                    {"python": "3.12", "shard": "1/2"},
                    {"python": "3.12", "shard": "2/2"},
                    {"python": "3.11", "shard": ""},
                ]
            }
        }
    }
    assert plan.shards_of(job) == ("3.12 1/2", "3.12 2/2")
    assert plan.shards_of({"strategy": {"matrix": {"python": ["3.12"]}}}) == ()


def test_a_matrix_from_a_job_output_is_read_from_what_the_plan_job_writes() -> None:
    job = {
        "strategy": {"matrix": "${{ fromJSON(needs.plan.outputs.gates) }}"},
        "steps": [{"with": {"python-version": "${{ matrix.python }}"}}],
    }
    assert plan.pythons_of(job) == ((), 1)  # unknown before the run
    gates = {
        "include": [
            {"python": "3.12", "shard": "1/2"},
            {"python": "3.12", "shard": "2/2"},
            {"python": "3.11", "shard": ""},
            {"python": "3.12", "shard": ""},
        ]
    }
    assert plan.pythons_of(job, {"gates": gates}) == (("3.12", "3.11"), 4)
    assert plan.shards_of(job, {"gates": gates}) == ("3.12 1/2", "3.12 2/2")
    assert plan.pythons_of(job, {"other": gates}) == ((), 1)
    # an axis with include entries still multiplies, as before
    axis = {"strategy": {"matrix": {"python": ["3.12", "3.11"], "include": [{"python": "3.13"}]}}}
    assert plan.pythons_of(axis) == (("3.12", "3.11", "3.13"), 3)
