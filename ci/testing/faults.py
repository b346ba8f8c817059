"""Fault injection, a testing aid: ``CI_INJECT_FAULT=<gate>[,<gate>...]`` breaks those gates.

Each fault makes its gate fail the way it really fails, inside the real code path: the
linter really finds an unused import, pytest really runs a failing test, the secret scan
really finds a planted key, the audit really matches a vulnerable pin, the package check
really sees a wrong checksum, the upload really dies after the first file (the next one
goes to a closed port), the deploy command really exits non-zero. Nothing is skipped, so
the gating, rollback and "nothing published" paths are the ones production takes.
Ignored unless the variable is set; an unknown gate name is a usage error (exit 2).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import string
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ci.core.errors import ConfigError

ENV = "CI_INJECT_FAULT"
FAULTS = ("lint", "test", "secrets", "audit", "package", "publish", "deploy")
MARK = f"injected by {ENV}"

LINT_SOURCE = f'"""A planted lint finding ({MARK}=lint)."""\n\nimport os  # unused: ruff F401\n'
TEST_SOURCE = (
    f'"""A planted failing test ({MARK}=test)."""\n\n\n'
    "def test_injected_fault() -> None:\n"
    f'    """Fails on purpose ({MARK}=test)."""\n'
    f'    assert 1 + 1 == 3, "{MARK}=test"\n'
)
# a pin with a real advisory (PYSEC-2018-28, CVE-2018-18074: fixed in requests 2.20.0); the
# hash is a placeholder: pip-audit wants one on every pin of a hashed file (uv export adds
# them) but never checks its value, since it downloads nothing
VULNERABLE_PIN = f"requests==2.19.1 --hash=sha256:{'0' * 64}"


def active(env: Mapping[str, str]) -> frozenset[str]:
    """The gates ``CI_INJECT_FAULT`` names (empty when unset); ConfigError for unknown ones."""
    raw = env.get(ENV, "")
    names = {part.strip().lower() for part in raw.split(",") if part.strip()}
    unknown = sorted(names - set(FAULTS))
    if unknown:
        msg = (
            f"{ENV}={raw!r} names unknown gate(s) {', '.join(unknown)}; "
            f"use any of {', '.join(FAULTS)} separated by commas, or unset it"
        )
        raise ConfigError(msg)
    return frozenset(names)


def enabled(gate: str, env: Mapping[str, str]) -> bool:
    """True when ``CI_INJECT_FAULT`` names ``gate``."""
    return gate in active(env)


def announce(gate: str) -> str:
    """The line a gate prints when it injects its fault (so a log never hides it)."""
    return f"fault injection: {ENV} includes {gate!r}; this gate will fail on purpose"


@contextlib.contextmanager
def _planted(folder: Path, name: str, text: str) -> Iterator[Path]:
    """Write ``folder/name`` for the duration of the block, then remove it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def lint_paths(env: Mapping[str, str]) -> Iterator[list[str]]:
    """Extra paths for ruff: a planted file with an unused import when ``lint`` is on."""
    if not enabled("lint", env):
        yield []
        return
    print(announce("lint"), flush=True)
    # outside the tree, so `ruff check .` never sees it twice and the tree stays untouched
    with tempfile.TemporaryDirectory(prefix="noxgate-fault-") as folder:
        path = Path(folder) / "injected_lint_fault.py"
        path.write_text(LINT_SOURCE, encoding="utf-8")
        yield [str(path)]


@contextlib.contextmanager
def failing_test_paths(
    folder: Path, env: Mapping[str, str], default: Sequence[str]
) -> Iterator[list[str]]:
    """Extra pytest paths: ``default`` plus a planted failing test when ``test`` is on."""
    if not enabled("test", env):
        yield []
        return
    print(announce("test"), flush=True)
    with _planted(folder, "test_injected_fault.py", TEST_SOURCE) as path:
        yield [*default, str(path)]


def fake_aws_key() -> str:
    """A freshly made value shaped like an AWS access key id (never a real credential)."""
    alphabet = string.ascii_uppercase + "234567"
    return "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))


@contextlib.contextmanager
def secret_paths(folder: Path, env: Mapping[str, str]) -> Iterator[list[Path]]:
    """Extra files for the secret scan: one holding a planted key when ``secrets`` is on."""
    if not enabled("secrets", env):
        yield []
        return
    print(announce("secrets"), flush=True)
    # the value is made at run time so the bundle's own source never contains one
    text = f"# {MARK}=secrets\naws_access_key_id = {fake_aws_key()}\n"
    with _planted(folder, "injected_secret.ini", text) as path:
        yield [path]


def audit_pins(env: Mapping[str, str]) -> tuple[str, ...]:
    """Pins the audit adds to what it audits: a vulnerable one when ``audit`` is on."""
    if not enabled("audit", env):
        return ()
    print(announce("audit"), flush=True)
    return (VULNERABLE_PIN,)


def add_pins(requirements: str, pins: Sequence[str]) -> str:
    """``requirements`` with ``pins`` appended, replacing any pin of the same project (pure)."""
    if not pins:
        return requirements
    names = {_project(pin) for pin in pins}
    kept: list[str] = []
    dropping = False
    for line in requirements.splitlines():
        if dropping or (line[:1].strip() and _project(line) in names):
            dropping = line.rstrip().endswith("\\")  # its --hash continuation lines go too
            continue
        kept.append(line)
    return "\n".join([*kept, *pins, ""])


def _project(line: str) -> str:
    name = re.split(r"[=<>!~;\[\s]", line.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def corrupt_checksums(sums: str, env: Mapping[str, str]) -> str:
    """``SHA256SUMS`` text with the first digest flipped when ``package`` is on."""
    if not enabled("package", env) or not sums.strip():
        return sums
    print(announce("package"), flush=True)
    first, _, rest = sums.partition("\n")
    digest, sep, name = first.partition(" ")
    flipped = ("0" if digest[:1] != "0" else "1") + digest[1:]
    return f"{flipped}{sep}{name}\n{rest}" if rest else f"{flipped}{sep}{name}\n"


def closed_port_url() -> str:
    """The URL of a port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def upload_url(url: str, index: int, env: Mapping[str, str]) -> str:
    """Where upload ``index`` (from 0) goes: after the first, a dead index if ``publish`` is on."""
    if index == 0 or not enabled("publish", env):
        return url
    print(announce("publish"), flush=True)
    return closed_port_url()


def deploy_command(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The deploy command to run: one that exits non-zero when ``deploy`` is on."""
    if not enabled("deploy", env):
        return list(argv)
    print(announce("deploy"), flush=True)
    script = f"import sys; print('deploy failed: {MARK}=deploy'); sys.exit(3)"
    return [sys.executable, "-c", script]
