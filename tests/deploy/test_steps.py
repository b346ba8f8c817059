from __future__ import annotations

import os
from pathlib import Path

from ci.core.config import Environment
from ci.deploy.steps import fill, find_wheel, needs_artifact, plan_steps, same_version, top_level
from tests.support.deploy_project import write_wheel


def test_placeholders_are_filled_and_other_braces_kept() -> None:
    argv = ("deploy", "--to={env}", "{version}", "{artifact}", "{not-a-placeholder}")
    values = {"{version}": "1.2.0", "{env}": "prod", "{artifact}": "/d/x.whl"}
    assert fill(argv, values) == ("deploy", "--to=prod", "1.2.0", "/d/x.whl", "{not-a-placeholder}")


def test_default_steps_create_the_venv_once_install_and_smoke_test(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path / "dist", "demo-app", "1.0.0", "demo_pkg")
    venv = tmp_path / "envs" / "staging"
    env = Environment(name="staging")
    steps = plan_steps(env, "1.0.0", wheel, venv=venv, uv="uv", project="demo-app", packages=())
    assert [s.stage for s in steps] == ["deploy", "deploy", "healthcheck"]
    assert steps[0].argv[:2] == ("uv", "venv")
    assert "--offline" not in steps[1].argv  # a fresh cache lacks the dependencies' index pages
    assert steps[1].argv[-1] == str(wheel)
    assert "import importlib.metadata as m, demo_pkg;" in steps[2].argv[2]
    assert steps[2].expect_output == "1.0.0"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    again = plan_steps(env, "1.0.0", wheel, venv=venv, uv="uv", project="demo-app", packages=())
    assert [s.argv[1] for s in again[:1]] == ["pip"]  # no second `uv venv`


def test_a_configured_command_runs_alone_unless_a_healthcheck_is_set(tmp_path: Path) -> None:
    env = Environment(name="qa", deploy_command=("./deploy", "{env}", "{version}"))
    steps = plan_steps(env, "2.0", None, venv=tmp_path, uv="uv", project="x", packages=())
    assert [s.argv for s in steps] == [("./deploy", "qa", "2.0")]
    assert not needs_artifact(env)
    assert needs_artifact(Environment(name="qa", deploy_command=("./d", "{artifact}")))
    assert needs_artifact(Environment(name="qa"))


def test_find_wheel_matches_pep440_equal_versions_and_prefers_the_newest(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    old = write_wheel(dist / "builds" / "0001", "Demo.App", "1.0", "demo_pkg")
    new = write_wheel(dist, "demo-app", "1.0.0", "demo_pkg")
    write_wheel(dist, "demo-app-extra", "1.0.0", "extra_pkg")
    os.utime(old, (1_000_000, 1_000_000))
    assert find_wheel(dist, "demo_app", "1.0.0") == new
    os.utime(new, (999_999, 999_999))
    assert find_wheel(dist, "demo_app", "1.0.0") == old
    assert find_wheel(dist, "demo-app", "2.0.0") is None
    assert find_wheel(tmp_path / "nowhere", "demo-app", "1.0.0") is None
    assert top_level(new) == ["demo_pkg"]
    assert same_version("1.0", "1.0.0")
    assert not same_version("1.0", None)
