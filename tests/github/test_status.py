"""The pure parts of ci.github.status: contexts, states, required-check verdicts, payloads."""

from __future__ import annotations

import json
from pathlib import Path

from ci.core.config import Mode
from ci.core.gate import GateResult, GateStatus
from ci.github.status import (
    DESCRIPTION_MAX,
    CheckState,
    GitHubEnv,
    Observed,
    context_name,
    judge_required,
    notify_payload,
    observed,
    protection_payload,
    update_for,
    wait_for,
)


def test_context_names() -> None:
    assert context_name("lint", "", "3.12") == "ci/lint"
    assert context_name("test", "3.12", "3.12") == "ci/test"
    assert context_name("test", "3.11", "3.12") == "ci/test-3.11"


def test_github_env_reads_variables_and_hides_the_token() -> None:
    env = GitHubEnv.from_env(
        {
            "GITHUB_API_URL": "http://127.0.0.1:1/api/",
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_RUN_ID": "9",
            "GITHUB_TOKEN": "ghs_hidden",
            "GITHUB_ACTIONS": "true",
        }
    )
    assert env.api_url == "http://127.0.0.1:1/api"
    assert env.run_url == "https://github.com/o/r/actions/runs/9"
    assert env.actions
    assert "ghs_hidden" not in repr(env)
    assert env.missing_for_statuses() == "GITHUB_SHA not set; commit statuses are not posted"
    assert env.missing_for_statuses("abc") is None
    assert GitHubEnv.from_env({}).missing_for_statuses() == (
        "GITHUB_TOKEN (or GH_TOKEN) is not set; commit statuses are not posted"
    )
    assert GitHubEnv.from_env({}).run_url is None


def test_pull_requests_post_to_the_head_commit(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"sha": "feed" * 10}}}))
    env = {"GITHUB_SHA": "merge" * 8, "GITHUB_EVENT_PATH": str(event)}
    assert GitHubEnv.from_env(env).sha == "merge" * 8
    assert GitHubEnv.from_env({**env, "GITHUB_EVENT_NAME": "pull_request"}).sha == "feed" * 10
    event.write_text("{}")
    assert GitHubEnv.from_env({**env, "GITHUB_EVENT_NAME": "pull_request"}).sha == "merge" * 8


def test_update_for_maps_states_and_keeps_descriptions_short() -> None:
    long = GateResult(gate="lint", status=GateStatus.FAILED, summary="x" * 500, duration_s=2)
    update = update_for(long, "3.12", "https://run")
    assert update.state == "failure"
    assert len(update.description) == DESCRIPTION_MAX
    assert update.description.endswith("…")
    assert update.payload()["target_url"] == "https://run"
    crashed = GateResult(gate="test", variant="3.13", status=GateStatus.ERROR)
    assert update_for(crashed, "3.12", None).state == "error"
    assert update_for(crashed, "3.12", None).context == "ci/test-3.13"
    assert "target_url" not in update_for(crashed, "3.12", None).payload()
    cached = GateResult(gate="lint", status=GateStatus.CACHED, mode=Mode.ADVISORY)
    assert update_for(cached, "3.12", None).state == "success"
    assert update_for(cached, "3.12", None).description.startswith("advisory: cached")


def test_observed_maps_statuses_and_check_runs() -> None:
    seen = observed(
        [{"context": "a", "state": "error", "description": "boom"}],
        [
            {"name": "b", "status": "completed", "conclusion": "skipped"},
            {"name": "c", "status": "queued", "conclusion": None},
            {"name": "d", "status": "completed", "conclusion": "timed_out"},
        ],
    )
    assert [(o.context, o.state) for o in seen] == [
        ("a", CheckState.FAILURE),
        ("b", CheckState.SUCCESS),
        ("c", CheckState.PENDING),
        ("d", CheckState.FAILURE),
    ]
    assert seen[0].detail == "error: boom"


def test_judge_required_takes_the_worst_state_and_reports_missing() -> None:
    seen = [
        Observed(context="ci/lint", state=CheckState.SUCCESS),
        Observed(context="ci/lint", state=CheckState.FAILURE, detail="x"),
        Observed(context="other", state=CheckState.FAILURE),
    ]
    verdict = judge_required(["ci/lint", "ci/test"], seen)
    assert not verdict
    assert verdict.failed
    assert verdict.problems() == ["ci/lint: failure (x)", "ci/test: missing"]
    assert judge_required(["ci/lint"], seen[:1])


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_for_stops_at_the_deadline() -> None:
    clock = FakeTime()
    pending = [Observed(context="ci/test", state=CheckState.PENDING)]
    verdict = wait_for(
        ["ci/test"],
        lambda: pending,
        wait_s=25,
        interval_s=10,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    assert not verdict
    assert clock.sleeps == [10, 10, 5]


def test_wait_for_fails_fast_and_returns_on_success() -> None:
    clock = FakeTime()
    answers = iter(
        [
            [Observed(context="a", state=CheckState.PENDING)],
            [Observed(context="a", state=CheckState.SUCCESS)],
        ]
    )
    kwargs = {"wait_s": 100, "interval_s": 1, "monotonic": clock.monotonic, "sleep": clock.sleep}
    assert wait_for(["a"], lambda: next(answers), **kwargs)  # type: ignore[arg-type]
    assert clock.sleeps == [1]
    failed = [Observed(context="a", state=CheckState.FAILURE)]
    assert wait_for(["a", "b"], lambda: failed, **kwargs).failed  # type: ignore[arg-type]
    assert clock.sleeps == [1]


def test_notify_payload_only_for_blocking_failures() -> None:
    advisory = GateResult(gate="audit", status=GateStatus.FAILED, mode=Mode.ADVISORY)
    assert notify_payload([advisory], repository="o/r", sha="abc", run_url=None) is None
    many = [
        GateResult(gate=f"g{i}", status=GateStatus.FAILED, summary="y" * 100) for i in range(50)
    ]
    payload = notify_payload(many, repository="o/r", sha="abcdef123", run_url="https://run")
    assert payload is not None
    assert payload["text"].startswith("CI failed for o/r@abcdef1: 50 gate(s) failing")
    assert len(payload["content"]) <= 2000


def test_protection_payload_has_every_key_github_requires() -> None:
    payload = protection_payload(["ci/lint"])
    assert set(payload) >= {
        "required_status_checks",
        "enforce_admins",
        "required_pull_request_reviews",
        "restrictions",
    }
    assert payload["required_status_checks"]["strict"] is True
    assert payload["allow_force_pushes"] is False


def test_the_token_is_github_token_else_gh_token() -> None:
    # the same rule as release-record and the deployments mirror (GH_TOKEN was ignored here)
    assert GitHubEnv.from_env({"GH_TOKEN": "gh-value"}).token == "gh-value"
    both = {"GITHUB_TOKEN": "github-value", "GH_TOKEN": "gh-value"}
    assert GitHubEnv.from_env(both).token == "github-value"
    assert GitHubEnv.from_env({"GITHUB_TOKEN": "", "GH_TOKEN": "gh-value"}).token == "gh-value"
