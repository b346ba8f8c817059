"""release.yml's deploy jobs keep their state on the git remote, with the least permissions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ci.adopt import init
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
    for name in ("release", "deploy-production"):
        (step,) = deploy_steps(jobs()[name])
        assert step["env"]["CI_STATE_BACKEND"] == "git", name
        assert step["env"]["GITHUB_TOKEN"] == "${{ github.token }}", name


def test_only_the_deploy_jobs_may_write_and_no_state_is_handed_over() -> None:
    all_jobs = jobs()
    assert all_jobs["plan"].get("permissions") is None  # the workflow's contents: read
    for name in ("release", "deploy-production"):
        permissions = all_jobs[name]["permissions"]
        assert permissions["contents"] == "write", name
        assert permissions["deployments"] == "write", name
    text = (ROOT / ".github/workflows/release.yml").read_text(encoding="utf-8")
    assert ".ci-state" not in text
    assert "include-hidden-files" not in text


def test_the_keyless_path_attests_and_publishes_in_the_one_job_with_an_oidc_token() -> None:
    all_jobs = jobs()
    minting = [name for name, job in all_jobs.items() if "id-token" in job.get("permissions", {})]
    assert minting == ["publish"]
    publish = all_jobs["publish"]
    assert publish["environment"]["name"] == "pypi"
    assert publish["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "attestations": "write",
    }
    uses = {s["uses"].split("@")[0]: s for s in publish["steps"] if "uses" in s}
    for action in ("actions/attest-build-provenance", "pypa/gh-action-pypi-publish"):
        ref = uses[action]["uses"].split("@")[1]
        assert len(ref) == 40, action  # SHA-pinned
        assert all(c in "0123456789abcdef" for c in ref), action
    assert uses["actions/attest-build-provenance"]["with"]["subject-path"] == "dist/*"
    assert uses["pypa/gh-action-pypi-publish"]["with"]["attestations"] is True
    assert not any("run" in s for s in publish["steps"])  # no project code with the token
    # the release runs around it: built and signed before, checked and deployed after
    runs = {n: " ".join(s.get("run", "") for s in j["steps"]) for n, j in all_jobs.items()}
    assert "invoke release --until publish" in runs["build"]
    assert "invoke release --from publish" in runs["release"]
    assert all_jobs["build"].get("permissions") is None
    assert all_jobs["release"]["needs"] == "publish"


def test_init_writes_the_same_release_workflow() -> None:
    written = init.load_bundle(ROOT).files[".github/workflows/release.yml"]
    for line in ("actions/attest-build-provenance@", "attestations: true", "--from publish"):
        assert line in written, line


def test_cibuildwheel_builds_the_platform_wheels_only_when_the_project_asks() -> None:
    all_jobs = jobs()
    plan = all_jobs["plan"]
    (step,) = [s for s in plan["steps"] if "--wheel-matrix" in s.get("run", "")]
    assert plan["outputs"]["wheels"] == f"${{{{ steps.{step['id']}.outputs.wheels }}}}"
    wheels = all_jobs["wheels"]
    assert wheels["needs"] == "plan"
    assert wheels["if"] == "needs.plan.outputs.wheels == 'cibuildwheel'"
    assert wheels.get("permissions") is None  # the project's code: no token, no write
    (build,) = [s for s in wheels["steps"] if s.get("uses", "").startswith("pypa/cibuildwheel@")]
    ref = build["uses"].split("@")[1].split()[0]
    assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref)  # SHA-pinned
    assert build["env"]["SOURCE_DATE_EPOCH"] == "${{ steps.epoch.outputs.epoch }}"
    assert plan["outputs"]["cibw-skip"] == f"${{{{ steps.{step['id']}.outputs.skip }}}}"
    assert build["env"]["CIBW_SKIP"] == "${{ needs.plan.outputs.cibw-skip }}"
    # publish waits for the matrix, runs without it (skipped), and attests what it publishes
    publish = all_jobs["publish"]
    assert publish["needs"] == ["build", "wheels"]
    assert "needs.wheels.result == 'skipped'" in publish["if"]
    names = [s.get("uses", "").split("@")[0] for s in publish["steps"]]
    fetch = names.index("actions/download-artifact", names.index("actions/download-artifact") + 1)
    assert fetch < names.index("actions/attest-build-provenance")
    assert publish["steps"][fetch]["with"] == {
        "pattern": "wheels-*",
        "path": "dist/",
        "merge-multiple": True,
    }
