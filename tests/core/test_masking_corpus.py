"""No planted secret value, in any encoding, appears in anything the security commands wrote."""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from ci.cli import main as cli
from ci.cli.app import App
from ci.gates import test as testgate
from ci.testing.fakes import FakeRunner

FIXTURES = Path(__file__).parents[1] / "fixtures" / "advisories"
AWS_KEY = "AKIA" + "Q2W3E4R5T6Y7U8I9"

# env values the bundle must mask; each is also planted where a report will echo it
PLANTED = dict(  # noqa: C406 - pairs, so no "NAME: value" line reads as a secret
    [
        ("RELEASE_TOKEN", "tok" + "en-Value-9f8e7d6c5b4a"),  # plain and base64
        ("DB_PASSWORD", 'pa"ss' + "\\word-123"),  # JSON-escaped
        ("DEPLOY_KEY", "a b/c?d" + "=e&f"),  # URL-encoded
        ("CERT_SECRET", "line-one-" + "secret\nline-two-secret"),  # multi-line
        ("GEHEIM_TOKEN", "g\u00e9heim-" + '"quoted"-\\back\\-9f8e'),  # non-ASCII, " and \\
        ("MARKUP_PASSWORD", "p<a>&\"s's-" + "w0rd/42"),  # HTML- and XML-escaped
        ("PADDED_SECRET", "  padded-" + "s3cret-value  "),  # printed stripped
    ]
)


def base64_forms(value: bytes) -> set[str]:
    """Characters of the base64 of ``pad + value`` that depend only on ``value``, per alignment."""
    forms = set()
    for pad in (b"", b"\xff", b"\xff\xfe"):
        other = bytes(b ^ 0x55 for b in pad)
        one = base64.b64encode(pad + value + b"\x00\x00").decode()
        two = base64.b64encode(other + value + b"\x01\x01").decode()
        # positions whose character is the same whatever surrounds the value
        start = next(
            i for i in range(len(one)) if one[i:] and one[i] == two[i] and i * 6 >= len(pad) * 8
        )
        end = (len(pad) + len(value)) * 8 // 6
        if end - start >= 4:
            forms.add(one[start:end])
    return forms


def lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def every_form(value: str) -> set[str]:
    forms: set[str] = set()
    for part in {value, value.strip(), *value.splitlines()}:
        quoted = {
            urllib.parse.quote(part, safe=""),
            urllib.parse.quote(part),  # "/" kept
            urllib.parse.quote_plus(part),
            urllib.parse.quote_plus(part, safe="/"),
        }
        texts = {
            part,
            json.dumps(part)[1:-1],
            json.dumps(part, ensure_ascii=False)[1:-1],
            repr(part)[1:-1],  # how pytest shows a value that failed an assertion
        }
        for text in texts:  # as is, or escaped again into HTML or XML
            escaped = html.escape(text)
            forms |= {
                text,
                escaped,
                html.escape(text, quote=False),
                escaped.replace("&#x27;", "'"),  # ElementTree's attribute escaping
                escaped.replace("&#x27;", "&#39;"),
            }
        forms |= {*quoted, *map(lower_escapes, quoted)}
        forms |= {part.encode().hex(), part.encode().hex().upper()}
        forms |= base64_forms(part.encode())
    return {f for f in forms if len(f) >= 4}


def flat(text: str) -> str:
    """``text`` with its line breaks taken out: raw, JSON-escaped and XML references."""
    return re.sub(r"(?:\r?\n|\\n|&#10;)(?:E? +)?", "", text)  # and an indent, pytest's "E  "


