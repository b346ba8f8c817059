import base64
import io
import json
import urllib.parse

import pytest

from ci.core import redact
from ci.core.files import write_json
from ci.core.redact import MASK, RedactingStream, Redactor

SECRET = "s3cr3t-V@lue/with+odd=chars"


@pytest.mark.parametrize(
    "encoded",
    [
        SECRET,
        urllib.parse.quote(SECRET, safe=""),
        urllib.parse.quote_plus(SECRET, safe=""),
        json.dumps(SECRET)[1:-1],
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(b"x" + SECRET.encode()).decode(),
        base64.b64encode(b"xy" + SECRET.encode()).decode(),
        base64.urlsafe_b64encode(b"user:" + SECRET.encode()).decode(),
    ],
)
def test_every_form_is_masked(encoded: str) -> None:
    r = Redactor.of([SECRET])
    masked = r(f"before {encoded} after")
    assert MASK in masked
    # no 8-character run of the encoded secret survives
    core = encoded[len(encoded) // 2 - 4 : len(encoded) // 2 + 4]
    assert core not in masked


def test_basic_auth_header_is_masked() -> None:
    token = base64.b64encode(f"__token__:{SECRET}".encode()).decode()
    masked = Redactor.of([SECRET])(f"Authorization: Basic {token}")
    assert SECRET not in masked
    assert token not in masked


def test_multi_line_values_are_masked_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nAAAABBBBCCCC\nDDDDEEEEFFFF\n-----END KEY-----"
    r = Redactor.of([key])
    text = "log: DDDDEEEEFFFF appeared alone"
    assert "DDDDEEEEFFFF" not in r(text)


def test_short_values_are_not_masked() -> None:
    assert Redactor.of(["ab"])("abc ab") == "abc ab"


def test_from_env_uses_patterns_and_names() -> None:
    env = {
        "GITHUB_TOKEN": "ghp_abcdef123456",
        "MY_API_KEY": "k3y-value",
        "HOME": "/root",
        "X": "xval1",
    }
    r = Redactor.from_env(env, ["*_TOKEN", "*_KEY"], names=["X"])
    out = r("ghp_abcdef123456 k3y-value /root xval1")
    assert out == f"{MASK} {MASK} /root {MASK}"


def test_stream_wrapper_masks_writes() -> None:
    inner = io.StringIO()
    stream = RedactingStream(inner, Redactor.of([SECRET]))
    stream.write(f"value={SECRET}\n")
    stream.flush()
    assert SECRET not in inner.getvalue()
    assert stream.isatty() is False


def test_github_masks_one_line_each() -> None:
    r = Redactor.of([])
    assert r.github_masks(["one-line", "two\nlines"]) == [
        "::add-mask::one-line",
        "::add-mask::two",
        "::add-mask::lines",
    ]


def test_installed_redactor_masks_files(tmp_path, capsys) -> None:
    redact.install(Redactor.of([SECRET]))
    write_json(tmp_path / "r.json", {"value": SECRET})
    print(f"printed {SECRET}")
    text = (tmp_path / "r.json").read_text()
    assert SECRET not in text
    assert json.loads(text)["schema"] == 1
    assert SECRET not in capsys.readouterr().out
