from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core.errors import ToolError
from ci.core.gate import Finding
from ci.core.runner import Completed
from ci.gates import workflows
from ci.github.workflow_files import WorkflowSyntaxError, parse

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"


def wf(text: str, rel: str = ".github/workflows/x.yml"):
    return parse(textwrap.dedent(text).lstrip("\n"), rel)


def rules(findings: list[Finding]) -> list[tuple[str, int | None]]:
    return sorted((f.rule, f.line) for f in findings)


GOOD = f"""
name: good
on:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
      - run: echo "$TITLE"
        env:
          TITLE: ${{{{ github.event.head_commit.message }}}}
"""


def test_parse_reads_on_as_a_key_and_keeps_lines():
    workflow = wf(GOOD)
    assert "on" in workflow.data
    assert True not in workflow.data
    assert workflow.triggers == {"push": {"branches": ["main"]}}
    assert workflow.line("jobs", "build", "steps", 1, "run") == 14
    assert workflow.line("jobs", "build", "nope", "deeper") == workflow.line("jobs", "build")


def test_parse_keeps_yes_and_no_as_strings():
    workflow = wf("on: push\njobs:\n  a:\n    runs-on: x\n    env:\n      A: yes\n      B: true\n")
    assert workflow.jobs["a"]["env"] == {"A": "yes", "B": True}


def test_parse_error_names_the_line():
    with pytest.raises(WorkflowSyntaxError) as info:
        wf("on: push\njobs:\n  a: [unclosed\n  b: 1\n")
    assert info.value.file == ".github/workflows/x.yml"
    assert info.value.line is not None
    assert str(info.value).startswith(".github/workflows/x.yml:")


def test_parse_rejects_a_non_mapping():
    with pytest.raises(WorkflowSyntaxError, match="must be a mapping"):
        wf("- just\n- a list\n")


def test_a_good_workflow_has_no_findings():
    assert workflows.check(wf(GOOD)) == []


def test_unpinned_uses_are_found_with_their_line():
    workflow = wf(
        """
        on: push
        permissions: {}
        jobs:
          a:
            runs-on: x
            steps:
              - uses: actions/checkout@v4
              - uses: actions/setup-python@0a5c61591373683505ea898e09a3ea4f39ef2b9c
              - uses: ./local-action
              - uses: docker://alpine:3.20
          reuse:
            uses: org/repo/.github/workflows/w.yml@main
        """
    )
    assert rules(workflows.check(workflow)) == [
        ("pin", 7),
        ("pin", 10),
        ("pin", 12),
        ("pin-comment", 8),
    ]


def test_top_level_permissions_must_exist_and_be_read_only():
    missing = wf("on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n")
    assert rules(workflows.check(missing)) == [("permissions", 1)]
    write = wf(
        "on: push\npermissions:\n  contents: write\n  pull-requests: read\n"
        "jobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n"
    )
    found = workflows.check(write)
    assert rules(found) == [("permissions", 2)]
    assert "contents" in found[0].message
    assert workflows.check(wf(GOOD.replace("contents: read", "contents: none"))) == []


def test_write_permissions_per_job_and_id_token_only_with_an_environment():
    workflow = wf(
        """
        on: push
        permissions: read-all
        jobs:
          publish:
            runs-on: x
            permissions:
              id-token: write
            steps: [{run: 'true'}]
          guarded:
            runs-on: x
            environment: pypi
            permissions:
              id-token: write
            steps: [{run: 'true'}]
          everything:
            runs-on: x
            permissions: write-all
            steps: [{run: 'true'}]
        """
    )
    assert rules(workflows.check(workflow)) == [("permissions", 7), ("permissions", 17)]


# The job shapes of the official documentation: actions/attest-build-provenance's README
# ("Identify Subject by Path") and the PyPA guide's trusted-publishing job (an `environment`,
# `id-token: write`, pypa/gh-action-pypi-publish). Pins as this gate wants them.
ATTEST = "actions/attest-build-provenance@" + "1" * 40 + " # v3"
PUBLISH = "pypa/gh-action-pypi-publish@" + "2" * 40 + " # v1.13.0"
CHECKOUT = "actions/checkout@" + "3" * 40 + " # v4"
DOWNLOAD = "actions/download-artifact@" + "4" * 40 + " # v4"
OFFICIAL_JOBS = f"""
on:
  push:
    tags: ["v[0-9]*"]
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    permissions:
      id-token: write
      contents: read
      attestations: write
    steps:
      - name: Checkout
        uses: {CHECKOUT}
      - name: Build artifact
        run: make my-app
      - name: Attest
        uses: {ATTEST}
        with:
          subject-path: '${{{{ github.workspace }}}}/my-app'
  publish-to-pypi:
    name: Publish Python distribution to PyPI
    needs: [build]
    runs-on: ubuntu-latest
    environment:
      name: pypi
      url: https://pypi.org/p/sample
    permissions:
      id-token: write
    steps:
      - name: Download all the dists
        uses: {DOWNLOAD}
        with:
          name: python-package-distributions
          path: dist/
      - name: Publish distribution to PyPI
        uses: {PUBLISH}
"""


