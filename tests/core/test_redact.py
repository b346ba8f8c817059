import base64
import html
import io
import json
import random
import re
import urllib.parse
import xml.etree.ElementTree as ET

import pytest
from _pytest.compat import ascii_escaped

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


UNICODE_SECRET = "Ab\u00f6-\u20ac\x1b\t-\U0001f600\\-tail"  # pragma: allowlist secret


@pytest.mark.parametrize(
    "test_id",
    [
        ascii_escaped(UNICODE_SECRET),  # a str value
        ascii_escaped(UNICODE_SECRET.encode()),  # a bytes value
        json.dumps(ascii_escaped(UNICODE_SECRET))[1:-1],  # in a JSON file of test ids
        json.dumps(ascii_escaped(UNICODE_SECRET.encode()))[1:-1],
    ],
    ids=["str", "bytes", "str-in-json", "bytes-in-json"],
)
def test_pytest_escaped_test_id_of_a_value_is_masked(test_id: str) -> None:
    """pytest's own escaping (a private function, so held equal here) of a parametrized value."""
    masked = Redactor.of([UNICODE_SECRET])(f"tests/t.py::test_p[x-{test_id}-1]")
    assert masked == "tests/t.py::test_p[x-***-1]"


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


MARKUP = "p<a>&\"s's-w0rd/42"  # every character HTML and XML escape
NON_ASCII = 'caf\u00e9-"quoted"-\\back\\-s3cret'
PADDED = "  padded-s3cret-value  "


