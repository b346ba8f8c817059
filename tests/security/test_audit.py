"""The dependency audit: real pip-audit against the local mirror, severities, policy, waivers."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from ci.cli import main as cli
from ci.cli.app import App
from ci.core import uv as bundle_uv
from ci.core.config import Config
from ci.core.errors import ToolError, UsageError
from ci.core.http import ApiError, Retry, UrllibClient
from ci.core.runner import ProcessRunner
from ci.security import audit
from ci.security.advisories import Upstream, _yaml_load
from ci.testing.fakes import FakeRunner, FixedClock

FIXTURES = Path(__file__).parents[1] / "fixtures" / "advisories"
ROOT = Path(__file__).resolve().parents[2]
PINS = {
    "requests": "2.19.0",
    "jinja2": "2.10",
    "urllib3": "1.24.1",
    "py": "1.11.0",
    "redis": "4.5.0",
}


def project(tmp_path: Path, extra: str = "") -> Path:
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text(f"[project]\nname = 'demo'\nversion = '1.0'\n{extra}")
    return root


def expected_ids(pins: dict[str, str]) -> set[str]:
    """Advisories listing a pinned version in their ``versions`` (independent of range logic)."""
    found = set()
    for path in FIXTURES.rglob("*"):
        if path.suffix not in {".yaml", ".json"}:
            continue
        record = (
            json.loads(path.read_text()) if path.suffix == ".json" else _yaml_load(path.read_text())
        )
        assert isinstance(record, dict)
        if record.get("withdrawn"):
            continue
        for affected in record["affected"]:
            name = affected["package"]["name"].lower()
            if name in pins and pins[name] in affected.get("versions", []):
                found.add(record["id"])
    return found


def test_offline_audit_with_real_pip_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    (root / "r.txt").write_text("".join(f"{n}=={v}\n" for n, v in PINS.items()))
    argv = ["audit", "--requirements", "r.txt", "--advisory-db", str(FIXTURES)]
    code = cli.main([*argv, "--format", "json", "--output", "a.json"], App(cwd=root))
    assert code == 1
    report = json.loads((root / "a.json").read_text())
    assert report["schema"] == 1
    found = {f["id"] for f in report["findings"]}
    assert found == expected_ids(PINS)
    assert "PYSEC-2023-73" not in found  # withdrawn
    by_id = {f["id"]: f for f in report["findings"]}
    assert by_id["PYSEC-2023-192"]["severity"] == "high"
    assert by_id["PYSEC-2023-192"]["score"] == 8.1
    assert by_id["PYSEC-2023-207"]["severity"] == "medium"
    assert by_id["PYSEC-2018-28"]["severity"] == "unknown"
    assert by_id["PYSEC-2018-28"]["counts_as"] == "high"
    assert by_id["PYSEC-2018-28"]["fix_versions"] == ["2.20.0"]
    assert "CVE-2018-18074" in by_id["PYSEC-2018-28"]["aliases"]
    assert set(report["findings"][0]) >= {
        "package",
        "version",
        "id",
        "aliases",
        "severity",
        "fix_versions",
        "waived",
    }
    assert "report written to" in capsys.readouterr().out

    (root / "clean.txt").write_text("requests==2.32.3\n")
    assert (
        cli.main(
            ["audit", "--requirements", "clean.txt", "--advisory-db", str(FIXTURES)], App(cwd=root)
        )
        == 0
    )
    assert "0 vulnerabilities in 0 of 1 package(s)" in capsys.readouterr().out


def test_unreachable_service_is_exit_6_never_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = project(tmp_path)
    (root / "r.txt").write_text("requests==2.32.3\n")
    app = App(cwd=root, env={"CI_OSV_API": f"http://127.0.0.1:{port}"})
    assert cli.main(["audit", "--requirements", "r.txt"], app) == 6
    assert capsys.readouterr().err.strip() == f"error: {audit.UNREACHABLE}"


def pip_audit_json(*deps: tuple[str, str, list[dict[str, object]]]) -> str:
    return json.dumps(
        {
            "dependencies": [{"name": n, "version": v, "vulns": vulns} for n, v, vulns in deps],
            "fixes": [],
        }
    )


URLLIB3 = (
    "urllib3",
    "1.24.1",
    [
        {
            "id": "PYSEC-2023-192",
            "fix_versions": ["1.26.17"],
            "aliases": ["CVE-2023-43804"],
            "description": "d",
        },
        {
            "id": "PYSEC-2023-207",
            "fix_versions": ["1.24.2"],
            "aliases": ["CVE-2019-11236"],
            "description": "d",
        },
    ],
)
REQUESTS = (
    "requests",
    "2.19.0",
    [{"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": ["CVE-2018-18074"]}],
)


def fake_pip_audit(output: str, code: int = 1, stderr: str = "") -> FakeRunner:
    return FakeRunner(script={(sys.executable, "-m", "pip_audit"): (code, output, stderr)})


def policy_app(root: Path, output: str, env: dict[str, str] | None = None) -> App:
    return App(cwd=root, runner=fake_pip_audit(output), env=env or {}, clock=FixedClock())


def test_fail_on_and_unknown_severity_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = pip_audit_json(URLLIB3, REQUESTS)
    root = project(
        tmp_path, "[tool.ci.gates.audit]\nfail_on = 'critical'\nunknown_severity = 'low'\n"
    )
    (root / "r.txt").write_text("urllib3==1.24.1\nrequests==2.19.0\n")
    argv = ["audit", "--requirements", "r.txt", "--advisory-db", str(FIXTURES)]
    assert cli.main(argv, policy_app(root, output)) == 0
    assert "0 at or above critical" in capsys.readouterr().out
    assert cli.main([*argv, "--fail-on", "high"], policy_app(root, output)) == 1
    assert "1 at or above high" in capsys.readouterr().out
    assert cli.main([*argv, "--fail-on", "low"], policy_app(root, output)) == 1
    assert "3 at or above low" in capsys.readouterr().out


def test_waivers_match_ids_and_aliases_and_expire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = pip_audit_json(URLLIB3)
    waivers = (
        "[[tool.ci.waivers]]\nid = 'CVE-2023-43804'\n"
        "reason = 'not reachable'\nexpires = 2030-01-01\n"
        "[[tool.ci.waivers]]\nid = 'PYSEC-2023-207'\nreason = 'tolerated'\nexpires = 2030-01-01\n"
    )
    root = project(tmp_path, waivers)
    (root / "r.txt").write_text("urllib3==1.24.1\n")
    argv = ["audit", "--requirements", "r.txt", "--advisory-db", str(FIXTURES), "--fail-on", "low"]
    assert cli.main([*argv, "--format", "json"], policy_app(root, output)) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["waived"] for f in report["findings"]] == [True, True]
    (root / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\n" + waivers.replace("2030-01-01", "2025-06-30", 1)
    )
    assert cli.main(argv, policy_app(root, output)) == 1
    assert "waiver CVE-2023-43804 expired on 2025-06-30" in capsys.readouterr().out
    (root / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\n[[tool.ci.waivers]]\nid = 'X'\nexpires = 2030-01-01\n"
    )
    assert cli.main(argv, policy_app(root, output)) == 2
    assert "has no 'reason'" in capsys.readouterr().err


def test_advisory_db_from_env_and_config_and_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    config = Config(root=root, path=root / "pyproject.toml", advisory_db="db")
    (root / "db").mkdir()
    assert audit.resolve_db(None, {}, config, tmp_path) == (root / "db").resolve()
    env = {"CI_ADVISORY_DB": str(FIXTURES)}
    assert audit.resolve_db(None, env, config, tmp_path) == FIXTURES.resolve()
    assert (
        audit.resolve_db(None, {"CI_ADVISORY_DB": "db"}, config, tmp_path)
        == (root / "db").resolve()
    )
    assert audit.resolve_db(None, {}, Config(root=root, path=None), tmp_path) is None
    with pytest.raises(UsageError, match="from CI_ADVISORY_DB"):
        audit.resolve_db(None, {"CI_ADVISORY_DB": "nowhere"}, config, tmp_path)
    (root / "r.txt").write_text("requests==2.19.0\n")
    app = App(cwd=root, runner=fake_pip_audit("{}"), env={"CI_ADVISORY_DB": "missing-db"})
    assert cli.main(["audit", "--requirements", "r.txt"], app) == 2
    err = capsys.readouterr().err
    assert "missing-db" in err
    assert err.count("\n") == 1


def test_pip_audit_crash_and_missing_inputs(tmp_path: Path) -> None:
    options = audit.AuditOptions(
        root=tmp_path, requirements=tmp_path / "r.txt", advisory_db=FIXTURES
    )
    (tmp_path / "r.txt").write_text("requests==2.19.0\n")
    with pytest.raises(ToolError, match=r"pip-audit failed .*boom"):
        audit.audit(options, fake_pip_audit("", 2, "Traceback\nValueError: boom\n"), UrllibClient())
    with pytest.raises(UsageError, match="does not exist"):
        audit.audit(
            audit.AuditOptions(root=tmp_path, requirements=tmp_path / "nope.txt"),
            FakeRunner(),
            UrllibClient(),
        )
    with pytest.raises(UsageError, match=r"uv\.lock"):
        audit.audit(
            audit.AuditOptions(root=tmp_path, advisory_db=FIXTURES), FakeRunner(), UrllibClient()
        )


def test_export_of_the_real_lock_has_pins_and_hashes(tmp_path: Path) -> None:
    target = tmp_path / "req.txt"
    audit.export_locked(ProcessRunner(), ROOT, target)
    text = target.read_text()
    assert "\npackaging==" in "\n" + text
    assert "--hash=sha256:" in text
    assert "-e ." not in text
    assert "\ncolorama==0.4.6 ; os_name == 'nt' or sys_platform == 'win32' \\\n" in text
    _, pins = audit.read_pins(text)
    colorama = next(p for p in pins if p.name == "colorama")
    assert colorama.markers == 'os_name == "nt" or sys_platform == "win32"'  # audited anyway
    assert colorama.line.startswith("colorama==0.4.6 \\\n    --hash=sha256:")
    assert audit.applies_to(colorama.markers, ("3.12", "3.11")) == ("3.12", "3.11")


def test_severity_sources() -> None:
    v3 = {
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    }
    assert audit.severity_of([v3]) == audit.Severity(
        label="critical", score=9.8, vector=v3["severity"][0]["score"], source="cvss"
    )
    v4 = {
        "severity": [
            {
                "type": "CVSS_V4",
                "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
            }
        ]
    }
    assert audit.severity_of([v4]).source == "cvss"
    v2 = {"severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}]}
    assert audit.severity_of([v2]).label == "high"
    ghsa = {"database_specific": {"severity": "MODERATE"}}
    assert audit.severity_of([ghsa]) == audit.Severity(label="medium", source="label")
    bad = {"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/garbage"}]}
    assert audit.severity_of([bad]).label == "unknown"
    assert audit.severity_of([]).label == "unknown"
    assert audit.severity_of([ghsa, v3]).label == "critical"  # a score beats a label
    assert [audit.label_of_score(s) for s in (0.0, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
    ]


def test_report_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = pip_audit_json(URLLIB3, REQUESTS)
    root = project(tmp_path)
    (root / "r.txt").write_text("# pins\nurllib3==1.24.1\nrequests==2.19.0\n")
    argv = ["audit", "--requirements", "r.txt", "--advisory-db", str(FIXTURES)]
    assert cli.main([*argv, "--format", "cyclonedx"], policy_app(root, output)) == 1
    bom = json.loads(capsys.readouterr().out)
    assert bom["bomFormat"] == "CycloneDX"
    assert {c["purl"] for c in bom["components"]} == {
        "pkg:pypi/urllib3@1.24.1",
        "pkg:pypi/requests@2.19.0",
    }
    rated = {v["id"]: v["ratings"][0] for v in bom["vulnerabilities"]}
    assert rated["PYSEC-2023-192"]["score"] == 8.1
    assert rated["PYSEC-2023-192"]["method"] == "CVSSv31"
    assert cli.main([*argv, "--format", "sarif"], policy_app(root, output)) == 1
    sarif = json.loads(capsys.readouterr().out)
    first = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert first == {"artifactLocation": {"uri": "r.txt"}, "region": {"startLine": 2}}
    assert cli.main([*argv, "--format", "markdown"], policy_app(root, output)) == 1
    assert (
        "| urllib3 | 1.24.1 | PYSEC-2023-192 | high (8.1) | 1.26.17 | **fails** |"
        in capsys.readouterr().out
    )


def test_gate_audit_writes_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path)
    (root / "uv.lock").write_text("version = 1\n")
    runner = FakeRunner(
        script={
            ("uv", "export"): (0, "", ""),
            (sys.executable, "-m", "pip_audit"): (1, pip_audit_json(REQUESTS), ""),
        }
    )
    app = App(cwd=root, runner=runner, env={"CI_ADVISORY_DB": str(FIXTURES)}, clock=FixedClock())
    assert cli.main(["gate", "audit"], app) == 1
    record = json.loads((root / "reports" / "audit.json").read_text())
    assert record["gate"] == "audit"
    assert record["findings"][0]["rule"] == "PYSEC-2018-28"
    assert (root / "reports" / "audit.sarif").is_file()
    assert "PYSEC-2018-28" in (root / "reports" / "audit.md").read_text()
    assert cli.main(["gate", "audit", "--extra"], app) == 2
    assert any(call[:2] == ("uv", "export") for call in runner.calls)
    del capsys


def test_rank_and_today_default() -> None:
    assert audit.rank("low") < audit.rank("critical")
    assert audit.AuditOptions(root=Path()).today <= dt.date.today()


def test_online_mode_queries_and_enriches_from_an_osv_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a database the audit talks to an OSV API: here our own server on 127.0.0.1."""
    from ci.security.advisories import AdvisoryDB, serving

    root = project(tmp_path)
    (root / "r.txt").write_text("urllib3==1.24.1\n")
    with serving(AdvisoryDB(FIXTURES)) as url:
        app = App(cwd=root, env={"CI_OSV_API": f"{url}/v1/query"})  # either form works
        assert cli.main(["audit", "--requirements", "r.txt", "--format", "json"], app) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["service"] == url
    assert {f["id"]: f["score"] for f in report["findings"]} == {
        "PYSEC-2023-192": 8.1,
        "PYSEC-2023-207": 6.1,
    }