def test_the_official_attestation_and_trusted_publishing_jobs_pass():
    assert workflows.check(wf(OFFICIAL_JOBS)) == []


@pytest.mark.parametrize(
    ("change", "line"),
    [
        # the publishing job without its environment
        ("    environment:\n      name: pypi\n      url: https://pypi.org/p/sample\n", 27),
        # an attestation job that also uploads (uv publish) is a publishing job
        ("        run: make my-app\n", 10),
        # id-token without `attestations: write` is not the attestation pattern
        ("      attestations: write\n", 10),
    ],
    ids=["publish-without-environment", "attest-and-publish", "attest-without-permission"],
)
def test_the_id_token_rule_still_holds_for_publishing(change: str, line: int):
    replacement = {
        "        run: make my-app\n": "        run: make my-app && uv publish\n",
    }.get(change, "")
    text = OFFICIAL_JOBS.replace(change, replacement, 1)
    assert text != OFFICIAL_JOBS
    found = workflows.check(wf(text))
    assert [(f.rule, f.line) for f in found] == [("permissions", line)]
    assert "id-token: write" in found[0].message


def test_github_event_inside_run_is_found_on_its_own_line():
    workflow = wf(
        """
        on: issues
        permissions: {}
        jobs:
          a:
            runs-on: x
            steps:
              - run: |
                  echo start
                  echo "${{ github.event.issue.title }}"
              - run: echo "${{ github.head_ref }}"
              - run: echo "${{ github.sha }}"
        """
    )
    found = workflows.check(workflow)
    assert rules(found) == [("injection", 9), ("injection", 10)]
    assert "github.event.issue.title" in found[0].message


def test_pull_request_target_checking_out_the_head_is_found():
    text = f"""
        on: pull_request_target
        permissions: {{}}
        jobs:
          a:
            runs-on: x
            steps:
              - uses: {CHECKOUT}
                with:
                  ref: ${{{{ github.event.pull_request.head.sha }}}}
        """
    assert rules(workflows.check(wf(text))) == [("pr-target-checkout", 7)]
    safe = text.replace("pull_request_target", "pull_request")
    assert workflows.check(wf(safe)) == []


def test_needs_must_name_jobs_and_not_loop():
    workflow = wf(
        """
        on: push
        permissions: {}
        jobs:
          a: {runs-on: x, needs: b, steps: [{run: 'true'}]}
          b: {runs-on: x, needs: [a], steps: [{run: 'true'}]}
          c: {runs-on: x, needs: [ghost], steps: [{run: 'true'}]}
        """
    )
    found = workflows.check(workflow)
    assert [f.message for f in found if "ghost" in f.message]
    assert any("cycle: a -> b -> a" in f.message for f in found)


def test_zizmor_output_becomes_findings_and_crashes_are_tool_errors():
    item = {
        "ident": "template-injection",
        "desc": "code injection via template expansion",
        "determinations": {"severity": "High"},
        "ignored": False,
        "locations": [
            {
                "symbolic": {"key": {"Local": {"verbatim_path": "w.yml"}}, "kind": "Related"},
                "concrete": {"location": {"start_point": {"row": 1}}},
            },
            {
                "symbolic": {"key": {"Local": {"verbatim_path": "w.yml"}}, "kind": "Primary"},
                "concrete": {"location": {"start_point": {"row": 9}}},
            },
        ],
    }
    ignored = {**item, "ignored": True}
    done = Completed(
        argv=("zizmor",), returncode=14, stdout=json.dumps([item, ignored]), stderr="", duration_s=0
    )
    assert workflows.zizmor_findings(done) == [
        Finding(
            rule="zizmor/template-injection",
            message="code injection via template expansion",
            file="w.yml",
            line=10,
            severity="high",
        )
    ]
    crashed = Completed(argv=("zizmor",), returncode=1, stdout="", stderr="boom", duration_s=0)
    with pytest.raises(ToolError, match="zizmor crashed with exit status 1: boom"):
        workflows.zizmor_findings(crashed)


