"""The masking filter: secret env var values never reach output or files."""

from __future__ import annotations

import atexit
import base64
import bisect
import fnmatch
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from ci.core.config import DEFAULT_MASK_ENV

MASK = "***"
MIN_LENGTH = 3  # shorter values would mask ordinary text everywhere
# a line that ends in at least this many leading characters of a form may go on to the next
# line: the stream holds it back until it knows (a shorter piece reveals nothing)
HOLD_MIN = 4
# a line break as text shows it (raw, JSON-escaped, or an XML character reference) and the
# indent or gutter a tool puts before the next line (pytest's "E   ", a quote's "> ")
_BREAK = re.compile(r"(?:\r?\n|\\r\\n|\\n|(?:&#13;)?&#10;)(?:[E>|#]?[ \t]+)?")
_RAW_BREAK = re.compile(r"\n(?:[E>|#]?[ \t]+)?")
_GUTTER = re.compile(r"[E>|#]?[ \t]+")
_GUTTER_BEGUN = re.compile(r"[E>|#]?[ \t]*")
_ESCAPED_BREAK = re.compile(r"\\n(?:[E>|#]?[ \t]+)?")
_XML_BREAK = re.compile(r"&#10;(?:[E>|#]?[ \t]+)?")
# the end of a text that the next write may turn into a break and its gutter: a CR, a
# break with a gutter begun, part of an escaped break
_UNFINISHED = re.compile(
    r"(?:(?:\r?\n|\\r\\n|\\n|(?:&#13;)?&#10;)[E>|#]?|\r|\\(?:r\\?)?"
    r"|&(?:#(?:1(?:0|3(?:;(?:&(?:#(?:1(?:0)?)?)?)?)?)?)?)?)\Z"
)
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_SHORT_TEXT = 4096  # below this one regex finds faster than a substring search per form
# how pytest escapes the ASCII controls left in a test id
_ID_CONTROLS = {i: f"\\x{i:02x}" for i in (*range(32), 127)} | {9: "\\t", 10: "\\n", 13: "\\r"}


def _base64_forms(value: bytes) -> set[str]:
    """The base64 text a value produces at each of the three byte alignments."""
    forms = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + value).decode()
        first = -(-8 * offset // 6)  # first char made only of the value's bits
        last = (8 * (offset + len(value))) // 6  # chars before this are wholly the value's
        if last - first >= 4:
            forms.add(encoded[first:last])
    return forms


def _percent_forms(value: str) -> set[str]:
    """URL encodings: ``quote`` and ``quote_plus`` with and without ``/`` kept, any hex case."""
    forms = set()
    for safe in ("", "/"):
        for encoded in (urllib.parse.quote(value, safe=safe), urllib.parse.quote_plus(value, safe)):
            forms |= {encoded, _PERCENT.sub(lambda m: m.group().lower(), encoded)}
    return forms


def _markup_forms(value: str) -> set[str]:
    """HTML and XML escapes as html.escape, ElementTree and template engines write them."""
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    attribute = text.replace('"', "&quot;")
    controls = attribute.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#09;")
    return {
        text,
        attribute,
        controls,
        attribute.replace("'", "&#x27;"),
        attribute.replace("'", "&#39;"),
        attribute.replace("'", "&apos;"),
    }


def _pytest_id_forms(value: str) -> set[str]:
    """How pytest writes ``value`` in a test id (``_pytest.compat.ascii_escaped``)."""
    as_str = value.encode("unicode_escape").decode("ascii").translate(_ID_CONTROLS)
    as_bytes = value.encode().decode("ascii", "backslashreplace").translate(_ID_CONTROLS)
    return {as_str, as_bytes}


def forms_of(value: str) -> set[str]:
    """Every form in which ``value`` (one line of a secret) may appear in text."""
    if len(value) < MIN_LENGTH:
        return set()
    raw = value.encode()
    quoted = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],  # canonical JSON keeps non-ASCII as is
        repr(value)[1:-1],  # Python's repr: how pytest shows a value in a failed assertion
    }
    # pytest's test id of a parametrized value: ASCII, the rest escaped (``\xf6``, ``\u20ac``)
    # for a str, each UTF-8 byte escaped for bytes; a JSON file of test ids doubles the ``\``
    for escaped in _pytest_id_forms(value):
        quoted |= {escaped, json.dumps(escaped)[1:-1]}
    forms = {*quoted, raw.hex(), raw.hex().upper()}
    for text in quoted:  # each may be escaped again on its way into HTML or XML
        forms |= _markup_forms(text)
    forms |= _percent_forms(value)
    forms |= _base64_forms(raw)
    forms |= {f.replace("+", "-").replace("/", "_") for f in _base64_forms(raw)}
    return {f for f in forms if len(f) >= MIN_LENGTH}


