"""Deploys and rollbacks mirrored to GitHub Deployments, against a loopback GitHub API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from ci.cli.app import App
from ci.cli.main import main
from ci.core.http import UrllibClient
from ci.github import deployments
from tests.support.deploy_project import ledger_of, record_command, toml_list, write_project
from tests.support.fake_github import REPO, TOKEN, FakeGitHub

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    """A real HTTP server on 127.0.0.1 (a free port) shared by this module's tests."""
    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    yield srv
    srv.clear()
    srv.stop()


@pytest.fixture
def github(server: HTTPServer) -> Iterator[FakeGitHub]:
    server.clear()
    yield FakeGitHub(server=server, token=TOKEN).install()
    server.clear()


def on_github(github: FakeGitHub, variable: str = "GITHUB_TOKEN") -> dict[str, str]:
    return {
        **os.environ,
        "GITHUB_ACTIONS": "true",
        variable: TOKEN,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": github.api_url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_SHA": SHA,
    }


def project(tmp_path: Path, fail_on: str = "") -> Path:
    command = toml_list(record_command(tmp_path / "deploys.log", fail_on=fail_on))
    return write_project(
        tmp_path / "app", f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    )


def run(cfg: Path, env: dict[str, str], *argv: str) -> int:
    app = App(env=env, sleep=lambda _s: None)
    return main(["--config", str(cfg), *argv], app=app)


def test_each_deploy_is_a_deployment_and_the_one_before_goes_inactive(
    tmp_path: Path, github: FakeGitHub
) -> None:
    cfg = project(tmp_path)
    env = on_github(github, variable="GH_TOKEN")  # either token variable works
    assert run(cfg, env, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert run(cfg, env, "deploy", "--env", "staging", "--version", "1.1.0") == 0
    assert github.deployment_history() == [
        ("staging", "deploy 1.0.0", ["in_progress", "success", "inactive"]),
        ("staging", "deploy 1.1.0", ["in_progress", "success"]),
    ]
    first = next(iter(github.deployments.values()))
    assert first["ref"] == SHA
    assert first["auto_merge"] is False
    assert first["required_contexts"] == []
    statuses = github.deployment_statuses[first["id"]]
    assert {s["log_url"] for s in statuses} == {f"https://github.example/{REPO}/actions/runs/4242"}


def test_a_failed_deploy_and_its_automatic_rollback_are_both_shown(
    tmp_path: Path, github: FakeGitHub
) -> None:
    cfg = project(tmp_path, fail_on="1.1.0")
    env = on_github(github)
    assert run(cfg, env, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert run(cfg, env, "deploy", "--env", "staging", "--version", "1.1.0") == 5
    history = github.deployment_history()
    assert history == [
        ("staging", "deploy 1.0.0", ["in_progress", "success", "inactive"]),
        ("staging", "deploy 1.1.0", ["in_progress", "failure"]),
        ("staging", "rollback 1.0.0", ["in_progress", "success"]),
    ]
    tasks = [d["task"] for d in github.deployments.values()]
    assert tasks == ["deploy", "deploy", "deploy:rollback"]


def test_an_api_error_is_a_warning_and_the_deploy_and_ledger_stand(
    tmp_path: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = project(tmp_path)
    github.failures = [("POST", 500)] * 8  # every retry of the first deployment fails
    assert run(cfg, on_github(github), "deploy", "--env", "staging", "--version", "1.0.0") == 0
    out = capsys.readouterr().out
    assert "warning: GitHub deployment not recorded" in out
    shown = [line for line in out.splitlines() if not line.startswith("::add-mask::")]
    assert not any(TOKEN in line for line in shown)  # only the runner's mask command has it
    state = Path(os.environ["CI_STATE_DIR"])
    assert [e.outcome for e in ledger_of(state).verify()] == ["started", "succeeded"]


def test_off_github_or_without_a_token_nothing_is_sent(
    tmp_path: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = project(tmp_path)
    local = {k: v for k, v in on_github(github).items() if k != "GITHUB_ACTIONS"}
    assert run(cfg, local, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    tokenless = {k: v for k, v in on_github(github).items() if k != "GITHUB_TOKEN"}
    assert run(cfg, tokenless, "deploy", "--env", "staging", "--version", "1.1.0") == 0
    assert "GITHUB_TOKEN or GH_TOKEN not set" in capsys.readouterr().out
    assert github.requests() == []


def test_the_mirror_is_built_only_on_github_with_everything_it_needs() -> None:
    client = UrllibClient()
    assert deployments.from_env({}, client) is None
    base = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": REPO, "GITHUB_SHA": SHA}
    notes: list[str] = []
    assert deployments.from_env(base, client, warn=notes.append) is None
    assert notes == [
        "notice: GITHUB_TOKEN or GH_TOKEN not set: deployments are not mirrored to GitHub"
    ]
    mirror = deployments.from_env({**base, "GH_TOKEN": TOKEN}, client)
    assert mirror is not None
    assert mirror.ref == SHA
