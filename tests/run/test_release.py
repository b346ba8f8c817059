from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core.config import Mode, load
from ci.core.errors import UsageError
from ci.core.gate import GateResult, GateStatus
from ci.core.runner import ProcessRunner
from ci.release.version import STATIC, Release, TagFormat
from ci.run import release
from tests.conftest import git
from tests.support.deploy_project import write_project
from tests.support.version_backend import dynamic_project

CI = ("python", "-m", "ci")
NOX = ("nox",)
ENVS = '[tool.ci.environments.production]\nafter = "staging"\n[tool.ci.environments.staging]\n'


def released(version: str = "1.0.0", tag_format: str = "v{version}") -> Release:
    """What `version.resolve` returns for a static version on a tagged HEAD."""
    fmt = TagFormat(text=tag_format, origin="set in [tool.ci.release]")
    return Release(version=version, source=STATIC, tag_format=fmt, tag=fmt.tag(version))


def test_the_plan_runs_preflight_gates_publish_then_the_first_environment(tmp_path: Path) -> None:
    config = load(write_project(tmp_path, ENVS, version="2.1.0"))
    plan = release.plan(
        config, release=released("2.1.0"), env={}, ci=CI, nox=NOX, post_publish=[], final=[]
    )
    assert [s.name for s in plan.steps] == [
        "preflight",
        "gate lint",
        "gate test-3.12",
        "gate security",
        "gate package",
        "sign",  # provenance always; unsigned here (no [tool.ci.release] signer)
        "publish",
        "deploy staging",  # production comes after staging, so staging is first
    ]
    assert plan.steps[0].argv == (*CI, "preflight", "--release")
    assert plan.steps[-1].argv == (*CI, "deploy", "--env", "staging", "--version", "2.1.0")
    assert plan.deploy_env == "staging"


def test_the_release_record_closes_the_plan_after_the_deploy(tmp_path: Path) -> None:
    config = load(write_project(tmp_path, ENVS, version="2.1.0"))
    plan = release.plan(config, release=released("2.1.0"), env={}, ci=CI, nox=NOX)
    assert [s.name for s in plan.steps][-2:] == ["deploy staging", "release record"]
    assert plan.steps[-1].argv == (*CI, "release-record", "--tag", "v2.1.0", "--dist", "dist")
    plain = release.plan(config, release=released("26.4", "{version}"), env={}, ci=CI, nox=NOX)
    assert plain.steps[-1].argv == (*CI, "release-record", "--tag", "26.4", "--dist", "dist")
    assert "HEAD tagged 26.4" in plain.steps[0].what
    bare_config = load(write_project(tmp_path / "bare", ""))
    bare = release.plan(bare_config, release=released(), env={}, ci=CI, nox=NOX)
    assert [s.name for s in bare.steps][-2:] == ["publish", "release record"]


def test_where_it_publishes_follows_env_then_config(tmp_path: Path) -> None:
    extra = '[tool.ci.publish]\nrepository_url = "http://127.0.0.1:9/legacy/"\n'
    config = load(write_project(tmp_path, "", extra=extra))
    assert (
        release.plan(config, release=released(), env={}, ci=CI, nox=NOX).publish_to
        == "http://127.0.0.1:9/legacy/"
    )
    env = {release.PUBLISH_URL_ENV: "http://127.0.0.1:8/"}
    assert (
        release.plan(config, release=released(), env=env, ci=CI, nox=NOX).publish_to
        == "http://127.0.0.1:8/"
    )
    assert release.plan(config, release=released(), env={}, ci=CI, nox=NOX).deploy_env is None


def test_post_publish_steps_run_between_publish_and_deploy(tmp_path: Path) -> None:
    config = load(write_project(tmp_path, ENVS))

    def notes(_config, version, ci):
        return [release.Step(name="notes", argv=(*ci, "notes"), what=f"notes for {version}")]

    plan = release.plan(config, release=released(), env={}, ci=CI, nox=NOX, post_publish=[notes])
    names = [s.name for s in plan.steps]
    assert names.index("publish") < names.index("notes") < names.index("deploy staging")