def test_findings_print_as_file_line_rule_message():
    finding = Finding(rule="pin", message="not pinned", file="w.yml", line=3)
    assert workflows.describe(finding) == "w.yml:3: pin not pinned"


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "1.0"\n')
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return tmp_path


def test_gate_passes_on_this_repository(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path, {})
    for path in (ROOT / ".github" / "workflows").glob("*.yml"):
        target = project / ".github" / "workflows" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    monkeypatch.chdir(project)
    assert main(["gate", "workflows"]) == 0
    assert "clean" in capsys.readouterr().out
    report = json.loads((project / "reports" / "workflows.json").read_text())
    assert report["status"] == "passed"


def test_gate_reports_every_tool_with_file_and_line(tmp_path, capsys, monkeypatch):
    project = _project(
        tmp_path,
        {
            ".github/workflows/bad.yml": """
            on: push
            permissions: {}
            jobs:
              a:
                runs-on: ubuntu-24.04
                stepz: []
            """,
            ".github/workflows/inject.yml": """
            on: issues
            jobs:
              b:
                runs-on: ubuntu-24.04
                steps:
                  - uses: actions/checkout@v4
                  - run: echo "${{ github.event.issue.title }}"
            """,
            ".github/workflows/broken.yml": "on: push\njobs: [\n",
        },
    )
    monkeypatch.chdir(project)
    assert main(["gate", "workflows"]) == 1
    out = capsys.readouterr().out
    assert ".github/workflows/inject.yml:1: permissions" in out
    # the same issue at the same place is one finding, zizmor's, naming the bundle's rule
    assert ".github/workflows/inject.yml:6: pin " not in out
    assert ".github/workflows/inject.yml:7: injection " not in out
    assert ".github/workflows/inject.yml:7: zizmor/template-injection" in out
    assert "(also the bundle's injection: `${{ github.event.issue.title" in out
    assert ".github/workflows/inject.yml:6: zizmor/unpinned-uses" in out
    assert "(also the bundle's pin: actions/checkout@v4 is not pinned" in out
    assert ".github/workflows/bad.yml:6: schema $.jobs.a: Additional properties" in out
    assert ".github/workflows/broken.yml:3: yaml not valid YAML" in out