def leaks_in(texts: dict[str, str]) -> list[tuple[str, str, str]]:
    """(where, name, form) of every planted form in ``texts``, also split over lines."""
    return [
        (where, name, form)
        for name, value in PLANTED.items()
        for form in every_form(value)
        for where, text in texts.items()
        if form in text or form in flat(text)
    ]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_no_planted_value_in_any_written_file_or_output(
    make_repo: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert callable(make_repo)
    repo = make_repo({"pyproject.toml": "[project]\nname = 'demo'\nversion = '1.0'\n"})
    token = PLANTED["RELEASE_TOKEN"]
    names = [
        f"{token}.cfg",
        *(f"{form}.cfg" for form in base64_forms(token.encode())),
        f"{PLANTED['DB_PASSWORD']}.cfg",
        f"{urllib.parse.quote(PLANTED['DEPLOY_KEY'], safe='')}.cfg",
        "line-two-secret.cfg",
        f"{urllib.parse.quote(PLANTED['DEPLOY_KEY'])}.cfg",  # keeps "/": a folder and a file
        f"{lower_escapes(urllib.parse.quote(PLANTED['DEPLOY_KEY'], safe=''))}.cfg",
        f"{token.encode().hex()}.cfg",
        f"{token.encode().hex().upper()}.cfg",
        f"{html.escape(PLANTED['MARKUP_PASSWORD'])}.cfg",
        f"{PLANTED['GEHEIM_TOKEN']}.cfg",
        f"{PLANTED['PADDED_SECRET'].strip()}.cfg",
    ]
    for name in names:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(f"aws_access_key_id = {AWS_KEY}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "planted")
    pins = repo / token / "r.txt"
    pins.parent.mkdir()
    pins.write_text("requests==2.19.0\n")

    out = tmp_path / "out"
    env = dict(PLANTED)
    runs = []
    for fmt in ("text", "json", "sarif", "markdown"):
        for mode in ([], ["--history"]):
            target = out / f"secrets-{fmt}-{len(mode)}.txt"
            runs.append(["secrets", *mode, "--format", fmt, "--output", str(target)])
        runs.append(["secrets", "--history", "--format", fmt])
    audit_runs = []
    for fmt in ("text", "json", "markdown", "cyclonedx", "sarif"):
        target = out / f"audit-{fmt}.txt"
        audit_runs.append(
            [
                "audit",
                "--requirements",
                str(pins),
                "--advisory-db",
                str(FIXTURES),
                "--format",
                fmt,
                "--output",
                str(target),
            ]
        )
    runs.append(["gate", "secrets", "--history"])
    codes = [cli.main(argv, App(cwd=repo, env=env)) for argv in [*runs, audit_runs[1]]]
    # pip-audit really runs once (above); the other formats render the same answer, replayed
    answer = {
        "dependencies": [
            {
                "name": "requests",
                "version": "2.19.0",
                "vulns": [
                    {
                        "id": "PYSEC-2018-28",
                        "fix_versions": ["2.20.0"],
                        "aliases": ["CVE-2018-18074"],
                    }
                ],
            }
        ]
    }
    replay = FakeRunner(script={(sys.executable, "-m", "pip_audit"): (1, json.dumps(answer), "")})
    for argv in [*audit_runs[:1], *audit_runs[2:]]:
        codes.append(cli.main(argv, App(cwd=repo, env=env, runner=replay)))
    codes.append(cli.main(audit_runs[0][:5], App(cwd=repo, env=env, runner=replay)))
    assert set(codes) == {1}, codes  # every run found something, so every report names files
    captured = capsys.readouterr()

    written = sorted(p for p in [*out.rglob("*"), *(repo / "reports").rglob("*")] if p.is_file())
    assert len(written) >= 8 + 5 + 3  # our reports, plus whatever the gate recorder adds
    texts = {str(p): p.read_text(encoding="utf-8") for p in written}
    texts["stdout"], texts["stderr"] = captured.out, captured.err
    assert "***.cfg" in texts[str(out / "secrets-json-0.txt")]  # the reports did name them
    assert leaks_in(texts) == []
    assert AWS_KEY not in "".join(texts.values())


def test_github_masks_come_first_line_by_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    env = {**PLANTED, "GITHUB_ACTIONS": "true"}
    (tmp_path / "r.txt").write_text("requests==2.32.3\n")
    code = cli.main(
        ["audit", "--requirements", "r.txt", "--advisory-db", str(FIXTURES)],
        App(cwd=tmp_path, env=env),
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    masks = [line for line in lines if line.startswith("::add-mask::")]
    assert lines[: len(masks)] == masks
    assert "::add-mask::line-two-secret" in masks
    assert "::add-mask::line-one-secret" in masks
    assert f"::add-mask::{PLANTED['RELEASE_TOKEN']}" in masks


LEAKY_TEST = """
import base64, html, json, urllib.parse
from pathlib import Path

VALUES = json.loads(Path(__file__).with_name("values.json").read_text(encoding="utf-8"))


def test_leaks():
    for value in VALUES:
        print(base64.encodebytes(b"x" * 50 + value.encode()).decode())  # MIME: 76 columns
        print(value[:7] + "\\n" + value[7:])
    message = "; ".join(
        f"{v.encode().hex()} {urllib.parse.quote(v)} {html.escape(v)} {v.strip()} {v[:6]}\\n{v[6:]}"
        for v in VALUES
    )
    assert VALUES == [], message
"""


def test_no_planted_value_in_what_the_test_gate_and_pytest_wrote(
    make_repo: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failing test's message lands in pytest's junit XML, which CI uploads."""
    assert callable(make_repo)
    repo = make_repo(
        {
            "pyproject.toml": (
                '[project]\nname = "demo"\nversion = "1.0"\n\n[tool.ci]\npackages = ["demo"]\n'
                "\n[tool.ci.gates.test]\ncoverage_min = 0\n"
            ),
            "demo/__init__.py": "VALUE = 1\n",
            "tests/test_leaky.py": LEAKY_TEST,
            "tests/values.json": json.dumps(list(PLANTED.values())),
        }
    )
    assert cli.main(["gate", "test", "-p", "no:cacheprovider"], App(cwd=repo, env=PLANTED)) == 1
    captured = capsys.readouterr()
    written = sorted(p for p in (repo / "reports").rglob("*") if p.is_file())
    assert {p.name for p in written} >= {p.name for p in (repo / "reports").glob("junit-*.xml")}
    junit = next((repo / "reports").glob("junit-*.xml"))
    assert "test_leaks" in junit.read_text(encoding="utf-8")  # the failure is in it, masked
    texts = {str(p): p.read_text(encoding="utf-8") for p in written}
    texts["stdout"], texts["stderr"] = captured.out, captured.err
    assert "***" in texts[str(junit)]
    assert leaks_in(texts) == []


PARAM_TEST = """
import os

import pytest

TOKEN = os.environ["PARAM_TOKEN"]


@pytest.mark.parametrize("value", [TOKEN, "x-" + TOKEN])
def test_param(value):
    assert value.endswith("-9f8e")


@pytest.mark.parametrize("value", [TOKEN])
def test_param_fails(value):
    assert not value
"""


def test_no_secret_from_a_parametrized_test_id_in_anything_the_test_gate_wrote(
    make_repo: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pytest's test id escapes a value (``\\xf6``); that form is masked wherever ids land."""
    assert callable(make_repo)
    secret = "Ab\u00f6-param-" + "\u20acsecret\x1b-\U0001f600-9f8e"  # pragma: allowlist secret
    escaped = secret.encode("unicode_escape").decode("ascii")  # pytest's id of the value
    repo = make_repo(
        {
            "pyproject.toml": (
                '[project]\nname = "demo"\nversion = "1.0"\n\n[tool.ci]\npackages = ["demo"]\n'
                '\n[tool.ci.gates.test]\ncoverage_min = 0\nenv = ["PARAM_TOKEN"]\n'
            ),
            "demo/__init__.py": "VALUE = 1\n",
            "tests/test_param.py": PARAM_TEST,
        }
    )
    state = tmp_path / "state"
    env = {"PARAM_TOKEN": secret, "CI_STATE_DIR": str(state)}
    argv = ["gate", "test", "-p", "no:cacheprovider", "-rA"]
    assert cli.main(argv, App(cwd=repo, env=env)) == 1
    captured = capsys.readouterr()
    scratch = testgate.scratch_dir(repo, App(cwd=repo, env=env).gate_context().python)
    written = sorted(
        p for folder in (repo / "reports", state, scratch) for p in folder.rglob("*") if p.is_file()
    )
    texts = {str(p): p.read_text(encoding="utf-8", errors="replace") for p in written}
    texts["stdout"], texts["stderr"] = captured.out, captured.err
    junit = next((repo / "reports").glob("junit-*.xml"))
    assert "test_param_fails[***]" in texts[str(junit)]  # the ids were there, masked
    assert "test_param_fails[***]" in texts["stdout"]
    assert "test_param_fails[***]" in texts[str(next((repo / "reports").rglob("test-*.json")))]
    history = [p for p in written if p.is_relative_to(state) and "test_param" in texts[str(p)]]
    assert history  # the gate log (run history) names the failed test, masked
    durations = json.loads((state / "test-durations.json").read_text(encoding="utf-8"))
    assert "tests/test_param.py::test_param[x-***]" in durations["durations"]
    forms = {escaped, json.dumps(escaped)[1:-1], *every_form(secret)}
    for part in ("Ab\\xf6-param-", "\\u20acsecret\\x1b-", "-\\U0001f600-9f8e"):
        forms |= {part, json.dumps(part)[1:-1]}  # no piece of it either
    leaks = [(where, f) for f in forms for where, text in texts.items() if f in text]
    assert leaks == []
