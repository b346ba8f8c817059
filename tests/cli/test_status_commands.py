"""The status commands and the gate hook, through ``ci.cli.main``, against a real HTTP server."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from ci.cli.app import App
from ci.cli.main import main
from ci.gates import registry
from tests.github_api import GitHubAPI

TOKEN = "ghs_TESTTOKEN0123456789abcdefXYZ"
SHA = "0123456789abcdef0123456789abcdef01234567"
PY = ".".join(platform.python_version_tuple()[:2])
RUN_URL = "https://github.example/octo/demo/actions/runs/4242"
CLEAN = '"""Demo."""\n\nVALUE = 1\n'
PYPROJECT = f"""
[project]
name = "demo"
version = "1.0"

[tool.ci]
pythons = ["{PY}"]
packages = ["demo"]
"""


@pytest.fixture
def api(httpserver: HTTPServer) -> GitHubAPI:
    return GitHubAPI(server=httpserver, token=TOKEN)


@pytest.fixture
def project(make_repo: Callable[..., Path]) -> Path:
    return make_repo({"pyproject.toml": PYPROJECT, "demo/__init__.py": CLEAN}, name="project")


def github_env(api: GitHubAPI, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "CI_STATE_DIR": str(tmp_path / "state"),
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": api.api_url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": api.repo,
        "GITHUB_SHA": SHA,
        "GITHUB_RUN_ID": "4242",
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def run(argv: list[str], cwd: Path, env: dict[str, str], sleep: Sleeps | None = None) -> int:
    return main(argv, app=App(cwd=cwd, env=env, sleep=Sleeps() if sleep is None else sleep))


def assert_token_hidden(text: str, root: Path) -> None:
    """The token only ever reaches the runner's own ::add-mask:: command, never output or files."""
    for line in text.splitlines():
        assert TOKEN not in line or line.startswith("::add-mask::"), line
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert TOKEN.encode() not in path.read_bytes(), path


def write_run(project: Path, gates: list[dict[str, object]]) -> Path:
    path = project / "reports" / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": 1, "sha": SHA, "gates": gates}), encoding="utf-8")
    return path


def gate(name: str, status: str, **extra: object) -> dict[str, object]:
    return {"gate": name, "status": status, "mode": "required", "summary": "s", **extra}


# --- the gate hook ------------------------------------------------------------------------


