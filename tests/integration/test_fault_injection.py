"""`invoke release` once per injected fault against a real pypiserver, then a clean release.

Each fault must stop the release with its documented exit code, leave nothing on the index,
leave the tree and the deployment state as they were (the only trace is the recorded
failure), and print no traceback; then a release without faults publishes the wheel.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, git, invoke, trim_tests
from tests.support.pypiserver import PypiServer

pytestmark = pytest.mark.integration

# gates run as nox sessions (nox exits 1 for a failed session); publish and deploy are exit 5
FAULT_EXIT = {"lint": 1, "test": 1, "secrets": 1, "audit": 1, "package": 1, "publish": 5}
KEEP_TESTS = {"__init__.py", "conftest.py", "support", "core/__init__.py", "core/test_errors.py"}
ADVISORY = ROOT / "tests" / "fixtures" / "advisories" / "requests" / "PYSEC-2018-28.yaml"


def rehearsal_clone(tmp_path: Path) -> Path:
    """A clone of this repository with a small suite, an offline advisory db and a staging
    environment, committed and tagged with its version."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--no-hardlinks", str(ROOT), str(clone))
    trim_tests(clone / "tests", KEEP_TESTS)
    db = tmp_path / "advisories"
    (db / "requests").mkdir(parents=True)
    shutil.copy(ADVISORY, db / "requests" / ADVISORY.name)  # CC-BY-4.0, see its ATTRIBUTION.md
    pyproject = clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    # the small suite covers little of ci/: the floor is for the real suite, not this one
    text = text.replace("coverage_min = 85", "coverage_min = 0")
    # a fault stops its gate on any Python: one test session per release, not three (the
    # release end-to-end test releases on every Python)
    pythons = 'pythons = ["3.12", "3.11", "3.13"]'
    assert pythons in text
    text = text.replace(pythons, 'pythons = ["3.12"]')
    # mypy over ci/ is the lint gate's slowest part and each release starts it cold: the lint
    # fault is a ruff finding, which the gate reports with or without mypy
    assert "[tool.ci.gates.lint]\nmypy = true\n" in text
    text = text.replace(
        "[tool.ci.gates.lint]\nmypy = true\n", "[tool.ci.gates.lint]\nmypy = false\n"
    )
    text = text.replace("[tool.ci]\n", f'[tool.ci]\nadvisory_db = "{db}"\n', 1)
    text += "\n[tool.ci.environments.staging]\n"
    pyproject.write_text(text, encoding="utf-8")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "release rehearsal: small suite, local advisories, staging")
    version = tomllib.loads(text)["project"]["version"]
    git(clone, "tag", f"v{version}")
    return clone


def release_env(index: PypiServer, state: Path, fault: str | None = None) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "CI_INJECT_FAULT"}
    }
    env = {
        **base,
        **index.twine_env(),
        "CI_PUBLISH_REPOSITORY_URL": index.url,
        "CI": "true",
        "CI_STATE_DIR": str(state),
        "PYENV_VERSION": "3.11.7:3.12.1:3.13.0",
        "UV_PYTHON_DOWNLOADS": "never",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
    }
    if fault:
        env["CI_INJECT_FAULT"] = fault
    return env


def ledger(state: Path) -> list[dict[str, object]]:
    path = state / "ledger.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_fault_stops_the_release_and_a_clean_release_publishes(
    tmp_path: Path, pypiserver: PypiServer
) -> None:
    clone = rehearsal_clone(tmp_path)
    state = tmp_path / "state"
    tracked = git(clone, "status", "--porcelain")
    assert tracked == ""

    dry = invoke(clone, "release", "--dry-run", env=release_env(pypiserver, state))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"to {pypiserver.url}" in dry.stdout
    assert pypiserver.files() == {}
    assert not state.exists()
    assert not (clone / "dist").exists()
    ignored = git(clone, "status", "--porcelain", "--ignored").splitlines()
    assert [line for line in ignored if "__pycache__" not in line] == []  # nothing written

    for fault, code in FAULT_EXIT.items():
        done = invoke(clone, "release", env=release_env(pypiserver, state, fault))
        output = done.stdout + done.stderr
        assert done.returncode == code, f"{fault}: {output[-5000:]}"
        assert "Traceback" not in output, fault
        assert f"fault injection: CI_INJECT_FAULT includes '{fault}'" in output, fault
        assert pypiserver.files() == {}, fault
        assert ledger(state) == [], fault  # nothing was deployed, nothing to record there
        assert git(clone, "status", "--porcelain") == "", fault  # planted files are gone
        if fault == "publish":
            manifest = json.loads((clone / "dist-assets" / "manifest.json").read_text())
            record = manifest["publish"]
            assert record["status"] == "failed"  # the recorded failure
            assert record["left_on_index"] == []
            assert record["removed"] == record["uploaded"] != []
            assert "removed again" in output

    done = invoke(clone, "release", env=release_env(pypiserver, state))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    manifest = json.loads((clone / "dist-assets" / "manifest.json").read_text())
    wheel = next(a for a in manifest["artifacts"] if a["kind"] == "wheel")
    served = pypiserver.files()
    assert hashlib.sha256(served[wheel["name"]]).hexdigest() == wheel["sha256"]
    assert [(e["action"], e["outcome"]) for e in ledger(state)][-1] == ("deploy", "succeeded")

    # deploy comes after publish: with fresh state the publish is a no-op (same bytes), the
    # deploy command fails, and the environment is left without a deployment
    fresh = tmp_path / "state-deploy-fault"
    done = invoke(clone, "release", env=release_env(pypiserver, fresh, "deploy"))
    output = done.stdout + done.stderr
    assert done.returncode == 5, output[-5000:]
    assert "Traceback" not in output
    assert "fault injection: CI_INJECT_FAULT includes 'deploy'" in output
    assert pypiserver.files() == served
    outcomes = [(e["action"], e["env"], e["outcome"]) for e in ledger(fresh)]
    assert outcomes == [("deploy", "staging", "started"), ("deploy", "staging", "failed")]
    shown = subprocess.run(
        [sys.executable, "-m", "ci", "state", "--env", "staging", "--json"],
        cwd=clone,
        capture_output=True,
        text=True,
        env=release_env(pypiserver, fresh),
        check=True,
    )
    assert json.loads(shown.stdout)["current"] is None  # nothing counts as deployed
