"""The local OSV mirror: real PyPA records, PEP 440 ranges, and the HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from packaging.version import Version

from ci.core.errors import ConfigError, ExitCode, UsageError
from ci.security import advisories

FIXTURES = Path(__file__).parents[1] / "fixtures" / "advisories"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def db() -> advisories.AdvisoryDB:
    return advisories.AdvisoryDB(FIXTURES)


def ids(records: list[advisories.Record]) -> list[str]:
    return [r["id"] for r in records]


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("requests", "2.2.1", ["PYSEC-2014-13", "PYSEC-2018-28"]),
        ("requests", "2.19.0", ["PYSEC-2018-28", "PYSEC-2023-74"]),
        ("Requests", "2.31.0", []),
        ("jinja2", "2.10", ["PYSEC-2019-217", "PYSEC-2021-66"]),  # YAML and JSON records
        ("Jinja2", "2.11.3", []),
        ("urllib3", "1.24.1", ["PYSEC-2023-192", "PYSEC-2023-207"]),
        ("py", "1.11.0", ["PYSEC-2022-42969"]),  # last_affected is inclusive
        ("py", "1.11.1", []),
        ("redis", "4.5.0", []),  # withdrawn
        ("not-there", "1.0", []),
    ],
)
def test_query_matches_real_records(
    db: advisories.AdvisoryDB, name: str, version: str, expected: list[str]
) -> None:
    assert ids(db.query(name, version)) == expected


def test_in_range_events() -> None:
    events = [
        {"introduced": "1.0"},
        {"fixed": "1.5"},
        {"introduced": "2.0"},
        {"last_affected": "2.2"},
    ]
    inside = ["1.0", "1.4.9", "2.0", "2.2"]
    outside = ["0.9", "1.5", "1.9", "2.2.1", "3.0"]
    assert all(advisories.in_range(events, Version(v)) for v in inside)
    assert not any(advisories.in_range(events, Version(v)) for v in outside)
    assert advisories.in_range([{"introduced": "0"}], Version("0.0.1"))
    # PEP 440 ordering, not string ordering: 1.10 is after 1.9
    assert not advisories.in_range([{"introduced": "0"}, {"fixed": "1.10"}], Version("1.10.0"))
    assert advisories.in_range([{"introduced": "0"}, {"fixed": "1.10"}], Version("1.9"))
    assert advisories.in_range([{"introduced": "0"}, {"fixed": "2.0"}], Version("2.0rc1"))


def test_versions_list_matches_even_without_ranges() -> None:
    record = {
        "id": "X-1",
        "affected": [{"package": {"name": "Some_Pkg", "ecosystem": "PyPI"}, "versions": ["1.0"]}],
    }
    assert advisories.affects(record, "some-pkg", "1.0")
    assert advisories.affects(record, "some.pkg", "1.0.0")  # PEP 440 equal
    assert not advisories.affects(record, "some-pkg", "1.1")
    assert not advisories.affects(
        {**record, "withdrawn": "2024-01-01T00:00:00Z"}, "some-pkg", "1.0"
    )
    npm = {
        "id": "X-2",
        "affected": [{"package": {"name": "some-pkg", "ecosystem": "npm"}, "versions": ["1.0"]}],
    }
    assert not advisories.affects(npm, "some-pkg", "1.0")


def test_get_by_id_keeps_dates_as_text(db: advisories.AdvisoryDB) -> None:
    record = db.get("PYSEC-2018-28")
    assert record is not None
    assert record["published"] == "2018-10-09T17:29:00Z"
    assert db.get("CVE-0000-0000") is None
    assert len(db) == 9


def test_bad_folder_and_bad_record(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        advisories.AdvisoryDB(tmp_path / "missing")
    shutil.copytree(FIXTURES / "py", tmp_path / "a-first")  # one good record, read to check
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "BAD-1.yaml").write_text("id: [unclosed\n")
    broken = advisories.AdvisoryDB(tmp_path)
    # the database is the user's input, as a waiver is: a damaged record is exit 2, named
    with pytest.raises(ConfigError, match=r"BAD-1\.yaml is not valid YAML \(line 2, column 1"):
        broken.query("pkg", "1.0")
    assert broken.problem is not None
    assert broken.problem.exit_code is ExitCode.USAGE
    for text, reason in [("- just a list\n", "no id"), ("id: X-1\n", "no modified")]:
        (tmp_path / "pkg" / "BAD-1.yaml").write_text(text)
        with pytest.raises(ConfigError, match=f"not an OSV record \\({reason}\\)"):
            advisories.AdvisoryDB(tmp_path).query("pkg", "1.0")


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("A-1.yaml", "id: [unclosed\nmodified: x\n", "not valid YAML (line 2, column 9: did not"),
        ("A-1.yml", "id: A-1\n\tmodified: x\n", "not valid YAML (line 2, column 1: found"),
        ("A-1.json", '{"id": "A-1",', "not valid JSON (Expecting property name"),
        ("A-1.yaml", b"id: \xff\n", "cannot be read ('utf-8' codec can't decode"),
    ],
)
def test_a_damaged_first_record_is_named_with_what_is_wrong(
    tmp_path: Path, name: str, text: str | bytes, problem: str
) -> None:
    """It said the folder "holds no OSV records", which sent the user to the wrong folder."""
    shutil.copytree(FIXTURES, tmp_path / "db")
    first = tmp_path / "db" / "a-first" / name  # read first: it decides the folder is right
    first.parent.mkdir()
    first.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as caught:
        advisories.AdvisoryDB(tmp_path / "db")
    message = str(caught.value)
    assert message.startswith(f"advisory {first} ")
    assert problem in message
    assert message.endswith("; fix or remove the file")
    assert "holds no OSV records" not in message
    assert "\n" not in message


def test_a_folder_without_records_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Served, a folder without OSV records would answer "no vulnerabilities" to every pin."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"empty holds no OSV records; .*e\.g\. \.\.\./vulns$"):
        advisories.AdvisoryDB(tmp_path / "empty")
    checkout = tmp_path / "checkout"  # the database's checkout root: records two levels down
    shutil.copytree(FIXTURES, checkout / "vulns")
    with pytest.raises(UsageError, match=f"e\\.g\\. {checkout / 'vulns'}$"):
        advisories.AdvisoryDB(checkout)
    assert len(advisories.AdvisoryDB(checkout / "vulns")) == 9
    project = tmp_path / "project"  # a project's root: YAML files, none of them a record
    (project / ".github").mkdir(parents=True)
    (project / ".github" / "dependabot.yml").write_text("version: 2\n")
    (project / "notes.json").write_text('{"id": "not-a-record"}\n')
    with pytest.raises(UsageError, match=r"holds no OSV records \(.*notes\.json is not one\)"):
        advisories.AdvisoryDB(project)


def test_flat_layout_serves_loose_records(tmp_path: Path) -> None:
    for path in FIXTURES.glob("*/*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    flat = advisories.AdvisoryDB(tmp_path)
    assert ids(flat.query("requests", "2.19.0")) == ["PYSEC-2018-28", "PYSEC-2023-74"]


def post(url: str, body: object) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_server_speaks_the_osv_api(db: advisories.AdvisoryDB) -> None:
    query = {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.19.0"}
    with advisories.serving(db) as url:
        found = post(f"{url}/v1/query", query)
        assert ids(found["vulns"]) == ["PYSEC-2018-28", "PYSEC-2023-74"]  # type: ignore[arg-type]
        assert post(f"{url}/v1/query", {**query, "version": "2.32.0"}) == {}
        batch = post(f"{url}/v1/querybatch", {"queries": [query, {**query, "version": "9.0"}]})
        results = batch["results"]
        assert [v["id"] for v in results[0]["vulns"]] == ["PYSEC-2018-28", "PYSEC-2023-74"]  # type: ignore[index]
        assert results[1] == {}  # type: ignore[index]
        with urllib.request.urlopen(f"{url}/v1/vulns/PYSEC-2014-13", timeout=10) as response:
            assert json.loads(response.read())["id"] == "PYSEC-2014-13"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/v1/vulns/NOPE-1", timeout=10)
        assert missing.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as bad:
            post(f"{url}/v1/query", {"package": {"name": "requests"}})
        assert bad.value.code == 400
    with pytest.raises(urllib.error.URLError):  # stopped afterwards
        post(f"{url}/v1/query", query)


def test_busy_port_is_a_usage_error(db: advisories.AdvisoryDB) -> None:
    with advisories.serving(db) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(UsageError, match="pick another --port"):
            advisories.make_server(db, port)


def test_serve_command_runs_alone() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ci", "advisories", "serve", "--db", str(FIXTURES), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("serving 9 advisories")
        url = first.split(" at ")[1].strip()
        found = post(url, {"package": {"name": "py", "ecosystem": "PyPI"}, "version": "1.10.0"})
        assert ids(found["vulns"]) == ["PYSEC-2022-42969"]  # type: ignore[arg-type]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
