"""Day one: failing gates become advisory with their reason; history secrets join the baseline."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from ci.adopt import advisory
from ci.core.config import Mode, parse
from ci.core.gate import Finding, GateResult, GateStatus

PYPROJECT = """[project]
name = "demo"

[tool.ci]
packages = ["demo"]

[tool.ci.gates.test]
coverage_min = 0

[tool.uv.sources]
noxgate = {index = "noxgate"}
"""


def results() -> list[GateResult]:
    return [
        GateResult(gate="lint", status=GateStatus.FAILED, summary="3 finding(s)"),
        GateResult(gate="test", variant="3.12", status=GateStatus.FAILED, summary="1 failed"),
        GateResult(
            gate="audit", status=GateStatus.ERROR, summary="the service could not be reached"
        ),
        GateResult(gate="secrets", status=GateStatus.PASSED),
        GateResult(gate="workflows", status=GateStatus.FAILED, mode=Mode.ADVISORY),
    ]


def test_required_gates_that_fail_become_advisory_those_that_cannot_run_stay_required() -> None:
    found = advisory.advisories(results())
    assert [a.gate for a in found] == ["lint", "test"]  # findings only
    assert found[0].reason == "failed on the untouched project (3 finding(s))"
    assert "uv run nox -s test-3.12" in found[1].how_to_fix("3.12")
    assert 'delete `mode = "advisory"` in [tool.ci.gates.lint]' in found[0].how_to_fix("3.12")
    # the audit never ran (no advisory service): advisory would hide it behind a green job
    (gone,) = advisory.not_run(results())
    assert gone.gate == "audit"
    assert gone.session == "security"
    fix = gone.how_to_fix()
    assert "could not run on the untouched project (the service could not be reached)" in fix
    assert "stays required" in fix
    assert "advisory_db" in fix
    assert "uv run nox -s security" in fix


def test_a_gate_with_one_variant_that_could_not_run_is_not_made_advisory() -> None:
    mixed = [
        GateResult(gate="test", variant="3.12", status=GateStatus.FAILED, summary="1 failed"),
        GateResult(gate="test", variant="3.11", status=GateStatus.ERROR, summary="no python"),
    ]
    assert advisory.advisories(mixed) == ()
    (gone,) = advisory.not_run(mixed)
    assert gone.session == "test-3.11"


def test_the_mode_and_its_reason_are_written_and_the_config_stays_valid(tmp_path: Path) -> None:
    text = advisory.mark_advisory(PYPROJECT, advisory.advisories(results()))
    assert text.startswith(PYPROJECT.split("[tool.uv.sources]", maxsplit=1)[0].rstrip("\n"))
    assert "# advisory since init: failed on the untouched project (1 failed)" in text
    assert "\n\n[tool.uv.sources]" in text  # tables stay apart
    data = tomllib.loads(text)
    config = parse(data, root=tmp_path, path=None)
    assert config.gate("lint").mode is Mode.ADVISORY
    assert config.gate("test").mode is Mode.ADVISORY
    assert config.gate("test").coverage_min == 0  # the table's own keys kept
    assert config.gate("secrets").mode is Mode.REQUIRED
    again = advisory.mark_advisory(text, advisory.advisories(results()))
    assert again == text


def test_history_findings_join_the_baseline_once(tmp_path: Path) -> None:
    baseline = {"version": "1.5.0", "plugins_used": [], "filters_used": [], "results": {}}
    (tmp_path / ".secrets.baseline").write_text(json.dumps(baseline))
    old = {"file": "docs/old.md", "line": 3, "type": "Secret Keyword", "hashed_secret": "ab" * 20}
    assert advisory.add_to_baseline(tmp_path, [old]) == 1
    assert advisory.add_to_baseline(tmp_path, [old]) == 0
    data = json.loads((tmp_path / ".secrets.baseline").read_text())
    assert data["results"]["docs/old.md"] == [
        {
            "type": "Secret Keyword",
            "filename": "docs/old.md",
            "hashed_secret": "ab" * 20,
            "is_verified": False,
            "line_number": 3,
        }
    ]


def lint_failing_on(*rules: tuple[str, str]) -> GateResult:
    findings = tuple(Finding(rule=rule, message="m", file=file, line=1) for rule, file in rules)
    return GateResult(gate="lint", status=GateStatus.FAILED, findings=findings)


def test_a_lint_gate_failing_only_on_families_makes_those_families_advisory(
    tmp_path: Path,
) -> None:
    result = lint_failing_on(
        ("SC1091", "scripts/run"),
        ("yamllint:key-duplicates", "a.yml"),
        ("SC2086", "Dockerfile"),  # hadolint's shellcheck of a RUN line: the docker family
        ("yamllint:colons", "b.yml"),
    )
    found = advisory.advisories([result])
    assert [(a.gate, a.families) for a in found] == [("lint", ("shell", "yaml", "docker"))]
    assert "remove them from advisory_families" in found[0].how_to_fix("3.12")
    text = advisory.mark_advisory(PYPROJECT, found)
    assert "# advisory since init: shell, yaml, docker failed on the untouched project" in text
    policy = parse(tomllib.loads(text), root=tmp_path, path=None).gate("lint")
    assert policy.mode is Mode.REQUIRED  # ruff and mypy stay required
    assert policy.advisory_families == ("shell", "yaml", "docker")
    assert advisory.mark_advisory(text, found) == text


def test_a_lint_gate_failing_on_ruff_too_becomes_advisory_whole() -> None:
    result = lint_failing_on(("SC2086", "run.sh"), ("F401", "demo.py"))
    assert [(a.gate, a.families) for a in advisory.advisories([result])] == [("lint", ())]