def test_dry_run_prints_the_plan_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path, ENVS, version="2.1.0")
    assert main(["--config", str(cfg), "release", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "release 2.1.0 plan (dry run" in out
    assert "preflight --release" in out
    assert "nox -s security" in out
    assert "NO INDEX CONFIGURED" in out
    assert "deploy --env staging --version 2.1.0" in out
    assert not (tmp_path / "dist").exists()


def test_execute_stops_at_the_first_failure_with_its_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load(write_project(tmp_path, ""))
    marker = tmp_path / "ran"
    steps = (
        release.Step(name="ok", argv=(sys.executable, "-c", "print('fine')"), what=""),
        release.Step(name="publish", argv=(sys.executable, "-c", "raise SystemExit(5)"), what=""),
        release.Step(
            name="deploy",
            argv=(sys.executable, "-c", f"open({str(marker)!r}, 'w')"),
            what="",
        ),
    )
    plan = release.ReleasePlan(
        version="1.0.0",
        steps=steps,
        release=released(),
        publish_to="http://127.0.0.1:9/",
        deploy_env=None,
    )
    assert release.execute(plan, ProcessRunner(), config) == 5
    out = capsys.readouterr().out
    assert "publish exited 5; not run: deploy" in out
    assert not marker.exists()


def test_gate_sessions_the_noxfile_lacks_are_skipped_loudly(tmp_path: Path) -> None:
    config = load(write_project(tmp_path, ENVS))
    listing = (
        "Sessions defined in noxfile.py:\n\n"
        "* lint -> Lint.\n* test-3.12 -> Test.\n- test-3.11 -> Test.\n* package -> Package.\n"
    )
    declared = release.parse_nox_list(listing)
    assert declared == ["lint", "test-3.12", "test-3.11", "package"]
    plan = release.plan(
        config, release=released(), env={}, ci=CI, nox=NOX, declared=declared, post_publish=[]
    )
    assert "gate security" not in [s.name for s in plan.steps]
    assert plan.missing == ("security",)
    assert "declares no `security` session" in release.render(plan)


def test_a_release_with_no_index_stops_before_running_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path, "")
    assert main(["--config", str(cfg), "release"]) == 2
    assert "no package index to publish to" in capsys.readouterr().err


def test_dry_run_shows_a_dynamic_version_and_its_tag(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = dynamic_project(make_repo, "4.0.1")
    git(repo, "tag", "4.0.1")
    assert main(["--config", str(repo / "pyproject.toml"), "release", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "release 4.0.1 plan (dry run" in out
    assert "version 4.0.1 from the build backend demo_backend (dynamic version)" in out
    assert "tag 4.0.1 (tag format {version}, detected from 1 tags like 1.2.3)" in out
    assert "HEAD tagged 4.0.1," in out
    assert "release-record --tag 4.0.1 --dist dist" in out


def test_dry_run_refuses_what_preflight_refuses(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = dynamic_project(make_repo, "4.0.2.dev1+g0123abc")
    config = str(repo / "pyproject.toml")
    assert main(["--config", config, "release", "--dry-run"]) == 3
    dry = capsys.readouterr()
    assert "plan" not in dry.out
    assert "release version 4.0.2.dev1+g0123abc is a development release" in dry.err
    assert main(["--config", config, "preflight", "--release"]) == 3
    refusal = dry.err.removeprefix("error: ").strip()
    assert re.search(rf"FAIL +release version +{re.escape(refusal)}\n", capsys.readouterr().out)


def test_publish_runs_where_twine_is_the_package_group(tmp_path: Path) -> None:
    config = load(write_project(tmp_path, ""))
    tools = release.ci_prefix("pyproject.toml", group="package")
    assert tools == (
        *("uv", "run", "--locked", "--group", "package", "python", "-m", "ci"),
        *("--config", "pyproject.toml"),
    )
    plan = release.plan(config, release=released(), env={}, ci=CI, nox=NOX, publish_ci=tools)
    publish = next(s for s in plan.steps if s.name == "publish")
    assert publish.argv == (*tools, "publish", "--dist", "dist")
    assert next(s for s in plan.steps if s.name == "preflight").argv[:3] == CI


def test_every_release_step_runs_with_the_cache_off(tmp_path: Path) -> None:
    # a release never replays a cached verdict: each gate session sees CI_NO_CACHE=1
    config = load(write_project(tmp_path, ""))
    seen = tmp_path / "seen"
    probe = f"import os; open({str(seen)!r}, 'a').write(os.environ.get('CI_NO_CACHE', '-'))"
    steps = tuple(
        release.Step(name=name, argv=(sys.executable, "-c", probe), what="")
        for name in ("preflight", "gate lint", "publish")
    )
    plan = release.ReleasePlan(
        version="1.0.0",
        steps=steps,
        release=released(),
        publish_to="http://127.0.0.1:9/",
        deploy_env=None,
    )
    assert release.execute(plan, ProcessRunner(), config) == 0
    assert seen.read_text() == "111"


def _bumped_static_project(make_repo: Callable[..., Path]) -> Path:
    """A locked project whose static version was bumped (and tagged) without `uv lock`."""
    pyproject = '[project]\nname = "bumped"\nversion = "1.0.0"\nrequires-python = ">=3.11"\n'
    repo = make_repo({"pyproject.toml": pyproject + '\n[tool.ci]\npythons = ["3.12"]\n'})
    locked = subprocess.run(
        ["uv", "lock", "--offline"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert locked.returncode == 0, locked.stderr
    git(repo, "add", "uv.lock")
    git(repo, "commit", "-q", "-m", "lock")
    text = (repo / "pyproject.toml").read_text(encoding="utf-8")
    (repo / "pyproject.toml").write_text(text.replace('"1.0.0"', '"1.1.0"'), encoding="utf-8")
    git(repo, "commit", "-q", "-am", "feat: 1.1.0")
    git(repo, "tag", "v1.1.0")
    return repo


def test_a_dry_run_on_a_stale_lock_changes_nothing_and_says_preflight_will_stop(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _bumped_static_project(make_repo)
    lock = (repo / "uv.lock").read_bytes()
    assert main(["--config", str(repo / "pyproject.toml"), "release", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "warning: preflight will stop the release" in out
    assert "has version `1.1.0`, but the lockfile records `1.0.0`" in out
    assert "run `uv lock`, commit uv.lock" in out
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "uv.lock").read_bytes() == lock
    # the release preflight names the same cause
    assert main(["--config", str(repo / "pyproject.toml"), "preflight", "--release"]) == 3
    assert "has version `1.1.0`, but the lockfile records `1.0.0`" in capsys.readouterr().out


def test_a_dry_run_names_a_lock_that_uv_run_rewrote(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _bumped_static_project(make_repo)
    # what `uv run invoke release --dry-run` (no --locked) does before the dry run starts
    subprocess.run(["uv", "lock", "--offline"], cwd=repo, capture_output=True, check=True)
    assert main(["--config", str(repo / "pyproject.toml"), "release", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "uv.lock differs from HEAD" in out
    assert "git checkout -- uv.lock" in out


def test_a_failed_advisory_package_gate_stops_the_release_before_publish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load(write_project(tmp_path, "", extra='[tool.ci.gates.package]\nmode = "advisory"\n'))
    reason = "not reproducible: _ext.so differs between the two builds (/tmp/build-via-sdist-1a2b)"
    failed = GateResult(
        gate="package", status=GateStatus.FAILED, mode=Mode.ADVISORY, summary=reason
    )
    write = (
        "import sys, json, pathlib; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(exist_ok=True); "
        "p.write_text(sys.argv[2])"
    )
    record = json.dumps(failed.to_dict())
    gate = release.Step(
        name="gate package",
        argv=(sys.executable, "-c", write, str(config.reports_path() / "package.json"), record),
        what="",
    )
    marker = tmp_path / "published"
    full = release.plan(config, release=released(), env={}, ci=CI, nox=NOX, final=[])
    publish = next(s for s in full.steps if s.name == "publish")
    publish = dataclasses.replace(
        publish, argv=(sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    )
    plan = dataclasses.replace(full, steps=(gate, publish), publish_to="http://127.0.0.1:9/")
    assert release.execute(plan, ProcessRunner(), config) == 3
    out = capsys.readouterr().out
    assert "stopped at the preflight of publish: the package gate failed (advisory" in out
    assert reason in out
    assert "manifest.json" not in out
    assert not marker.exists()
    # a package gate that passed lets publish run
    passed = dataclasses.replace(failed, status=GateStatus.PASSED, summary="ok")
    gate = dataclasses.replace(gate, argv=(*gate.argv[:-1], json.dumps(passed.to_dict())))
    plan = dataclasses.replace(plan, steps=(gate, publish))
    assert release.execute(plan, ProcessRunner(), config) == 0
    assert marker.exists()


def test_a_signed_release_signs_and_verifies_what_the_package_gate_built_before_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    table = (
        '[tool.ci.release]\nsigner = "release@example.org"\nallowed_signers = "signers"\n'
        'signing_key_env = "RELEASE_SIGNING_KEY"\n'
    )
    config = load(write_project(tmp_path, "", extra=table))
    plan = release.plan(config, release=released(), env={}, ci=CI, nox=NOX, final=[])
    names = [s.name for s in plan.steps]
    assert names[names.index("gate package") :] == ["gate package", "sign", "verify", "publish"]
    sign = plan.steps[names.index("sign")]
    assert sign.argv == (*CI, "sign", "--dist", "dist")
    assert sign.needs == ("package",)
    assert plan.steps[names.index("verify")].argv == (*CI, "verify", "dist")
    assert "by release@example.org" in release.render(plan)
    # the key's variable is a secret the release preflight requires
    monkeypatch.delenv("RELEASE_SIGNING_KEY", raising=False)
    assert main(["--config", str(config.path), "preflight", "--release"]) == 3
    assert "RELEASE_SIGNING_KEY is not set" in capsys.readouterr().out


def test_a_release_runs_in_two_jobs_around_a_trusted_publishing_upload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load(write_project(tmp_path, ENVS))
    plan = release.plan(config, release=released(), env={}, ci=CI, nox=NOX)
    build = release.select(plan, start=None, until="publish")
    assert [s.name for s in build.steps][-2:] == ["gate package", "sign"]
    release.check_runnable(build)  # no index needed to build, check and sign
    after = release.select(plan, start="publish", until=None)
    assert [s.name for s in after.steps] == ["publish", "deploy staging", "release record"]
    with pytest.raises(UsageError, match=r"--from 'upload' is not a step of this release"):
        release.select(plan, start="upload", until=None)
    with pytest.raises(UsageError, match="nothing would run"):
        release.select(plan, start="publish", until="sign")
    cfg = str(config.path)
    assert main(["--config", cfg, "release", "--dry-run", "--from", "publish"]) == 0
    out = capsys.readouterr().out
    assert "  1. publish: " in out
    assert "preflight --release" not in out
    assert main(["--config", cfg, "release", "--until", "nope"]) == 2