def test_gate_lint_posts_pending_then_success_with_run_link_and_writes_summary(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["gate", "lint"], project, github_env(api, tmp_path))
    out = capsys.readouterr()
    assert code == 0, out
    assert api.posted_states(SHA) == [("ci/lint", "pending"), ("ci/lint", "success")]
    posts = api.requests("POST", "/statuses/")
    assert [p.path for p in posts] == [f"/api/v3/repos/octo/demo/statuses/{SHA}"] * 2
    assert all(p.authorization == f"Bearer {TOKEN}" for p in posts)
    assert posts[-1].body["target_url"] == RUN_URL
    assert posts[-1].body["description"].startswith("passed: clean")
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| `lint` | ✅ passed | required |" in summary
    assert RUN_URL in summary
    assert "::group::gate lint" in out.out
    assert "::endgroup::" in out.out
    run_report = json.loads((project / "reports" / "run.json").read_text(encoding="utf-8"))
    assert run_report["schema"] == 1
    assert run_report["sha"] == SHA
    assert [g["id"] for g in run_report["gates"]] == ["lint"]
    durations = (tmp_path / "state" / "durations.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(durations[-1])["gate"] == "lint"
    assert_token_hidden(out.out + out.err, tmp_path)


def test_gate_lint_failure_annotates_posts_failure_and_names_the_file(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "demo" / "extra.py").write_text('"""Extra."""\n\nimport os\n', encoding="utf-8")
    code = run(["gate", "lint"], project, github_env(api, tmp_path))
    out = capsys.readouterr()
    assert code == 1
    assert "::error file=demo/extra.py,line=3,title=lint%3A F401::" in out.out
    assert api.posted_states(SHA)[-1] == ("ci/lint", "failure")
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "### Failing steps" in summary
    assert "`demo/extra.py:3`" in summary
    assert "F401" in summary
    assert_token_hidden(out.out + out.err, tmp_path)


def test_gate_without_token_prints_one_notice_and_keeps_the_exit_code(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "demo" / "extra.py").write_text('"""Extra."""\n\nimport os\n', encoding="utf-8")
    code = run(["gate", "lint"], project, github_env(api, tmp_path, GITHUB_TOKEN=""))
    out = capsys.readouterr().out
    assert code == 1
    notices = [line for line in out.splitlines() if line.startswith("notice:")]
    assert notices == [
        "notice: GITHUB_TOKEN (or GH_TOKEN) is not set; commit statuses are not posted"
    ]
    assert api.seen == []
    assert "demo/extra.py" in (tmp_path / "summary.md").read_text(encoding="utf-8")


def test_gate_off_github_writes_reports_but_publishes_nothing(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = github_env(api, tmp_path, GITHUB_ACTIONS="")
    assert run(["gate", "lint"], project, env) == 0
    out = capsys.readouterr().out
    assert api.seen == []
    assert "::" not in out
    assert not (tmp_path / "summary.md").exists()
    assert (project / "reports" / "lint.json").exists()
    assert (project / "reports" / "run.json").exists()


def test_gate_status_api_errors_warn_and_leave_the_exit_code(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.fail_statuses = 1  # the pending post fails once, then is retried and succeeds
    assert run(["gate", "lint"], project, github_env(api, tmp_path)) == 0
    assert api.posted_states(SHA) == [("ci/lint", "pending"), ("ci/lint", "success")]
    assert len(api.requests("POST", "/statuses/")) == 3
    capsys.readouterr()


def test_gate_over_a_blocking_budget_fails_with_a_warning_annotation(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    budget = "\n[tool.ci.gates.lint]\nbudget_s = 0.001\nbudget_blocks = true\n"
    pyproject.write_text(pyproject.read_text() + budget, encoding="utf-8")
    assert run(["gate", "lint"], project, github_env(api, tmp_path)) == 1
    out = capsys.readouterr().out
    assert "::warning title=lint::took " in out
    assert "over its budget of 0.001 s" in out
    assert api.posted_states(SHA)[-1] == ("ci/lint", "failure")
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| 0.001 s |" in summary
    assert "### Warnings" in summary


def test_gate_test_uses_ci_test_and_lists_the_slowest_tests(
    api: GitHubAPI,
    make_repo: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tests = "def test_one():\n    assert 1\n\n\ndef test_two():\n    assert 2\n"
    project = make_repo(
        {
            "pyproject.toml": PYPROJECT,
            "demo/__init__.py": CLEAN,
            "tests/test_demo.py": "import demo\n\n\n" + tests,
        }
    )
    code = run(["gate", "test"], project, github_env(api, tmp_path))
    out = capsys.readouterr()
    assert code == 0, out.out[-2000:]
    assert api.posted_states(SHA) == [("ci/test", "pending"), ("ci/test", "success")]
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert f"### Slowest tests (test-{PY})" in summary
    assert "`tests.test_demo::test_one`" in summary


def test_gate_that_cannot_finish_turns_its_pending_status_into_error(
    api: GitHubAPI,
    make_repo: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_repo(
        {
            "pyproject.toml": PYPROJECT,
            "demo/__init__.py": CLEAN,
            "tests/test_demo.py": "import demo\n\n\ndef test_one():\n    assert demo.VALUE\n",
            "reports/coverage-baseline.json": '{"coverage": "lots"}',
        }
    )
    assert run(["gate", "test"], project, github_env(api, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "coverage-baseline.json is not a coverage baseline" in err
    assert api.posted_states(SHA) == [("ci/test", "pending"), ("ci/test", "error")]
    assert api.statuses[SHA][-1]["description"].startswith("did not finish: ")
    assert "coverage-baseline.json" in api.statuses[SHA][-1]["description"]


# --- status publish -----------------------------------------------------------------------


def test_status_publish_posts_each_gate_of_the_run_report(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finding = {"rule": "F401", "message": "`os` imported but unused", "file": "a.py", "line": 2}
    write_run(
        project,
        [
            gate("lint", "failed", findings=[finding]),
            gate("test", "passed", variant=PY),
            gate("test", "error", variant="3.99"),
        ],
    )
    code = run(
        ["status", "publish", "--report", "reports/run.json"], project, github_env(api, tmp_path)
    )
    out = capsys.readouterr().out
    assert code == 0
    assert api.posted_states(SHA) == [
        ("ci/lint", "failure"),
        ("ci/test", "success"),
        ("ci/test-3.99", "error"),
    ]
    assert "::error file=a.py,line=2,title=lint%3A F401::`os` imported but unused" in out
    assert "posted 3 status(es)" in out
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "noxgate run: failed" in summary
    assert "`a.py:2`" in summary


def test_status_publish_dry_run_posts_nothing(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(project, [gate("lint", "passed")])
    assert run(["status", "publish", "--dry-run"], project, github_env(api, tmp_path)) == 0
    assert "ci/lint: success: passed: s" in capsys.readouterr().out
    assert api.seen == []


def test_status_publish_gives_up_with_a_warning_and_masks_what_the_server_echoes(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.always_fail = True  # and the server echoes the Authorization header in its error
    write_run(project, [gate("lint", "passed"), gate("secrets", "passed"), gate("audit", "passed")])
    sleeps = Sleeps()
    code = run(["status", "publish"], project, github_env(api, tmp_path), sleeps)
    out = capsys.readouterr()
    assert code == 0
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(api.requests("POST")) == 4  # the API is down: the other two are not attempted
    assert "warning: 2 more status(es) not posted" in out.out
    assert "warning: posting status ci/lint failed after 4 attempt(s) (HTTP 500" in out.out
    assert "Bearer ***" in out.out
    assert_token_hidden(out.out + out.err, tmp_path)


def test_status_publish_without_report_is_a_usage_error(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["status", "publish"], project, github_env(api, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "run.json does not exist; run a gate first" in err
    assert len(err.strip().splitlines()) == 1


# --- status require -----------------------------------------------------------------------


def test_status_require_names_the_missing_context(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.statuses[SHA] = [{"context": "ci/lint", "state": "success", "description": "passed"}]
    argv = ["status", "require", "--contexts", "ci/lint,ci/test"]
    assert run(argv, project, github_env(api, tmp_path)) == 1
    out = capsys.readouterr().out
    assert "ci/lint: success" in out
    assert "error: 1 of 2 required context(s) not green" in out
    assert "ci/test: missing" in out
    gets = api.requests("GET")
    assert {g.path for g in gets} == {
        f"/api/v3/repos/octo/demo/commits/{SHA}/status",
        f"/api/v3/repos/octo/demo/commits/{SHA}/check-runs",
    }
    assert all(g.authorization == f"Bearer {TOKEN}" for g in gets)


def test_status_require_passes_on_statuses_and_check_runs(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.statuses[SHA] = [
        {"context": "ci/lint", "state": "pending"},
        {"context": "ci/lint", "state": "success"},
    ]
    api.check_runs[SHA] = [{"name": "ci/test", "status": "completed", "conclusion": "success"}]
    argv = ["status", "require", "--contexts", "ci/lint", "--contexts", "ci/test"]
    assert run(argv, project, github_env(api, tmp_path)) == 0
    assert "all 2 required context(s) are green" in capsys.readouterr().out


def test_status_require_falls_back_to_statuses_when_check_runs_are_forbidden(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.checks_forbidden = True
    api.statuses[SHA] = [{"context": "ci/lint", "state": "success"}]
    assert (
        run(["status", "require", "--contexts", "ci/lint"], project, github_env(api, tmp_path)) == 0
    )
    out = capsys.readouterr().out
    assert "notice: reading the check runs failed (HTTP 403" in out
    assert "judging by commit statuses only" in out


def test_status_require_default_contexts_come_from_the_config(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.check_runs[SHA] = [{"name": "ci/lint", "status": "completed", "conclusion": "failure"}]
    assert run(["status", "require"], project, github_env(api, tmp_path)) == 1
    out = capsys.readouterr().out
    assert "ci/lint: failure (failure)" in out
    assert "ci/test: missing" in out


def test_status_require_waits_for_pending_contexts(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.check_runs[SHA] = [{"name": "ci/test", "status": "in_progress", "conclusion": None}]
    sleeps = Sleeps()

    def finish(seconds: float) -> None:
        sleeps.append(seconds)
        api.check_runs[SHA] = [{"name": "ci/test", "status": "completed", "conclusion": "success"}]

    argv = ["status", "require", "--contexts", "ci/test", "--wait", "60", "--interval", "0.01"]
    assert main(argv, app=App(cwd=project, env=github_env(api, tmp_path), sleep=finish)) == 0
    assert sleeps == [0.01]
    capsys.readouterr()


def test_status_require_fails_fast_without_waiting(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.statuses[SHA] = [{"context": "ci/lint", "state": "failure", "description": "2 findings"}]
    sleeps = Sleeps()
    argv = ["status", "require", "--contexts", "ci/lint,ci/test", "--wait", "600"]
    assert run(argv, project, github_env(api, tmp_path), sleeps) == 1
    assert sleeps == []
    assert "ci/lint: failure (failure: 2 findings)" in capsys.readouterr().out


def test_status_require_wait_is_bounded(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["status", "require", "--contexts", "ci/test", "--wait", "0.2", "--interval", "0.05"]
    assert main(argv, app=App(cwd=project, env=github_env(api, tmp_path))) == 1
    assert "ci/test: missing" in capsys.readouterr().out
    assert 2 <= len(api.requests("GET", "/status")) <= 6


def test_status_require_unreachable_api_exits_6(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], api: GitHubAPI
) -> None:
    env = github_env(api, tmp_path, GITHUB_API_URL="http://127.0.0.1:9")
    assert run(["status", "require", "--contexts", "ci/lint"], project, env) == 6
    err = capsys.readouterr().err
    assert "reading the combined status failed after 4 attempt(s)" in err
    assert "http://127.0.0.1 unreachable" in err


def test_status_require_without_token_reads_anonymously(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.statuses[SHA] = [{"context": "ci/lint", "state": "success"}]
    env = github_env(api, tmp_path, GITHUB_TOKEN="")
    assert run(["status", "require", "--contexts", "ci/lint"], project, env) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "notice: GITHUB_TOKEN (or GH_TOKEN) is not set; reading statuses without auth"
    )
    assert all(s.authorization is None for s in api.seen)


def test_status_require_and_protect_take_gh_token(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the token rule of release-record and the deployments mirror; GH_TOKEN was ignored here
    api.statuses[SHA] = [{"context": "ci/lint", "state": "success"}]
    env = github_env(api, tmp_path, GITHUB_TOKEN="", GH_TOKEN=TOKEN)
    assert run(["status", "require", "--contexts", "ci/lint"], project, env) == 0
    assert run(["protect", "--apply"], project, env) == 0
    assert "notice" not in capsys.readouterr().out
    assert api.seen
    assert all(s.authorization == f"Bearer {TOKEN}" for s in api.seen)


def test_status_require_needs_a_repository(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], api: GitHubAPI
) -> None:
    env = github_env(api, tmp_path, GITHUB_REPOSITORY="")
    assert run(["status", "require"], project, env) == 2
    assert "GITHUB_REPOSITORY is not set to owner/name" in capsys.readouterr().err


def test_status_require_uses_head_when_no_sha_is_given(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    api.statuses[head] = [{"context": "ci/lint", "state": "success"}]
    env = github_env(api, tmp_path, GITHUB_SHA="")
    assert run(["status", "require", "--contexts", "ci/lint"], project, env) == 0
    capsys.readouterr()


# --- notify -------------------------------------------------------------------------------


def test_notify_posts_the_failing_gates_and_the_run_link(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(project, [gate("lint", "failed", summary="2 finding(s)"), gate("test", "passed")])
    argv = ["notify", "--webhook-url", api.webhook_url]
    assert run(argv, project, github_env(api, tmp_path)) == 0
    out = capsys.readouterr().out
    [message] = api.webhook
    assert message["text"] == message["content"]
    assert "octo/demo@0123456" in message["text"]
    assert "- lint: failed: 2 finding(s)" in message["text"]
    assert "test" not in message["text"].split("failing")[1].split("Run:")[0]
    assert f"Run: {RUN_URL}" in message["text"]
    assert "notified http://localhost: 1 failing gate(s)" in out
    assert "SECRETPATH" not in out


def test_notify_reads_the_url_from_the_environment_and_skips_passed_runs(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = github_env(api, tmp_path, CI_NOTIFY_WEBHOOK=api.webhook_url)
    write_run(project, [gate("lint", "passed")])
    assert run(["notify"], project, env) == 0
    assert "the run passed; no notification sent" in capsys.readouterr().out
    write_run(project, [gate("lint", "failed")])
    assert run(["notify"], project, env) == 0
    assert len(api.webhook) == 1


def test_notify_without_a_url_or_with_a_broken_hook_keeps_exit_0(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(project, [gate("lint", "failed")])
    assert run(["notify"], project, github_env(api, tmp_path)) == 0
    assert "notice: no webhook configured" in capsys.readouterr().out
    broken = "http://127.0.0.1:9/hooks/SECRETPATH"
    assert run(["notify", "--webhook-url", broken], project, github_env(api, tmp_path)) == 0
    out = capsys.readouterr().out
    assert "warning: notifying failed after 4 attempt(s)" in out
    assert "SECRETPATH" not in out


def test_notify_dry_run_prints_the_message(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(project, [gate("lint", "failed")])
    argv = ["notify", "--dry-run", "--webhook-url", api.webhook_url]
    assert run(argv, project, github_env(api, tmp_path)) == 0
    assert '"content": "CI failed for octo/demo@0123456' in capsys.readouterr().out
    assert api.seen == []


# --- protect ------------------------------------------------------------------------------


def test_protect_prints_the_payload_from_the_config(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], api: GitHubAPI
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.ci.gates.test]\nmode = "advisory"\n', encoding="utf-8"
    )
    assert run(["protect"], project, github_env(api, tmp_path, GITHUB_ACTIONS="")) == 0
    payload = json.loads(capsys.readouterr().out)
    # every registered gate but the advisory test gate (more gates register as they land)
    checks = [{"context": f"ci/{g.name}"} for g in registry.BUILTIN if g.name != "test"]
    assert payload["required_status_checks"] == {"strict": True, "checks": checks}
    assert payload["allow_force_pushes"] is False
    assert api.seen == []


def test_protect_apply_puts_the_payload(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["protect", "--branch", "release/1.x", "--apply"]
    assert run(argv, project, github_env(api, tmp_path)) == 0
    [put] = api.requests("PUT")
    assert put.raw_path == "/api/v3/repos/octo/demo/branches/release%2F1.x/protection"
    assert put.authorization == f"Bearer {TOKEN}"
    contexts = [f"ci/{g.name}" for g in registry.BUILTIN]
    assert contexts[:2] == ["ci/lint", "ci/test"]
    assert put.body["required_status_checks"]["checks"] == [{"context": c} for c in contexts]
    expected = f"protected octo/demo@release/1.x: required {', '.join(contexts)}"
    assert expected in capsys.readouterr().out


def test_protect_apply_without_token_is_a_usage_error(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = github_env(api, tmp_path, GITHUB_TOKEN="")
    assert run(["protect", "--apply"], project, env) == 2
    assert "protect --apply needs GITHUB_TOKEN" in capsys.readouterr().err
    assert api.seen == []


def test_protect_apply_with_a_bad_token_exits_3(
    api: GitHubAPI, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # exit 3 (credentials refused), as for every GitHub call; it was 6 here before
    env = github_env(api, tmp_path, GITHUB_TOKEN="ghs_wrongwrongwrong")
    assert run(["protect", "--apply"], project, env) == 3
    err = capsys.readouterr().err
    assert "protecting branch main failed (HTTP 401" in err
    assert len(api.requests("PUT")) == 1  # a 401 is not retried


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["status", "publish", "--help"], "GITHUB_STEP_SUMMARY"),
        (["status", "require", "--help"], "fail fast"),
        (["notify", "--help"], "Discord"),
        (["protect", "--help"], "force-pushes"),
    ],
)
def test_help_explains(argv: list[str], phrase: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    assert phrase in " ".join(capsys.readouterr().out.split())