def test_fetch_osv_handles_missing_records_and_outages(tmp_path: Path) -> None:
    from ci.security.advisories import AdvisoryDB, serving

    with serving(AdvisoryDB(FIXTURES)) as url:
        fetch = audit.fetch_osv(url, UrllibClient())
        record = fetch("PYSEC-2023-192")
        assert record is not None
        assert record["id"] == "PYSEC-2023-192"
        assert fetch("CVE-2023-43804") is None  # an alias without its own record
    no_wait = Retry(attempts=2, sleep=lambda _: None)
    with pytest.raises(ApiError, match="unreachable.*use --advisory-db") as caught:
        audit.fetch_osv(url, UrllibClient(), retry=no_wait, timeout=2)("PYSEC-2023-192")
    assert caught.value.exit_code == 6
    with pytest.raises(UsageError, match="not http"):
        audit.fetch_osv("file:///etc", UrllibClient())("X")
    del tmp_path


def test_unpinned_requirements_are_bad_input(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("requests>=2\n")
    options = audit.AuditOptions(
        root=tmp_path, requirements=tmp_path / "r.txt", advisory_db=FIXTURES
    )
    stderr = (
        "WARNING:pip_audit._cli:--no-deps is supported\n"
        "ERROR:pip_audit._cli:requirement requests is not pinned to an exact version: requests>=2\n"
    )
    with pytest.raises(UsageError, match=r"not pinned .*one name==version per line"):
        audit.audit(options, fake_pip_audit("", 1, stderr), UrllibClient())


FORKED = """\
urllib3==1.24.1 ; python_full_version < '3.12' \\
    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000001
    # via demo
urllib3==2.0.5 ; python_full_version >= '3.12' \\
    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000002
    # via demo
requests==2.19.0 \\
    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000003
"""


def test_a_package_pinned_twice_is_audited_in_both_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lock that forks by Python version: pip-audit alone refuses the duplicate name."""
    root = project(tmp_path, '[tool.ci]\npythons = ["3.12", "3.11", "3.13"]\n')
    (root / "r.txt").write_text(FORKED)
    argv = ["audit", "--requirements", "r.txt", "--advisory-db", str(FIXTURES)]
    assert cli.main([*argv, "--format", "json", "--output", "a.json"], App(cwd=root)) == 1
    report = json.loads((root / "a.json").read_text())
    pinned = {(d["name"], d["version"]) for d in report["dependencies"]}
    assert pinned == {("urllib3", "1.24.1"), ("urllib3", "2.0.5"), ("requests", "2.19.0")}
    found = {(f["package"], f["version"], f["id"]) for f in report["findings"]}
    old = expected_ids({"urllib3": "1.24.1"})
    new = expected_ids({"urllib3": "2.0.5"})
    assert old and new  # each version has advisories of its own in the fixtures
    assert {i for p, v, i in found if (p, v) == ("urllib3", "1.24.1")} == old
    assert {i for p, v, i in found if (p, v) == ("urllib3", "2.0.5")} == new
    where = {(f["version"], tuple(f["pythons"] or ()), f["markers"]) for f in report["findings"]}
    assert ("1.24.1", ("3.11",), 'python_full_version < "3.12"') in where
    assert ("2.0.5", ("3.12", "3.13"), 'python_full_version >= "3.12"') in where

    assert cli.main(argv, App(cwd=root)) == 1
    text = capsys.readouterr().out
    assert 'urllib3 1.24.1 (Python 3.11: python_full_version < "3.12"): PYSEC-2023-207' in text
    assert 'urllib3 2.0.5 (Python 3.12, 3.13: python_full_version >= "3.12"): PYSEC-2023' in text


def test_pins_split_into_files_pip_audit_accepts() -> None:
    options, pins = audit.read_pins(FORKED + "-i https://example.invalid/simple\n")
    assert options == ["-i https://example.invalid/simple"]
    assert [(p.name, p.version) for p in pins] == [
        ("urllib3", "1.24.1"),
        ("urllib3", "2.0.5"),
        ("requests", "2.19.0"),
    ]
    first, second = audit.layers(pins)
    assert [(p.name, p.version) for p in first] == [("urllib3", "1.24.1"), ("requests", "2.19.0")]
    assert [(p.name, p.version) for p in second] == [("urllib3", "2.0.5")]
    assert audit.layers([]) == [[]]
    assert audit.applies_to("", ("3.12",)) is None
    assert audit.applies_to("python_version < '3.9'", ("3.12", "3.11")) == ()
    assert audit.applies_to(
        "python_full_version >= '3.11.4' and sys_platform == 'darwin'", ("3.12", "3.11")
    ) == ("3.12", "3.11")


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, '{"code": 13}'), (200, "<html>")],  # each run is a real pip-audit: ~5 s
)
def test_an_osv_api_answering_errors_is_exit_6_never_clean(
    httpserver: HTTPServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
    body: str,
) -> None:
    httpserver.expect_request("/v1/query").respond_with_data(body, status=status)
    root = project(tmp_path)
    (root / "r.txt").write_text("requests==2.19.0\n")
    app = App(cwd=root, env={"CI_OSV_API": httpserver.url_for("/")})
    assert cli.main(["audit", "--requirements", "r.txt"], app) == 6
    captured = capsys.readouterr()
    assert "vulnerabilities" not in captured.out
    assert captured.err.startswith("error: the OSV")


@contextlib.contextmanager
def osv_answering(*bodies: bytes) -> Iterator[tuple[str, list[object]]]:
    """A real OSV look-alike on 127.0.0.1: answers POST /v1/query with ``bodies`` in turn."""
    asked: list[object] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            asked.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = bodies[min(len(asked), len(bodies)) - 1]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            del args

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    "body",
    [b"[]", b"null", b"", b'"none"', b'{"vulns": {}}', b'{"vulns": [{"summary": "x"}]}', b"<html>"],
    ids=["list", "null", "empty", "string", "vulns-object", "record-without-id", "html"],
)
def test_an_osv_answer_that_is_not_a_result_is_a_tool_error(body: bytes) -> None:
    """pip-audit reads each of these as "no vulnerabilities"; the relay refuses them."""
    with osv_answering(body) as (url, asked):
        upstream = Upstream(url, UrllibClient())
        with pytest.raises(ToolError, match=r"the OSV (API at http://127\.0\.0\.1|query)"):
            upstream.query("requests", "2.19.0")
        assert upstream.problem
        assert asked == [
            {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.19.0"}
        ]
        with pytest.raises(ToolError):  # once broken, every later pin fails without asking
            upstream.query("idna", "3.7")
        assert len(asked) == 1


def test_an_osv_result_is_relayed_page_by_page() -> None:
    pages = (b'{"vulns": [{"id": "A"}], "next_page_token": "t1"}', b'{"vulns": [{"id": "B"}]}')
    with osv_answering(*pages) as (url, asked):
        upstream = Upstream(url, UrllibClient())
        assert [r["id"] for r in upstream.query("requests", "2.19.0")] == ["A", "B"]
        assert [a.get("page_token") for a in asked] == [None, "t1"]  # type: ignore[union-attr]
    with osv_answering(b"{}") as (url, _):
        assert Upstream(url, UrllibClient()).query("requests", "2.19.0") == []  # OSV's "none"
    assert not upstream.problem


def test_an_osv_api_answering_a_list_is_exit_6_not_no_vulnerabilities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    (root / "r.txt").write_text("requests==2.19.0\n")
    with osv_answering(b"[]") as (url, asked):
        app = App(cwd=root, env={"CI_OSV_API": url})
        assert cli.main(["audit", "--requirements", "r.txt"], app) == 6
    assert asked  # pip-audit's query went through to the API
    captured = capsys.readouterr()
    assert "vulnerabilities in" not in captured.out
    assert "error: the OSV API at http://127.0.0.1 answered the query for requests 2.19.0 " in (
        captured.err
    )


@pytest.mark.parametrize("where", ["first", "queried"])
def test_a_damaged_record_in_the_advisory_folder_is_exit_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """First: it said "holds no OSV records"; met by pip-audit's query: "ServiceError", exit 6."""
    db = tmp_path / "db"
    shutil.copytree(FIXTURES, db)
    folder = db / ("a-first" if where == "first" else "requests")
    folder.mkdir(exist_ok=True)
    bad = folder / "PYSEC-2099-1.yaml"
    bad.write_text("id: PYSEC-2099-1\nmodified: [unclosed\n")
    root = project(tmp_path)
    (root / "r.txt").write_text("requests==2.19.0\n")
    code = cli.main(["audit", "--requirements", "r.txt", "--advisory-db", str(db)], App(cwd=root))
    assert code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: advisory {bad} is not valid YAML (line 3, column 1: did not find expected ',' "
        "or ']'); fix or remove the file"
    ]


def test_the_audit_runs_the_bundles_uv_not_an_older_one_a_venv_puts_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project depending on an old uv gets it first on PATH in its venv: it is skipped."""
    venv = tmp_path / "project-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    old_uv = venv / "bin" / "uv"
    old_uv.write_text(
        "#!/bin/sh\necho \"error: unexpected argument '--no-emit-local' found\" >&2\nexit 2\n"
    )
    old_uv.chmod(0o755)
    monkeypatch.setenv("PATH", f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("UV", raising=False)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1.0"\nrequires-python = ">=3.11"\ndependencies = []\n'
    )
    subprocess.run(
        [bundle_uv.find(os.environ), "lock", "--offline", "--quiet"], cwd=project, check=True
    )
    options = audit.options_for(
        Config(root=project, path=None),
        dict(os.environ),
        dt.date(2026, 1, 1),
        cwd=project,
        advisory_db=str(FIXTURES),
    )
    report = audit.audit(options, ProcessRunner(), UrllibClient())  # old uv: exit 6 here
    assert report.source == "uv.lock"
    assert options.uv != str(old_uv)
