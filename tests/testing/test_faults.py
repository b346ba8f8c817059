from __future__ import annotations

import json
import re
import socket
import urllib.parse
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core.errors import ConfigError
from ci.core.runner import ProcessRunner
from ci.testing import faults

PYPROJECT = """
[project]
name = "demo"
version = "1.0.0"

[tool.ci]
packages = ["demo"]

[tool.ci.gates.test]
coverage_min = 0

[tool.ruff.lint]
select = ["E", "F"]
"""


@pytest.fixture
def project(make_repo, monkeypatch) -> Path:
    repo = make_repo(
        {
            "pyproject.toml": PYPROJECT,
            "demo/__init__.py": "def add(a: int, b: int) -> int:\n    return a + b\n",
            "tests/test_demo.py": "from demo import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        }
    )
    monkeypatch.chdir(repo)
    monkeypatch.syspath_prepend(str(repo))
    return repo


def test_active_reads_the_variable():
    assert faults.active({}) == frozenset()
    assert faults.active({"CI_INJECT_FAULT": ""}) == frozenset()
    assert faults.active({"CI_INJECT_FAULT": "lint, Test,,publish"}) == {"lint", "test", "publish"}
    assert faults.enabled("deploy", {"CI_INJECT_FAULT": "deploy"})
    assert not faults.enabled("deploy", {"CI_INJECT_FAULT": "lint"})
    with pytest.raises(ConfigError, match="unknown gate\\(s\\) lnt, x"):
        faults.active({"CI_INJECT_FAULT": "lint,lnt,x"})


def test_a_mistyped_fault_fails_any_command_with_exit_2(project, monkeypatch, capsys):
    monkeypatch.setenv("CI_INJECT_FAULT", "lnt")
    assert main(["plan"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: CI_INJECT_FAULT='lnt' names unknown gate(s) lnt")
    assert len(err.strip().splitlines()) == 1


def test_lint_fault_is_a_real_ruff_finding(project, monkeypatch, capsys):
    assert main(["gate", "lint"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("CI_INJECT_FAULT", "lint")
    assert main(["gate", "lint"]) == 1
    out = capsys.readouterr().out
    assert "fault injection: CI_INJECT_FAULT includes 'lint'" in out
    planted = re.search(r"^(\S+injected_lint_fault\.py):3: F401", out, re.MULTILINE)
    assert planted
    report = json.loads((project / "reports" / "lint.json").read_text())
    assert [f["rule"] for f in report["findings"]] == ["F401"]
    assert not Path(planted.group(1)).exists()
    assert main(["gate", "lint"]) == 1  # the fault stays on while the variable is set


def test_test_fault_is_a_real_failing_test(project, monkeypatch, capsys):
    assert main(["gate", "test"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("CI_INJECT_FAULT", "test")
    assert main(["gate", "test"]) == 1
    out = capsys.readouterr().out
    assert "1 passed, 1 failed" in out  # the project's own test still ran
    report = next((project / "reports").glob("test-*.json"))
    findings = json.loads(report.read_text())["findings"]
    assert len(findings) == 1
    assert "test_injected_fault" in findings[0]["message"]
    assert not (project / "reports" / "faults").exists()


def test_planted_secret_looks_like_an_aws_key_and_is_removed(tmp_path):
    folder = tmp_path / "faults"
    with faults.secret_paths(folder, {}) as none:
        assert none == []
    with faults.secret_paths(folder, {"CI_INJECT_FAULT": "secrets"}) as paths:
        text = paths[0].read_text()
        assert re.search(r"\bAKIA[A-Z2-7]{16}\b", text)
    assert not folder.exists()
    assert faults.fake_aws_key() != faults.fake_aws_key()


def test_audit_fault_adds_a_vulnerable_pin_in_place_of_the_locked_one():
    assert faults.audit_pins({}) == ()
    pins = faults.audit_pins({"CI_INJECT_FAULT": "audit"})
    assert pins[0].startswith("requests==2.19.1 --hash=sha256:")
    text = (
        "packaging==24.2 \\\n    --hash=sha256:aaa\n"
        "Requests==2.32.3 \\\n    --hash=sha256:bbb \\\n    --hash=sha256:ccc\n"
        "    # via twine\n"
        "zipp==3.0 ; python_version >= '3.9'\n"
    )
    assert faults.add_pins(text, ()) == text
    assert faults.add_pins(text, pins).splitlines() == [
        "packaging==24.2 \\",
        "    --hash=sha256:aaa",
        "    # via twine",
        "zipp==3.0 ; python_version >= '3.9'",
        pins[0],
    ]


def test_package_fault_flips_one_checksum():
    sums = f"{'a' * 64}  demo-1.0.0-py3-none-any.whl\n{'b' * 64}  demo-1.0.0.tar.gz\n"
    assert faults.corrupt_checksums(sums, {}) == sums
    bad = faults.corrupt_checksums(sums, {"CI_INJECT_FAULT": "package"})
    first, second = bad.splitlines()
    assert first == f"0{'a' * 63}  demo-1.0.0-py3-none-any.whl"
    assert second == f"{'b' * 64}  demo-1.0.0.tar.gz"


def test_publish_fault_sends_later_uploads_to_a_closed_port():
    url = "http://127.0.0.1:8080/"
    env = {"CI_INJECT_FAULT": "publish"}
    assert faults.upload_url(url, 0, env) == url
    assert faults.upload_url(url, 1, {}) == url
    dead = urllib.parse.urlsplit(faults.upload_url(url, 1, env))
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((dead.hostname, dead.port), timeout=2),
    ):
        pass


def test_deploy_fault_command_really_exits_non_zero():
    argv = ["echo", "deploy"]
    assert faults.deploy_command(argv, {}) == argv
    done = ProcessRunner().run(faults.deploy_command(argv, {"CI_INJECT_FAULT": "deploy"}))
    assert done.returncode == 3
    assert "CI_INJECT_FAULT=deploy" in done.stdout
