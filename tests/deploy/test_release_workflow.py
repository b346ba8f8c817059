"""release.yml's deploy jobs keep their state on the git remote, with the least permissions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ci.github import workflow_files

ROOT = Path(__file__).resolve().parents[2]


def jobs() -> dict[str, Any]:
    release = workflow_files.load(ROOT / ".github/workflows/release.yml", ROOT)
    return dict(release.data["jobs"])


def deploy_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in job["steps"]
        if "invoke release" in s.get("run", "") or "invoke deploy" in s.get("run", "")
    ]


def test_the_deploy_jobs_use_the_git_backend_with_a_token() -> None:
    for name in ("publish", "deploy-production"):
        (step,) = deploy_steps(jobs()[name])
        assert step["env"]["CI_STATE_BACKEND"] == "git", name
        assert step["env"]["GITHUB_TOKEN"] == "${{ github.token }}", name


def test_only_the_deploy_jobs_may_write_and_no_state_is_handed_over() -> None:
    all_jobs = jobs()
    assert all_jobs["plan"].get("permissions") is None  # the workflow's contents: read
    for name in ("publish", "deploy-production"):
        permissions = all_jobs[name]["permissions"]
        assert permissions["contents"] == "write", name
        assert permissions["deployments"] == "write", name
    text = (ROOT / ".github/workflows/release.yml").read_text(encoding="utf-8")
    assert ".ci-state" not in text
    assert "include-hidden-files" not in text
