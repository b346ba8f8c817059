from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core import redact
from ci.core.errors import CIError, ExitCode
from ci.deploy.ledger import GENESIS, Ledger, LedgerCorruptError, canonical, digest, verify_lines


def fill(ledger: Ledger, count: int) -> list[str]:
    hashes = []
    for index in range(count):
        entry = ledger.append(
            time=f"2026-01-01T00:00:{index:02d}Z",
            actor="alice",
            action="deploy",
            env="staging",
            version=f"1.0.{index}",
            outcome="succeeded",
            details={"from": None},
        )
        hashes.append(entry.hash)
    return hashes


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "state" / "ledger.jsonl")


def test_entries_are_chained_and_hashed_over_canonical_json(ledger: Ledger) -> None:
    hashes = fill(ledger, 3)
    entries = ledger.verify()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev == GENESIS
    assert entries[1].prev == hashes[0]
    assert entries[2].prev == hashes[1]
    line = ledger.path.read_text(encoding="utf-8").splitlines()[1]
    data = json.loads(line)
    own = data.pop("hash")
    assert digest(data) == own
    assert canonical(json.loads(line)) == line


def test_an_edited_byte_is_caught_and_named(ledger: Ledger) -> None:
    fill(ledger, 5)
    text = ledger.path.read_text(encoding="utf-8")
    lines = text.splitlines()
    lines[2] = lines[2].replace("1.0.2", "1.0.9")
    ledger.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(LedgerCorruptError) as caught:
        ledger.verify()
    assert caught.value.line == 3
    assert "hash does not match" in caught.value.reason
    # a CIError like every other: exit 3, naming the file and the fix
    assert isinstance(caught.value, CIError)
    assert caught.value.exit_code == ExitCode.PREFLIGHT
    assert str(ledger.path) in str(caught.value)
    assert "ledger verify" in str(caught.value)


def test_a_deleted_line_is_caught(ledger: Ledger) -> None:
    fill(ledger, 5)
    lines = ledger.path.read_text(encoding="utf-8").splitlines()
    del lines[1]
    ledger.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(LedgerCorruptError) as caught:
        ledger.verify()
    assert caught.value.line == 2
    assert "prev" in caught.value.reason


def test_reordered_and_inserted_lines_are_caught(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 4)
    lines = ledger.path.read_text(encoding="utf-8").splitlines()
    with pytest.raises(LedgerCorruptError):
        verify_lines([lines[0], lines[2], lines[1], lines[3]])
    other = Ledger(tmp_path / "other.jsonl")
    fill(other, 2)
    foreign = other.path.read_text(encoding="utf-8").splitlines()[1]
    with pytest.raises(LedgerCorruptError) as caught:
        verify_lines([*lines[:2], foreign, *lines[2:]])
    assert caught.value.line == 3


def test_whitespace_edits_are_caught_even_though_the_json_is_equal(ledger: Ledger) -> None:
    fill(ledger, 2)
    lines = ledger.path.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace(",", ", ", 1)
    with pytest.raises(LedgerCorruptError, match="canonical"):
        verify_lines(lines)


def test_the_anchor_catches_truncation(ledger: Ledger) -> None:
    hashes = fill(ledger, 5)
    assert len(ledger.verify(anchor=hashes[2])) == 5
    lines = ledger.path.read_text(encoding="utf-8").splitlines()
    ledger.path.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    ledger.verify()  # a truncated chain is still a valid chain on its own...
    with pytest.raises(LedgerCorruptError, match="anchor"):
        ledger.verify(anchor=hashes[4])  # ...but not one that holds the published head


def test_a_torn_last_line_is_reported_and_blocks_appends(ledger: Ledger) -> None:
    fill(ledger, 2)
    with ledger.path.open("a", encoding="utf-8") as handle:
        handle.write('{"seq": 3, "ha')
    with pytest.raises(LedgerCorruptError) as caught:
        ledger.verify()
    assert caught.value.line == 3
    with pytest.raises(LedgerCorruptError):
        fill(ledger, 1)


def test_secrets_are_masked_before_hashing(ledger: Ledger) -> None:
    redact.install(redact.Redactor.of(["hunter2-secret-value"]))
    ledger.append(
        time="t",
        actor="bob",
        action="deploy",
        env="prod",
        version="1.0.0",
        outcome="failed",
        details={"reason": "token hunter2-secret-value rejected"},
    )
    text = ledger.path.read_text(encoding="utf-8")
    assert "hunter2-secret-value" not in text
    assert "***" in text
    ledger.verify()


def test_a_non_ascii_secret_with_quotes_is_masked_in_the_canonical_json(ledger: Ledger) -> None:
    """The canonical JSON keeps non-ASCII as is and escapes only `"` and `\\`."""
    secret = 'g\u00e9heim-"quoted"-\\path\\-value'
    redact.install(redact.Redactor.of([secret]))
    ledger.append(
        time="t",
        actor="bob",
        action="deploy",
        env="prod",
        version="1.0.0",
        outcome="failed",
        details={"reason": f"token {secret} rejected"},
    )
    text = ledger.path.read_text(encoding="utf-8")
    assert json.dumps(secret, ensure_ascii=False)[1:-1] not in text
    assert "heim-" not in text
    assert "token *** rejected" in text
    ledger.verify()


def test_cli_verify_prints_the_head_or_names_the_bad_entry(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    hashes = fill(ledger, 3)
    assert main(["ledger", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == hashes[-1]
    assert main(["ledger", "verify", "--anchor", hashes[0]]) == 0
    capsys.readouterr()
    raw = ledger.path.read_bytes()
    position = raw.index(b"alice", raw.index(b"\n") + 1)  # a byte of the second entry
    ledger.path.write_bytes(raw[:position] + b"A" + raw[position + 1 :])
    assert main(["ledger", "verify"]) == 1
    err = capsys.readouterr().err
    assert "entry 2" in err
    assert "Traceback" not in err


def test_cli_verify_empty_ledger(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify"]) == 0
    assert GENESIS in capsys.readouterr().out
    assert main(["ledger", "verify", "--anchor", "ab" * 32]) == 1


def test_nested_keys_named_like_top_level_ones_do_not_confuse_verify(ledger: Ledger) -> None:
    ledger.append(
        time="t",
        actor="a",
        action="x",
        env="e",
        version="1",
        outcome="ok",
        details={"outcome": "nested", "env": "e", "deeper": {"outcome": 1, "hash": "h"}},
    )
    assert len(ledger.verify()) == 1


def test_cli_rejects_a_malformed_anchor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify", "--anchor", "abc"]) == 2
    assert "not a sha256 hex digest" in capsys.readouterr().err


def test_cli_verify_names_the_entry_after_a_deleted_line(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(ledger, 4)
    lines = ledger.path.read_text(encoding="utf-8").splitlines(keepends=True)
    ledger.path.write_text("".join(lines[:2] + lines[3:]), encoding="utf-8")
    assert main(["ledger", "verify"]) == 1
    assert "entry 3: its prev does not match the entry before it" in capsys.readouterr().err
