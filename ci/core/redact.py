"""The masking filter: secret env var values never reach output or files."""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

from ci.core.config import DEFAULT_MASK_ENV

MASK = "***"
MIN_LENGTH = 3  # shorter values would mask ordinary text everywhere


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


def forms_of(value: str) -> set[str]:
    """Every form in which ``value`` (one line of a secret) may appear in text."""
    if len(value) < MIN_LENGTH:
        return set()
    raw = value.encode()
    forms = {
        value,
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
    }
    forms |= _base64_forms(raw)
    forms |= {f.replace("+", "-").replace("/", "_") for f in _base64_forms(raw)}
    return {f for f in forms if len(f) >= MIN_LENGTH}


def secret_names(patterns: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """Names of env vars matching any of ``patterns`` (fnmatch, case-sensitive)."""
    pats = list(patterns)
    return sorted(n for n in env if any(fnmatch.fnmatchcase(n, p) for p in pats))


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces every known form of every secret value with ``***``."""

    values: tuple[str, ...] = ()

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
        """A redactor for these secret values (multi-line ones line by line)."""
        forms: set[str] = set()
        for secret in secrets:
            for line in [secret, *secret.splitlines()]:
                forms |= forms_of(line.strip("\r"))
        return cls(tuple(sorted(forms, key=lambda f: (-len(f), f))))

    def __call__(self, text: str) -> str:
        """``text`` with every secret form masked."""
        for form in self.values:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def github_masks(self, secrets: Iterable[str]) -> list[str]:
        """``::add-mask::`` commands for each secret (each line of multi-line ones)."""
        lines = []
        for secret in secrets:
            for line in secret.splitlines() or [secret]:
                if len(line) >= MIN_LENGTH:
                    lines.append(f"::add-mask::{line}")
        return lines


class RedactingStream:
    """A text stream wrapper that masks everything written through it."""

    def __init__(self, inner: TextIO, redactor: Redactor) -> None:
        """Wrap ``inner``."""
        self.inner = inner
        self.redactor = redactor

    def write(self, text: str) -> int:
        """Write ``text`` masked."""
        self.inner.write(self.redactor(text))
        return len(text)

    def flush(self) -> None:
        """Flush the wrapped stream."""
        self.inner.flush()

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal."""
        return self.inner.isatty()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


_current = Redactor()


def install(redactor: Redactor) -> None:
    """Make ``redactor`` the one every writer and both std streams use."""
    global _current  # noqa: PLW0603 - one filter for the whole process, set once by the CLI
    _current = redactor
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        inner = stream.inner if isinstance(stream, RedactingStream) else stream
        setattr(sys, name, RedactingStream(inner, redactor))


def current() -> Redactor:
    """The redactor installed for this process (masks nothing until installed)."""
    return _current


def redact(text: str) -> str:
    """``text`` masked with the installed redactor."""
    return _current(text)
