"""The gate registry: built-in gates, declared ones, their sessions and the config checks."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from ci.cli.app import App
from ci.cli.core import gate_rows, markdown_table
from ci.cli.main import main
from ci.core import config
from ci.core.config import GATE_OPTIONS, GateConfig
from ci.core.errors import ConfigError, ExitCode, UsageError
from ci.core.gate import GateStatus, context
from ci.core.runner import ProcessRunner
from ci.gates import registry
from ci.run import pipeline, tasks
from ci.testing.fakes import FixedClock
from tests.conftest import ROOT

PY = sys.executable
DOCS = f"""
[tool.ci.gates.docs]
command = ["{PY}", "-c", "print('docs built')"]
group = "docs"
inputs = ["docs/**"]
mode = "advisory"
budget_s = 60
env = ["DOCS_THEME"]
"""


def load(tmp_path: Path, body: str = "", *, pythons: str = '["3.12", "3.11"]') -> config.Config:
    path = tmp_path / "pyproject.toml"
    head = f'[project]\nname = "demo"\nversion = "1.0"\n\n[tool.ci]\npythons = {pythons}\n'
    path.write_text(head + body, encoding="utf-8")
    return config.load(path)


def test_builtin_gates_are_consistent() -> None:
    names = [g.name for g in registry.BUILTIN]
    assert names == ["lint", "test", "secrets", "audit", "package", "workflows"]
    by_session: dict[str, set[str | None]] = {}
    for gate in registry.BUILTIN:
        assert gate.doc.strip() and "\n" not in gate.doc
        assert gate.options <= GATE_OPTIONS, gate.name
        assert gate.group is not None and gate.requires, gate.name
        by_session.setdefault(gate.session, set()).add(gate.group)
    assert all(len(groups) == 1 for groups in by_session.values())  # a session syncs one group
    # every option is some gate's, so none is accepted and then ignored
    assert set().union(*(g.options for g in registry.BUILTIN)) == GATE_OPTIONS


def test_sessions_and_main_job_follow_the_gates(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    sessions = registry.sessions(cfg)
    assert [s.name for s in sessions] == ["lint", "test", "security", "package", "workflows"]
    security = sessions[2]
    assert [g.name for g in security.gates] == ["secrets", "audit"]
    assert security.doc.startswith("Secrets: ") and "Audit: " in security.doc
    assert sessions[1].names() == ("test-3.12", "test-3.11")
    # no workflows in tmp_path: the workflows gate does not apply, so the main job skips it
    assert registry.main_sessions(cfg) == ["lint", "test-3.12", "security", "package"]
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    assert registry.main_sessions(cfg)[-1] == "workflows"


def test_session_gates_map_sessions_to_gates_and_pythons(tmp_path: Path) -> None:
    cfg = load(tmp_path, DOCS)

    def pairs(session: str) -> list[tuple[str, str]]:
        return [(g.name, p) for g, p in registry.session_gates(session, cfg)]

    assert pairs("security") == [("secrets", "3.12"), ("audit", "3.12")]
    assert pairs("test-3.11") == [("test", "3.11")]
    assert pairs("test-3.9") == []  # not one of the pythons
    assert pairs("docs") == [("docs", "3.12")]
    assert pairs("nope") == []


def test_declared_gate_is_a_gate_like_the_others(tmp_path: Path) -> None:
    cfg = load(tmp_path, DOCS)
    docs = registry.get(cfg, "docs")
    assert docs.declared and docs.session == "docs" and docs.group == "docs"
    assert docs.inputs is not None  # cached (whole tree, plus its env, as every gate)
    assert docs.context(cfg) == "ci/docs"
    assert registry.main_sessions(cfg)[-1] == "docs"
    assert [s.name for s in registry.sessions(cfg)][-1] == "docs"
    assert cfg.gate("docs").mode.value == "advisory"
    assert cfg.gate("docs").env == ("DOCS_THEME",)


def test_declared_gate_without_inputs_is_never_cached(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[tool.ci.gates.docs]\ncommand = ["make", "docs"]\n')
    assert registry.get(cfg, "docs").inputs is None
    outside = load(tmp_path, '[tool.ci.gates.docs]\ncommand = ["x"]\ninputs = ["../shared.toml"]\n')
    spec = registry.get(outside, "docs").inputs
    assert spec is not None and spec.extra_files == ("../shared.toml",)


def test_declared_gate_on_several_pythons(tmp_path: Path) -> None:
    cfg = load(
        tmp_path, '[tool.ci.gates.types]\ncommand = ["pyright"]\npythons = ["3.11", "3.12"]\n'
    )
    types = registry.get(cfg, "types")
    assert types.main_session(cfg) == "types-3.11"
    assert types.context(cfg) == "ci/types-3.11"
    assert types.context(cfg, "3.12") == "ci/types"  # the default Python's run has no suffix


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[tool.ci.gates.lint]\ncoverage_min = 80\n", "unknown key 'coverage_min' for the lint"),
        ("[tool.ci.gates.tests]\nmode = 'required'\n", "no such built-in gate"),
        ("[tool.ci.gates.lint]\ncommand = ['flake8']\n", "lint is a built-in gate"),
        ("[tool.ci.gates.docs]\ncommand = ['x']\nmypy = true\n", "unknown key 'mypy' for a decl"),
        ("[tool.ci.gates.security]\ncommand = ['x']\n", "name of a built-in session"),
        ("[tool.ci.gates.Docs]\ncommand = ['x']\n", "cannot name a gate"),
        ("[tool.ci.gates.docs-3]\ncommand = ['x']\n", "cannot name a gate"),
        ("[tool.ci.gates.\"docs-3.12\"]\ncommand = ['x']\n", "cannot name a gate"),
        ("[tool.ci.gates.docs]\ncommand = ['']\n", "command starts with an empty string"),
        ("[tool.ci.gates.docs]\ncommand = ['x']\ninputs = ['../*.cfg']\n", "a pattern outside"),
        ("[tool.ci.gates.docs]\ncommand = ['x']\npythons = ['py3']\n", "pythons has 'py3'"),
        ("[tool.ci.gates.docs]\ncommand = 'make docs'\n", "command must be a list of strings"),
        ("[tool.ci.gates.docs]\ncommand = ['x']\nmode = 'soft'\n", "is not one of"),
        ("[tool.ci.gates.docs]\ncommand = ['x']\ncache = true\n", "unknown key 'cache'"),
    ],
)
def test_bad_gate_tables_are_exit_2_naming_the_key(tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        registry.gates(load(tmp_path, body))
    assert needle in str(info.value)
    assert str(tmp_path / "pyproject.toml") in str(info.value)
    assert info.value.exit_code is ExitCode.USAGE


def test_every_command_checks_gate_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load(tmp_path, "[tool.ci.gates.tests]\nmode = 'required'\n")
    app = App(cwd=tmp_path, runner=ProcessRunner(), clock=FixedClock(), env={})
    assert main(["preflight"], app) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "[tool.ci.gates.tests]: no such built-in gate" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_gate_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown gate 'doc' \(known: lint, .*docs\)"):
        registry.get(load(tmp_path, DOCS), "doc")


def test_groups_for_init_follow_the_gates() -> None:
    groups = registry.groups()
    assert list(groups) == ["lint", "test", "security", "package", "workflows"]
    assert groups["security"] == (
        "detect-secrets>=1.5",
        "pip-audit>=2.9",
        "cvss>=3.2",
        "PyYAML>=6",
    )


def test_declared_gate_policy_has_no_builtin_options() -> None:
    policy = GateConfig(name="docs", command=("x",), keys=("command",))
    gate = registry.declared_gate(policy)
    assert gate.options == frozenset()
    assert gate.run.name == "docs"  # type: ignore[attr-defined]


def test_run_gate_runs_a_declared_gate(tmp_path: Path) -> None:
    cfg = load(tmp_path, DOCS)
    result = pipeline.run_gate("docs", context(cfg, ProcessRunner(), FixedClock(), {}))
    assert result.status is GateStatus.PASSED
    assert result.gate == "docs" and result.variant == ""
    assert (tmp_path / "reports" / "docs.json").is_file()


# --- the README's tables follow the registry ------------------------------------------------

README = ROOT / "README.md"


def test_readme_gate_table_is_the_registrys() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- gates:start")
    table = text[text.index("\n", start) + 1 : text.index("<!-- gates:end -->")].strip()
    expected = markdown_table(gate_rows(config.load(cwd=ROOT)))
    assert table == expected, "README's gate table is stale: paste `python -m ci gates --markdown`"


def test_readme_sessions_and_tasks_are_the_real_ones() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Sessions and tasks") :]
    section = section[: section.index("\n## ")]
    named = set(re.findall(r"`nox -s ([\w-]+)`", section))
    sessions = {s.name for s in registry.sessions(config.load(cwd=ROOT))}
    parametrized = {s.name for s in registry.sessions(config.load(cwd=ROOT)) if s.parametrized}
    assert {n.rsplit("-", 1)[0] if n[-1].isdigit() else n for n in named} == sessions
    assert all(f"`nox -s {name}-3." in section for name in parametrized)
    invoked = set(re.findall(r"`uv run invoke (\w+)", section))
    invoked |= set(re.findall(r" / `(\w+) --", section))
    assert invoked == set(tasks.__all__)


def test_sessions_sync_the_bundles_own_group_where_the_project_has_one(tmp_path: Path) -> None:
    """An adopted project keeps the bundle's tools in noxgate-* groups beside its own."""
    plain = {s.name: s.group for s in registry.sessions(load(tmp_path))}
    assert plain["test"] == "test"
    adopted = load(
        tmp_path,
        '\n[dependency-groups]\ntest = ["pytest<8"]\n'
        'noxgate-test = [{include-group = "test"}, "coverage"]\nnoxgate-lint = ["ruff"]\n',
    )
    groups = {s.name: s.group for s in registry.sessions(adopted)}
    assert groups["test"] == "noxgate-test"
    assert groups["lint"] == "noxgate-lint"
    assert groups["security"] == "security"  # no noxgate-security: the plain name
    assert adopted.group(None) is None