def secret_names(patterns: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """Names of env vars matching any of ``patterns`` (fnmatch, case-sensitive)."""
    pats = list(patterns)
    return sorted(n for n in env if any(fnmatch.fnmatchcase(n, p) for p in pats))


def _mask_for(form: str) -> str:
    """``***`` for each line of ``form``: masking never adds or removes a line break."""
    return MASK if "\n" not in form else _LINE_TEXT.sub(MASK, form)


_LINE_TEXT = re.compile(r"[^\r\n]+")


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces every known form of every secret value with ``***``, also across a line break."""

    values: tuple[str, ...] = ()
    # the forms (line breaks left out) by their first HOLD_MIN characters (every form holds
    # its head), and one regex that finds any head: a cheap test for a line with no secret
    _heads: dict[str, tuple[str, ...]] = field(init=False, compare=False, repr=False)
    _any_head: re.Pattern[str] | None = field(init=False, compare=False, repr=False)
    # any head or any line break: one pass tells a line that needs nothing more (the most)
    _head_or_break: re.Pattern[str] | None = field(init=False, compare=False, repr=False)
    _flat: tuple[str, ...] = field(init=False, compare=False, repr=False)  # breaks left out

    def __post_init__(self) -> None:
        """Index the forms by their heads."""
        flat = tuple(_unbroken(f) for f in self.values)
        heads: dict[str, list[str]] = {}
        for form in flat:
            heads.setdefault(form[:HOLD_MIN], []).append(form)
        alternatives = _trie(sorted(heads))
        finder = re.compile(alternatives) if heads else None
        either = re.compile(alternatives + r"|\n|\\n|&#10;") if heads else None
        object.__setattr__(self, "_flat", flat)
        object.__setattr__(self, "_heads", {h: tuple(f) for h, f in heads.items()})
        object.__setattr__(self, "_any_head", finder)
        object.__setattr__(self, "_head_or_break", either)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        patterns: Iterable[str] = DEFAULT_MASK_ENV,
        names: Iterable[str] = (),
    ) -> Redactor:
        """A redactor for the env vars that match ``patterns`` or are listed in ``names``."""
        environ = os.environ if env is None else env
        wanted = set(secret_names(patterns, environ)) | {n for n in names if n in environ}
        values = [environ[n] for n in sorted(wanted) if environ[n]]
        return cls.of(values)

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Redactor:
        """A redactor for these secret values (multi-line ones line by line, also stripped)."""
        forms: set[str] = set()
        for secret in secrets:
            for line in [secret, *secret.splitlines()]:
                value = line.strip("\r")
                forms |= forms_of(value) | forms_of(value.strip())
        return cls(tuple(sorted(forms, key=lambda f: (-len(f), f))))

    def __call__(self, text: str) -> str:
        """``text`` with every secret form masked, also a form split by a line break."""
        return _apply(text, self.spans(text))

    def maybe(self, text: str) -> bool:
        """False when no form can be in ``text``, nor begin in it (fast)."""
        if self._any_head is None or not text:
            return False
        if len(text) > _SHORT_TEXT:
            return True  # a long text: searching each form is as fast as a pre-test
        return self._any_head.search(text) is not None

    def plain(self, text: str, start: int = 0) -> bool:
        """True when ``text[start:]`` holds no form's head and no line break but a last one."""
        if self._head_or_break is None:
            return True
        end = len(text)
        if text.endswith("\n"):
            end -= 2 if text.endswith("\r\n") else 1
        return self._head_or_break.search(text, start, end) is None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the forms lie in ``text``, sorted: (start, end) pairs, some across a break."""
        if len(text) <= _SHORT_TEXT and self.plain(text):
            return []  # the common case: one regex pass
        several = "\n" in text.rstrip("\r\n") or "\\n" in text or "&#10;" in text
        # (a break at the very end splits nothing here; a stream joins it to what comes next)
        joined = _unbroken(text) if several else text
        if not self.maybe(joined):
            return []
        present = [flat for flat in self._flat if flat in joined]  # usually none
        if not present:
            return []
        # each break's position in ``joined``, and how many characters of breaks (and
        # gutters) ``text`` has up to its end
        at: list[int] = []
        upto: list[int] = []
        removed = 0
        for match in _BREAK.finditer(text) if several else ():  # rare: a form is there
            at.append(match.start() - removed)
            removed += match.end() - match.start()
            upto.append(removed)
        found: list[tuple[int, int]] = []
        for form in present:
            start = joined.find(form)
            while start != -1:
                end = start + len(form)
                first = bisect.bisect_right(at, start)  # breaks at start come before the form
                last = bisect.bisect_left(at, end)  # breaks before end lie inside it
                shift = upto[first - 1] if first else 0
                found.append((start + shift, end + (upto[last - 1] if last > first else shift)))
                start = joined.find(form, start + 1)
        return sorted(found)

    def may_continue(self, line: str) -> bool:
        """Whether ``line`` (breaks taken out) ends in HOLD_MIN or more of a form's start."""
        line = _unbroken(_UNFINISHED.sub("", line))
        tail = line[-len(self.values[0]) :] if self.values else ""
        for head, forms in self._heads.items():
            at = tail.find(head)
            while at != -1:
                rest = tail[at:]
                if any(len(f) > len(rest) and f.startswith(rest) for f in forms):
                    return True
                at = tail.find(head, at + 1)
        return False

    def github_masks(self, secrets: Iterable[str]) -> list[str]:
        """``::add-mask::`` commands for each secret (each line of multi-line ones)."""
        lines = []
        for secret in secrets:
            for line in secret.splitlines() or [secret]:
                if len(line) >= MIN_LENGTH:
                    lines.append(f"::add-mask::{line}")
        return lines


_HOLD_LINES = 64  # a longer run of lines that each may go on is written out regardless
_TAIL = 32  # characters of what was written kept as context: a form's start and a break


class RedactingStream:
    """A text stream wrapper that masks everything written through it.

    Text is written as it comes unless a secret's form may lie in it or begin at its end:
    then it waits until that form is whole or ruled out, so a value split over two writes
    or two lines is masked on both sides (a start shorter than HOLD_MIN is written as it
    is: it reveals nothing). ``flush`` leaves such text waiting (the runner flushes every
    line); ``drain`` writes it out when the output ends.
    """

    def __init__(self, inner: TextIO, redactor: Redactor) -> None:
        """Wrap ``inner``."""
        self.inner = inner
        self.redactor = redactor
        self._pending = ""  # text not written yet
        # the end of what was written: it never ends in more than HOLD_MIN - 1 characters of
        # a form (and perhaps a line break), so it is all the context a later write needs
        self._tail = ""
        # the same, breaks taken out: its last characters, whether a line just ended, and
        # whether these two tell it all (not when it ends in a CR, a gutter or an escape)
        self._last = ""
        self._at_start = False
        self._sure = True

    def write(self, text: str) -> int:
        """Write ``text`` masked: now, or once it is known where a form in it ends."""
        redactor = self.redactor
        if not redactor.values:
            self.inner.write(text)
            return len(text)
        if not self._pending:
            if self._sure and self._write_plain(text):
                return len(text)  # the common case: no form in it, none begun
            if not redactor.maybe(_unbroken(self._tail + text)):
                self.inner.write(text)
                self._wrote(text)
                return len(text)
        self._pending += text
        waits = redactor.may_continue(self._tail + self._pending)
        if not waits or self._pending.count("\n") > _HOLD_LINES:
            self._write_pending()
        return len(text)

    def _write_plain(self, text: str) -> bool:
        """Write ``text`` if, by the last characters alone, no form can be in it (fast)."""
        ends_line = text.endswith("\n")
        start = 0
        if self._at_start:
            if not ends_line and _GUTTER_BEGUN.fullmatch(text):
                return False  # the rest of a gutter may follow
            gutter = _GUTTER.match(text)
            if gutter is not None:
                start = gutter.end()
        redactor = self.redactor
        if not redactor.plain(text, start):
            return False
        if self._last and redactor.maybe(self._last + text[start : start + HOLD_MIN - 1]):
            return False  # a form begun at the end of what was written may go on here
        self.inner.write(text)
        self._tail = (self._tail + text)[-_TAIL:]
        self._last = (self._last + text[start:].rstrip("\r\n"))[1 - HOLD_MIN :]
        self._at_start = ends_line
        self._sure = ends_line or _UNFINISHED.search(text[-12:]) is None
        return True

    def _wrote(self, raw: str) -> None:
        """Keep the end of what was just written (``raw``, unmasked) as context."""
        self._tail = (self._tail + raw)[-_TAIL:]
        self._last = _unbroken(self._tail)[1 - HOLD_MIN :]
        self._at_start = self._sure = self._tail.endswith("\n")

    def _write_pending(self) -> None:
        """Write the pending text masked, with the end of what was written before as context."""
        text, self._pending = self._pending, ""
        if not text:
            return
        whole = self._tail + text  # a form may have begun in what was written
        self.inner.write(_apply(whole, self.redactor.spans(whole), len(self._tail)))
        self._wrote(text)

    def flush(self) -> None:
        """Flush the wrapped stream (text that may still go on into a secret keeps waiting)."""
        self.inner.flush()

    def drain(self) -> None:
        """Write out whatever waits, masked as far as it goes, and flush: the output ends."""
        self._write_pending()
        self.inner.flush()

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal."""
        return self.inner.isatty()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _trie(words: list[str]) -> str:
    """A regex that matches any of ``words``, shared starts factored out (fewer tries a place)."""
    if "" in words:
        rest = [w for w in words if w]
        return f"(?:{_trie(rest)})?" if rest else ""
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(word[1:])
    parts = [re.escape(first) + _trie(ends) for first, ends in groups.items()]
    return parts[0] if len(parts) == 1 else f"(?:{'|'.join(parts)})"


def _apply(text: str, spans: Iterable[tuple[int, int]], offset: int = 0) -> str:
    """``text[offset:]`` with each span masked (overlaps merged, line breaks kept)."""
    pieces, done = [], offset
    for start, end in spans:
        begin = max(start, done)
        if end > begin:
            pieces += [text[done:begin], _mask_for(text[begin:end])]
            done = end
    if not pieces:
        return text[offset:] if offset else text
    pieces.append(text[done:])
    return "".join(pieces)


def _unbroken(text: str) -> str:
    """``text`` without its line breaks (and the indent or gutter after each).

    The same as ``_BREAK.sub("", text)``, done a kind of break at a time: each pattern then
    starts with a fixed character the regex engine can skip to (ten times faster).
    """
    if "\n" in text:
        text = _RAW_BREAK.sub("", text.replace("\r\n", "\n"))
    if "\\n" in text:
        text = _ESCAPED_BREAK.sub("", text.replace("\\r\\n", "\\n"))
    if "&#10;" in text:
        text = _XML_BREAK.sub("", text.replace("&#13;&#10;", "&#10;"))
    return text


_current = Redactor()


def install(redactor: Redactor) -> None:
    """Make ``redactor`` the one every writer and both std streams use."""
    global _current  # noqa: PLW0603 - one filter for the whole process, set once by the CLI
    _current = redactor
    drain()
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        inner = stream.inner if isinstance(stream, RedactingStream) else stream
        setattr(sys, name, RedactingStream(inner, redactor))
    if not _draining_at_exit:
        atexit.register(drain)
        _draining_at_exit.append(True)


_draining_at_exit: list[bool] = []


def drain() -> None:
    """Write out what the std streams hold back (the output ends here, or at exit)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, RedactingStream):
            stream.drain()


def current() -> Redactor:
    """The redactor installed for this process (masks nothing until installed)."""
    return _current


def redact(text: str) -> str:
    """``text`` masked with the installed redactor."""
    return _current(text)
