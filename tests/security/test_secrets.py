"""Secret scanning over real git repositories: tree, PR range and history."""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ci.cli import main as cli
from ci.cli.app import App
from ci.core.errors import ToolError, UsageError
from ci.core.runner import ProcessRunner
from ci.security import secrets
from ci.testing.fakes import FakeRunner

# planted values are assembled at runtime so the project's own tree scan stays clean
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" + "kLmNoPqRsTuVwXyZ"
AWS_KEY = "AKIA" + "Z7QW3RT5YU8IO1PA"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def run(app_cwd: Path, *argv: str) -> int:
    return cli.main(list(argv), App(cwd=app_cwd))


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def leaky(make_repo: Callable[..., Path]) -> tuple[Path, str]:
    """A repo with a token in a tracked file and an AWS key added then deleted."""
    repo = make_repo({"app.py": "print('hello')\n"})
    (repo / "settings.py").write_text(f'GITHUB = "{GITHUB_TOKEN}"\n')
    commit(repo, "settings")
    (repo / "deploy.cfg").write_text(f"[aws]\naws_access_key_id = {AWS_KEY}\n")
    introduced = commit(repo, "deploy config")
    (repo / "deploy.cfg").unlink()
    commit(repo, "remove deploy config")
    return repo, introduced


def test_tree_scan_names_the_file_and_never_the_value(
    leaky: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = leaky
    assert run(repo, "secrets") == 1
    out = capsys.readouterr()
    assert "settings.py:1: GitHub Token" in out.out
    assert "deploy.cfg" not in out.out  # deleted: only history finds it
    assert GITHUB_TOKEN not in out.out + out.err


def test_history_finds_the_deleted_key_and_its_commit(
    leaky: tuple[Path, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo, introduced = leaky
    report = tmp_path / "history.json"
    assert run(repo, "secrets", "--history", "--format", "json", "--output", str(report)) == 1
    data = json.loads(report.read_text())
    assert data["schema"] == 1
    aws = [f for f in data["findings"] if f["type"] == "AWS Access Key"]
    assert aws == [
        {
            "file": "deploy.cfg",
            "line": 2,
            "type": "AWS Access Key",
            "commit": introduced,
            "hashed_secret": aws[0]["hashed_secret"],
            "known": False,
            "waived": False,
        }
    ]
    text = report.read_text() + capsys.readouterr().out
    assert AWS_KEY not in text
    assert GITHUB_TOKEN not in text


def test_range_scan_sees_only_the_pull_request(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"old.py": f'TOKEN = "{GITHUB_TOKEN}"\n'})
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "clean.py").write_text("x = 1\n")
    commit(repo, "clean")
    assert run(repo, "secrets", "--since", "main") == 0
    assert "0 secret(s) found in 1 commit(s) in main..HEAD" in capsys.readouterr().out
    (repo / "new.txt").write_text(f"first line\naws_access_key_id = {AWS_KEY}\n")
    sha = commit(repo, "leak")
    assert run(repo, "secrets", "--since", "main") == 1
    out = capsys.readouterr().out
    assert f"new.txt:2 (commit {sha[:12]}): AWS Access Key" in out
    assert "old.py" not in out


def test_baseline_entries_do_not_fail_unless_audited_as_real(
    leaky: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = leaky
    found = secrets.scan(secrets.ScanOptions(repo=repo), ProcessRunner())
    entries = [
        {
            "type": f.type,
            "hashed_secret": f.hashed_secret,
            "line_number": f.line,
            "is_secret": False,
        }
        for f in found.findings
    ]
    baseline = {"version": "1.5.0", "results": {"settings.py": entries}}
    (repo / ".secrets.baseline").write_text(json.dumps(baseline))
    assert run(repo, "secrets") == 0
    assert "in the baseline" in capsys.readouterr().out
    entries[0]["is_secret"] = True
    (repo / ".secrets.baseline").write_text(json.dumps(baseline))
    assert run(repo, "secrets") == 1


def test_unreadable_baseline_not_a_repo_and_bad_rev_are_usage_errors(
    leaky: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = leaky
    (repo / "broken.json").write_text("{not json")
    assert run(repo, "secrets", "--baseline", "broken.json") == 2
    assert "cannot read the secrets baseline" in capsys.readouterr().err
    assert run(repo, "secrets", "--baseline", "missing.json") == 2
    plain = tmp_path / "plain"
    plain.mkdir()
    assert run(plain, "secrets") == 2
    assert "is not a git repository" in capsys.readouterr().err
    assert run(repo, "secrets", "--since", "no-such-branch") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "is not a commit" in err


def test_waivers_by_hash_and_expired_waivers(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"creds.txt": f"aws_access_key_id = {AWS_KEY}\n"})
    found = secrets.scan(secrets.ScanOptions(repo=repo), ProcessRunner())
    hashes = sorted({f.hashed_secret for f in found.findings})
    waivers = "".join(
        f'[[tool.ci.waivers]]\nid = "{h}"\nreason = "test fixture"\nexpires = 2099-01-01\n'
        for h in hashes
    )
    (repo / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n{waivers}")
    assert run(repo, "secrets") == 0
    assert "waived" in capsys.readouterr().out
    (repo / "pyproject.toml").write_text(
        f"[project]\nname = 'x'\n\n{waivers.replace('2099-01-01', '2001-02-03')}"
    )
    assert run(repo, "secrets") == 1
    out = capsys.readouterr().out
    assert f"waiver {hashes[0]} expired on 2001-02-03" in out


def test_sarif_and_markdown_reports(
    leaky: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = leaky
    out = tmp_path / "s.sarif"
    assert run(repo, "secrets", "--history", "--format", "sarif", "--output", str(out)) == 1
    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0"
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert uris == {"settings.py", "deploy.cfg"}
    assert run(repo, "secrets", "--format", "markdown") == 1
    assert "| `settings.py` | 1 | GitHub Token |" in capsys.readouterr().out


def test_gate_writes_its_record_and_reports(
    leaky: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = leaky
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert run(repo, "gate", "secrets") == 1
    record = json.loads((repo / "reports" / "secrets.json").read_text())
    assert record["status"] == "failed"
    assert record["findings"][0]["file"] == "settings.py"
    assert (repo / "reports" / "secrets.sarif").is_file()
    assert run(repo, "gate", "secrets", "--history") == 1
    files = {
        f["file"] for f in json.loads((repo / "reports" / "secrets.json").read_text())["findings"]
    }
    assert "deploy.cfg" in files
    assert run(repo, "gate", "secrets", "--bogus") == 2
    assert GITHUB_TOKEN not in capsys.readouterr().out


def test_clean_repo_passes(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.py": "def f() -> int:\n    return 1\n"})
    assert run(repo, "secrets") == 0
    assert run(repo, "secrets", "--history") == 0


def test_added_lines_follows_hunk_counts() -> None:
    log = [
        "\0" + "a" * 40 + "\n",
        "diff --git a/x.py b/x.py\n",
        "--- a/x.py\n",
        "+++ b/x.py\n",
        "@@ -1,2 +1,3 @@\n",
        "-old\n",
        "-old2\n",
        "++++ not a header\n",
        "+two\n",
        "+three\n",
        "@@ -10 +11,0 @@\n",
        "-gone\n",
        "diff --git a/gone.txt b/gone.txt\n",
        "--- a/gone.txt\n",
        "+++ /dev/null\n",
        "@@ -1 +0,0 @@\n",
        "-bye\n",
        "\0" + "b" * 40 + "\n",
        'diff --git "a/sp ace\\303\\251.txt" "b/sp ace\\303\\251.txt"\n',
        '+++ "b/sp ace\\303\\251.txt"\n',
        "@@ -0,0 +5 @@\n",
        "+hello\n",
    ]
    items = list(secrets.added_lines(log))
    assert [(i.commit[:1], i.file, i.lines) for i in items] == [
        ("a", "", ()),
        ("a", "x.py", ((1, "+++ not a header"), (2, "two"), (3, "three"))),
        ("b", "", ()),
        ("b", "sp aceé.txt", ((5, "hello"),)),
    ]


def test_prefilter_keeps_every_line_detect_secrets_flags() -> None:
    """On a mixed corpus the prefiltered scan finds exactly what the plain line loop finds."""
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.settings import default_settings, get_plugins

    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "+/="
    planted = [
        f'token = "{GITHUB_TOKEN}"',
        f"key: {AWS_KEY}",
        "PASS" + 'WORD = "hunter2hunter2"',
        "db_" + "pass: s3cr3t-value",
        "-----BEGIN RSA " + "PRIVATE KEY-----",
        "url = 'https://user:" + "pa55word@example.com/x'",
        "ip = 8.8.8.8",
        'blob = "' + "".join(rng.choice(alphabet) for _ in range(40)) + '"',
        "hex = '" + "".join(rng.choice("0123456789abcdef") for _ in range(40)) + "'",
        "xoxb-" + "1234567890-abcdefghij",
        "contra" + "seña = 'abcdefgh1234'",
    ]
    ordinary = [f"def handler_{i}(value: int) -> int:  # step {i}" for i in range(200)]
    corpus = ordinary + planted
    rng.shuffle(corpus)
    with default_settings():
        prefilter = secrets.Prefilter(get_plugins())
        for name in ("config.py", "settings.yaml", "app.js"):
            plain = {
                (s.type, s.secret_hash, s.line_number)
                for s in _process_line_based_plugins(list(enumerate(corpus, 1)), name)
            }
            candidates = prefilter.candidates(corpus)
            fast = {
                (s.type, s.secret_hash, s.line_number)
                for s in secrets.scan_lines(corpus, secrets.every_plugin(candidates), name)
            }
            assert plain
            assert fast == plain
            assert len(candidates) < len(corpus) // 2


def test_runner_lines_streams_and_reports_failures(tmp_path: Path) -> None:
    runner = ProcessRunner()
    assert list(runner.lines(["printf", "a\\nb\\n"])) == ["a\n", "b\n"]
    with pytest.raises(ToolError, match="exit status"):
        list(runner.lines(["git", "-C", str(tmp_path), "log"]))
    with pytest.raises(ToolError, match="not found"):
        list(runner.lines(["no-such-tool-xyz"]))
    stream = runner.lines(["yes"])  # stopping early ends the writer without an error
    assert next(stream) == "y\n"
    stream.close()


def test_fake_runner_lines_follow_the_script() -> None:
    fake = FakeRunner(script={("git", "log"): (0, "one\ntwo\n", ""), ("git",): (2, "", "bad")})
    assert list(fake.lines(["git", "log"])) == ["one\n", "two\n"]
    with pytest.raises(ToolError):
        list(fake.lines(["git", "status"]))


def test_range_scan_needs_a_rev(leaky: tuple[Path, str]) -> None:
    repo, _ = leaky
    with pytest.raises(UsageError, match="--since"):
        secrets.scan(secrets.ScanOptions(repo=repo, mode=secrets.Mode.RANGE), ProcessRunner())


def test_prefix_only_captures_get_distinct_hashes(make_repo: Callable[..., Path]) -> None:
    """detect-secrets hashes only ``ghp`` for GitHub tokens; one waiver must not cover them all."""
    other = "ghp_" + "Q" * 20 + "r" * 16
    repo = make_repo({"a.py": f'T = "{GITHUB_TOKEN}"\n', "b.py": f'T = "{other}"\n'})
    report = secrets.scan(secrets.ScanOptions(repo=repo), ProcessRunner())
    github = {f.file: f.hashed_secret for f in report.findings if f.type == "GitHub Token"}
    assert set(github) == {"a.py", "b.py"}
    assert github["a.py"] != github["b.py"]
    history = secrets.scan(
        secrets.ScanOptions(repo=repo, mode=secrets.Mode.HISTORY), ProcessRunner()
    )
    assert {f.hashed_secret for f in history.findings if f.type == "GitHub Token"} == set(
        github.values()
    )
    assert secrets.secret_hash("AWS Access Key", AWS_KEY, "x") == secrets.secret_hash(
        "AWS Access Key", AWS_KEY, "y"
    )


class _Terminal:
    """A stderr stand-in that says it is a terminal and keeps what is written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_history_progress_on_a_terminal_only(
    leaky: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = leaky
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert cli.main(["secrets", "--history"], App(cwd=repo, env={})) == 1
    assert "\rscanning commits 4/4\n" in terminal.text
    quiet = _Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    assert cli.main(["secrets", "--history"], App(cwd=repo, env={"CI": "true"})) == 1
    assert "scanning commits" not in quiet.text


def test_combined_diff_counts_only_lines_new_against_every_parent() -> None:
    log = [
        "\0" + "m" * 40 + "\n",
        "diff --cc f.txt\n",
        "--- a/f.txt\n",
        "+++ b/f.txt\n",
        "@@@ -2,1 -2,1 +2,3 @@@\n",
        "- main\n",
        " -side\n",
        " +from side\n",
        "++resolved\n",
        "++third\n",
    ]
    items = [i for i in secrets.added_lines(log) if i.file]
    assert [(i.file, i.lines) for i in items] == [("f.txt", ((3, "resolved"), (4, "third")))]


def test_secret_added_while_resolving_a_merge(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"f.txt": "a\nb\n"})
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "f.txt").write_text("a\nside\n")
    commit(repo, "side")
    git(repo, "checkout", "-q", "main")
    (repo / "f.txt").write_text("a\nmain\n")
    commit(repo, "main")
    subprocess.run(["git", "merge", "-q", "side"], cwd=repo, capture_output=True, check=False)
    (repo / "f.txt").write_text(f"a\nresolved\naws_access_key_id = {AWS_KEY}\n")
    merge = commit(repo, "merge side")
    assert run(repo, "secrets", "--history") == 1
    out = capsys.readouterr().out
    assert f"f.txt:3 (commit {merge[:12]}): AWS Access Key" in out
    # a branch that merges main (without conflicts) is not blamed for main's secrets
    git(repo, "checkout", "-q", "-b", "feature", "HEAD~1")
    (repo / "g.txt").write_text("clean\n")
    commit(repo, "feature work")
    git(repo, "merge", "-q", "--no-edit", "main")
    assert run(repo, "secrets", "--since", "main") == 0


def test_history_keeps_reading_after_a_carriage_return(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"old.txt": "x\n"})
    (repo / "mixed.txt").write_bytes(b"one\rtwo\r\naws_access_key_id = " + AWS_KEY.encode() + b"\n")
    commit(repo, "mixed line endings")
    report = secrets.scan(
        secrets.ScanOptions(repo=repo, mode=secrets.Mode.HISTORY), ProcessRunner()
    )
    assert [(f.file, f.line, f.type) for f in report.findings] == [
        ("mixed.txt", 2, "AWS Access Key")
    ]


def test_a_baseline_made_by_detect_secrets_itself_is_honoured(
    make_repo: Callable[..., Path],
) -> None:
    """Its hashes (of short values too, where the gate hashes the line) mark findings known."""
    repo = make_repo(
        {
            "urls.py": 'INDEX = "https://u:' + 'secret@idx.example/simple/"\n',
            "keys.txt": f"aws_access_key_id = {AWS_KEY}\n",
        }
    )
    assert run(repo, "secrets") == 1
    made = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan"], cwd=repo, capture_output=True, check=True
    )
    (repo / ".secrets.baseline").write_bytes(made.stdout)
    assert run(repo, "secrets") == 0


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("latin1.cfg", b"# caf\xe9\naws_access_key_id = " + AWS_KEY.encode() + b"\n"),
        ("blob.dat", b"\x00\x01\xff\xfe" + AWS_KEY.encode() + b"\x00\x89PNG\r\n"),
    ],
    ids=["latin-1", "binary"],  # the default ids would print the key
)
def test_tree_scan_reads_files_that_are_not_utf8_as_the_range_scan_does(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str], name: str, content: bytes
) -> None:
    """detect-secrets alone skips a file with one byte that is not UTF-8, and says nothing."""
    repo = make_repo({"app.py": "print('hello')\n"})
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / name).write_bytes(content)
    commit(repo, "a file that is not UTF-8")
    assert run(repo, "secrets", "--format", "json") == 1
    tree = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["file"], f["type"]) for f in tree] == [(name, "AWS Access Key")]
    # git treats blob.dat as binary ("Binary files differ"): the range scan reads it as text
    assert run(repo, "secrets", "--since", base, "--format", "json") == 1
    pull = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["line"], f["hashed_secret"]) for f in pull] == [
        (tree[0]["line"], tree[0]["hashed_secret"])
    ]
    assert tree[0]["line"] == (2 if name == "latin1.cfg" else 1)


@pytest.mark.parametrize("mode", [secrets.Mode.RANGE, secrets.Mode.HISTORY])
@pytest.mark.parametrize("marked", [False, True], ids=["nul-byte", "gitattributes-binary"])
def test_history_scans_files_git_shows_as_binary(
    make_repo: Callable[..., Path], mode: secrets.Mode, marked: bool
) -> None:
    """``git log -p`` prints only "Binary files differ" for them: that was a silent pass."""
    repo = make_repo({"app.py": "print('hello')\n"})
    base = git(repo, "rev-parse", "HEAD").strip()
    if marked:  # text content, but the project tells git it is binary
        (repo / ".gitattributes").write_text("*.key binary\n")
    name = "deploy.key" if marked else "keys.txt"
    nul = b"" if marked else b"\x00\x00header\n"
    (repo / name).write_bytes(nul + b"id = 1\naws_access_key_id = " + AWS_KEY.encode() + b"\n")
    sha = commit(repo, "a file git shows as binary")
    diff = git(repo, "show", "--format=", sha, "--", name)
    assert "Binary files" in diff
    report = secrets.scan(
        secrets.ScanOptions(
            repo=repo, mode=mode, since=base if mode is secrets.Mode.RANGE else None
        ),
        ProcessRunner(),
    )
    assert [(f.file, f.line, f.type, f.commit) for f in report.findings] == [
        (name, 3 if not marked else 2, "AWS Access Key", sha)
    ]


def test_a_file_gone_or_unreadable_after_listing_is_an_error_not_a_pass(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """detect-secrets alone logs a warning for a file it cannot open and finds nothing in it."""
    repo = make_repo({"app.py": "print('hello')\n", "gone.cfg": f"key = {AWS_KEY}\n"})
    (repo / "gone.cfg").unlink()  # listed by git ls-files, gone when read
    with pytest.raises(ToolError) as caught:
        secrets.scan_files(repo, ["app.py", "gone.cfg", "app.py/not-a-folder"])
    message = str(caught.value)
    assert message.startswith("2 file(s) could not be read, so the scan cannot vouch for them:")
    assert "gone.cfg (No such file or directory)" in message
    assert "app.py/not-a-folder (Not a directory)" in message
    assert "\n" not in message
    assert capsys.readouterr().out == ""


# commit ids assembled at runtime, like the planted values above
ACTION_SHA = "b4ffde65f463" + "36ab88eb53be808477a3936bae11"
HOOK_SHA = "c4a0b883114b" + "00d8d76b479c820ce7950211c99b"
PINNED = {
    ".github/workflows/ci.yml": (
        f"jobs:\n  ci:\n    steps:\n      - uses: actions/checkout@{ACTION_SHA}  # v4.1.1\n"
    ),
    ".pre-commit-config.yaml": (
        f"repos:\n  - repo: https://github.com/astral-sh/ruff-pre-commit\n    rev: '{HOOK_SHA}'\n"
    ),
}


@pytest.mark.parametrize("mode", [secrets.Mode.TREE, secrets.Mode.HISTORY])
def test_pinned_commit_ids_are_not_secrets_unless_asked(
    make_repo: Callable[..., Path], mode: secrets.Mode
) -> None:
    repo = make_repo(PINNED)
    asked = secrets.ScanOptions(repo=repo, mode=mode, ignore_pinned_commits=False)
    flagged = secrets.scan(asked, ProcessRunner()).failing
    # detect-secrets 1.5 flags the hook's rev (a hex string); an action's owner/repo@SHA is
    # not a hex string to it, so the workflow is clean either way
    assert {f.file for f in flagged} == {".pre-commit-config.yaml"}
    assert all(f.pinned for f in flagged)
    default = secrets.scan(secrets.ScanOptions(repo=repo, mode=mode), ProcessRunner())
    assert default.failing == [] and bool(default)


def test_only_the_pinned_commit_id_itself_is_dropped() -> None:
    assert secrets.pinned_commit(ACTION_SHA, f"- uses: actions/checkout@{ACTION_SHA}\n")
    assert secrets.pinned_commit(HOOK_SHA, f"    rev: {HOOK_SHA}  # frozen: v0.6.0\n")
    assert not secrets.pinned_commit(ACTION_SHA, f'token = "{ACTION_SHA}"\n')
    assert not secrets.pinned_commit(ACTION_SHA, f"- uses: a/b@{HOOK_SHA}  # {ACTION_SHA}\n")


def test_the_gate_reads_ignore_pinned_commits_from_its_table(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(PINNED)
    assert run(repo, "secrets") == 0
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1"\n\n'
        "[tool.ci.gates.secrets]\nignore_pinned_commits = false\n",
        encoding="utf-8",
    )
    assert run(repo, "gate", "secrets") == 1
    assert ACTION_SHA not in capsys.readouterr().out