def test_gate_is_skipped_without_workflows(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, {}))
    assert main(["gate", "workflows"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_an_action_that_attests_inside_counts_when_asked_to():
    """pluggy's deploy.yml: build-and-inspect-python-package attests; the upload job has no
    environment, so only that one is flagged."""
    baipp = "hynek/build-and-inspect-python-package@" + "5" * 40 + " # v3.0.1"
    text = f"""
on:
  push:
    tags: ["*"]
permissions: {{}}
jobs:
  package:
    runs-on: ubuntu-latest
    permissions:
      id-token: write
      attestations: write
    steps:
      - uses: {CHECKOUT}
        with:
          fetch-depth: 0
          persist-credentials: false
      - uses: {baipp}
        with:
          attest-build-provenance-github: 'true'
  deploy:
    needs: [package]
    runs-on: ubuntu-latest
    permissions:
      id-token: write
    steps:
      - uses: {DOWNLOAD}
        with:
          name: Packages
          path: dist
      - uses: {PUBLISH}
        with:
          attestations: true
"""
    assert [(f.rule, f.line) for f in workflows.check(wf(text))] == [("permissions", 23)]
    off = text.replace(
        "attest-build-provenance-github: 'true'", "attest-build-provenance-github: 'false'"
    )
    assert [(f.rule, f.line) for f in workflows.check(wf(off))] == [
        ("permissions", 9),
        ("permissions", 23),
    ]


GOOD_FILE = f"""
on: push
permissions: {{}}
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
"""


def test_a_duplicate_key_is_a_yaml_finding_with_its_line(tmp_path, capsys, monkeypatch):
    # check-jsonschema cannot parse it (parse_errors only), zizmor skips it, PyYAML keeps
    # the last value: each tool alone found nothing, and the gate passed
    duplicate = GOOD_FILE + "  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo\n"
    project = _project(
        tmp_path,
        {".github/workflows/good.yml": GOOD_FILE, ".github/workflows/dup.yml": duplicate},
    )
    monkeypatch.chdir(project)
    assert main(["gate", "workflows"]) == 1
    out = capsys.readouterr().out
    assert ".github/workflows/dup.yml:10: yaml not valid YAML: duplicate key 'a'" in out


def test_a_schema_parse_error_the_gate_cannot_place_is_a_tool_error():
    report = {
        "status": "fail",
        "errors": [],
        "parse_errors": [{"filename": "w.yml", "message": "Failed to parse w.yml"}],
    }
    done = Completed(
        argv=("check-jsonschema",), returncode=1, stdout=json.dumps(report), stderr="", duration_s=0
    )
    with pytest.raises(ToolError, match=r"check-jsonschema could not parse w.yml .*Failed to"):
        workflows.schema_findings(done, {}, Path("/nowhere"))
    # one the YAML check already reported with its line is that finding, not an error
    assert workflows.schema_findings(done, {}, Path("/nowhere"), reported={"w.yml"}) == []
    # a failing exit with nothing to show is no verdict either
    empty = Completed(
        argv=("check-jsonschema",),
        returncode=1,
        stdout=json.dumps({"status": "fail", "errors": [], "parse_errors": []}),
        stderr="",
        duration_s=0,
    )
    with pytest.raises(ToolError, match="check-jsonschema exited with status 1"):
        workflows.schema_findings(empty, {}, Path("/nowhere"))


@pytest.mark.parametrize("code", [10, 11, 12, 13, 14])
@pytest.mark.parametrize("stdout", ["[]", json.dumps([{"ident": "x", "ignored": True}])])
def test_zizmor_findings_codes_with_no_finding_read_are_tool_errors(code: int, stdout: str):
    done = Completed(argv=("zizmor",), returncode=code, stdout=stdout, stderr="", duration_s=0)
    with pytest.raises(ToolError, match=f"zizmor exited with status {code} .*findings"):
        workflows.zizmor_findings(done)


@pytest.mark.parametrize("code", [2, 3, 9, 15, -9])
def test_zizmor_statuses_it_does_not_document_as_findings_are_tool_errors(code: int):
    done = Completed(argv=("zizmor",), returncode=code, stdout="[]", stderr="", duration_s=0)
    with pytest.raises(ToolError, match=f"zizmor crashed with exit status {code}"):
        workflows.zizmor_findings(done)


def test_an_issue_both_tools_report_at_one_place_counts_once(tmp_path, capsys, monkeypatch):
    project = _project(
        tmp_path,
        {
            ".github/workflows/twice.yml": """
            on: pull_request
            permissions:
              contents: read
            jobs:
              a:
                runs-on: ubuntu-24.04
                permissions: write-all
                steps:
                  - uses: actions/checkout@v4
                    with:
                      persist-credentials: false
                  - run: |
                      echo "${{ github.event.pull_request.title }}"
            """,
        },
    )
    monkeypatch.chdir(project)
    assert main(["gate", "workflows"]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(".github/")]
    places = [tuple(line.split(" ", 2)[:2]) for line in lines]
    # one finding per issue and place: zizmor's, with the bundle's rule named in it
    assert places == [
        (".github/workflows/twice.yml:7:", "zizmor/excessive-permissions"),
        (".github/workflows/twice.yml:9:", "zizmor/unpinned-uses"),
        (".github/workflows/twice.yml:13:", "zizmor/template-injection"),
    ]
    assert "(also the bundle's permissions: job a has write-all" in lines[0]
    assert "(also the bundle's pin: actions/checkout@v4" in lines[1]
    assert "(also the bundle's injection: `${{ github.event.pull_request.title" in lines[2]
    assert "3 finding(s) in 1 workflow(s)" in out
    report = json.loads((project / "reports" / "workflows.json").read_text())
    assert len(report["findings"]) == 3


def test_merge_keeps_zizmor_findings_and_names_the_bundle_rule():
    at = {"file": ".github/workflows/x.yml", "line": 5}
    own = [
        Finding(rule="injection", message="first", **at),
        Finding(rule="injection", message="second", **at),
        Finding(rule="injection", message="third", **at),
        Finding(rule="pin", message="elsewhere", file=at["file"], line=6),
        Finding(rule="needs", message="no zizmor twin", **at),
    ]
    zizmor = [
        Finding(rule="zizmor/template-injection", message="code injection", **at),
        Finding(rule="zizmor/template-injection", message="code injection", **at),
        Finding(rule="zizmor/artipacked", message="credentials", file=at["file"], line=6),
    ]
    merged = workflows.merge(own, zizmor)
    assert [(f.rule, f.line, f.message) for f in merged] == [
        ("pin", 6, "elsewhere"),  # zizmor reports another issue there
        ("needs", 5, "no zizmor twin"),
        ("zizmor/template-injection", 5, "code injection (also the bundle's injection: first)"),
        (
            "zizmor/template-injection",
            5,
            "code injection (also the bundle's injection: second; injection: third)",
        ),
        ("zizmor/artipacked", 6, "credentials"),
    ]