def _percent_lower(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def _mime(value: str, before: int) -> tuple[str, str]:
    """``value`` inside base64 wrapped at 76 columns, as email and ``base64`` write it, and
    the base64 characters made of the value's bits alone."""
    data = b"x" * before + value.encode() + b"y" * 30
    inner = base64.b64encode(data).decode()[-(-8 * before // 6) : 8 * (before + len(value)) // 6]
    return inner, base64.encodebytes(data).decode()


def _xml_text(value: str) -> str:
    element = ET.Element("system-out")
    element.text = value
    return ET.tostring(element).decode()


def _plain(value: str, text: str) -> tuple[str, str]:
    return value, text


SPLIT_FORMS = {  # (the encoded value, the text it is in)
    "mime base64, split at column 76": _mime(SECRET, 50),
    "mime base64, split at another byte": _mime(SECRET, 49),
    "split over two lines": _plain(SECRET, f"token: {SECRET[:9]}\n{SECRET[9:]} sent\n"),
    "split over two CRLF lines": _plain(SECRET, f"token: {SECRET[:14]}\r\n{SECRET[14:]}\r\n"),
    "split inside an XML attribute": _plain(
        SECRET, ET.tostring(ET.Element("failure", message=f"{SECRET[:9]}\n{SECRET[9:]}")).decode()
    ),
    "split inside a JSON string": _plain(SECRET, json.dumps({"m": f"{SECRET[:9]}\n{SECRET[9:]}"})),
    "plain, with markup characters": _plain(MARKUP, f"password={MARKUP}"),
    "split, the next line indented": _plain(
        SECRET, f"E   got {SECRET[:10]}\nE     {SECRET[10:]}\n"
    ),
    "quote() keeping /": _plain(urllib.parse.quote(SECRET), f"u={urllib.parse.quote(SECRET)}"),
    "lowercase %xx": _plain(_percent_lower(urllib.parse.quote(SECRET, safe="")), "?"),
    "lowercase %xx keeping /": _plain(_percent_lower(urllib.parse.quote_plus(SECRET, "/")), "?"),
    "hex": _plain(SECRET.encode().hex(), "?"),
    "HEX": _plain(SECRET.encode().hex().upper(), "?"),
    "html.escape": _plain(html.escape(MARKUP), "?"),
    "html.escape, quote=False": _plain(html.escape(MARKUP, quote=False), "?"),
    "&#39; for '": _plain(html.escape(MARKUP).replace("&#x27;", "&#39;"), "?"),
    "XML attribute": _plain(
        html.escape(MARKUP).replace("&#x27;", "'"),
        ET.tostring(ET.Element("failure", message=MARKUP)).decode(),
    ),
    "XML text": _plain(html.escape(MARKUP, quote=False), _xml_text(MARKUP)),
    "stripped of its spaces": _plain(PADDED.strip(), f"value=[{PADDED.strip()}]"),
    "canonical JSON, non-ASCII kept": _plain(
        json.dumps(NON_ASCII, ensure_ascii=False)[1:-1],
        json.dumps({"v": NON_ASCII}, ensure_ascii=False),
    ),
    "JSON, non-ASCII escaped": _plain(json.dumps(NON_ASCII)[1:-1], json.dumps({"v": NON_ASCII})),
}


def _flat(text: str) -> str:
    """``text`` with its line breaks taken out: raw, JSON-escaped and XML references."""
    return re.sub(r"(?:\r?\n|\\n|&#10;)(?:E? +)?", "", text)  # and an indent, pytest's "E  "


def _leaks(encoded: str, masked: str) -> list[str]:
    """8-character runs of ``encoded`` still in ``masked`` (line breaks taken out)."""
    flat = _flat(masked)
    return [encoded[i : i + 8] for i in range(len(encoded) - 7) if encoded[i : i + 8] in flat]


def _streamed(redactor: Redactor, text: str) -> str:
    """``text`` through the redacting stream a line at a time, flushed after each as the
    runner does, then drained as the command's end does."""
    inner = io.StringIO()
    stream = RedactingStream(inner, redactor)
    for line in text.splitlines(keepends=True):
        stream.write(line)
        stream.flush()
    stream.drain()
    return inner.getvalue()


@pytest.mark.parametrize(("encoded", "text"), SPLIT_FORMS.values(), ids=SPLIT_FORMS.keys())
def test_every_encoding_and_split_is_masked(encoded: str, text: str) -> None:
    text = f"in a line: {encoded} and on\n" if text == "?" else text
    assert encoded in _flat(text) and len(encoded) >= 8  # the case is what it says
    masked = Redactor.of([SECRET, MARKUP, NON_ASCII, PADDED])(text)
    assert _leaks(encoded, masked) == []
    assert MASK in masked
    assert masked.count("\n") == text.count("\n")  # masking never joins or splits lines


@pytest.mark.parametrize(("encoded", "text"), SPLIT_FORMS.values(), ids=SPLIT_FORMS.keys())
def test_every_encoding_and_split_is_masked_in_a_stream(encoded: str, text: str) -> None:
    text = f"in a line: {encoded} and on\n" if text == "?" else text
    masked = _streamed(Redactor.of([SECRET, MARKUP, NON_ASCII, PADDED]), text)
    assert _leaks(encoded, masked) == []
    assert masked.count("\n") == text.count("\n")


def test_a_stream_writes_at_once_what_holds_no_secret() -> None:
    inner = io.StringIO()
    stream = RedactingStream(inner, Redactor.of([SECRET]))
    stream.write("progress 10%")
    assert inner.getvalue() == "progress 10%"
    stream.write(f"\rdone; the value is {SECRET[:12]}")  # it may go on: it waits
    stream.flush()
    assert inner.getvalue() == "progress 10%"
    stream.write(f"{SECRET[12:]} and more\n")
    assert inner.getvalue() == f"progress 10%\rdone; the value is {MASK} and more\n"
    stream.write(f"ends in {SECRET[:10]}")
    stream.drain()  # the output ends: a start that never went on is written as it is
    assert inner.getvalue().endswith(f"ends in {SECRET[:10]}")


def test_masking_random_splits_leaves_no_form_and_no_false_mask() -> None:
    """Any form split anywhere (or not at all), in text and in a stream written in any
    chunks: no form of 4 or more characters is left with breaks taken out, and text
    without a secret comes out unchanged."""
    rng = random.Random(13)
    secrets = [SECRET, MARKUP, NON_ASCII, PADDED, "line-one-secret\nline-two-secret"]
    r = Redactor.of(secrets)
    words = ["alpha", "beta ", "x", "=", "/", '"', "%2F", "s3c", "line", "-", "9f", "AAAA", "\n"]
    for _ in range(400):
        form = rng.choice(r.values)
        cut = rng.randint(0, len(form))
        noise = "".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
        brk = rng.choice(["", "\n", "\r\n", "\nE     ", "\n    ", "\\n", "&#10;"])
        text = noise + form[:cut] + brk + form[cut:] + noise
        chunks, start = [], 0
        while start < len(text):
            size = rng.randint(1, 12)
            chunks.append(text[start : start + size])
            start += size
        inner = io.StringIO()
        stream = RedactingStream(inner, r)
        for chunk in chunks:
            stream.write(chunk)
        stream.drain()
        for masked in (r(text), inner.getvalue()):
            flat = _flat(masked)
            assert [f for f in r.values if len(f) >= 4 and _flat(f) in flat] == [], text
            assert masked.count("\n") == text.count("\n")
        clean = noise.replace("s3c", "").replace("AAAA", "")
        assert r(clean) == clean
        assert _streamed(r, clean) == clean


def test_short_starts_of_a_form_mask_nothing_alone() -> None:
    r = Redactor.of([SECRET])
    text = f"{SECRET[:3]}\n{SECRET[:6]} is not the value\n"
    assert r(text) == text
    assert _streamed(r, text) == text
