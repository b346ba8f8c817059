"""A project folder with [tool.ci.environments] and cheap deploy commands, for deploy tests."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from pathlib import Path

from ci.deploy.ledger import Ledger

PY = sys.executable

HEADER = """\
[project]
name = "{name}"
version = "{version}"

[tool.ci]
pythons = ["3.12"]
"""


def toml_list(argv: list[str]) -> str:
    """``argv`` as a TOML array (JSON strings are valid TOML basic strings)."""
    return "[" + ", ".join(json.dumps(a) for a in argv) + "]"


def record_command(log: Path, *, fail_on: str = "") -> list[str]:
    """A deploy_command that appends '{env} {version}' to ``log`` and fails for ``fail_on``."""
    code = (
        "import sys; env, version = sys.argv[1], sys.argv[2]; "
        f"open({str(log)!r}, 'a').write(env + ' ' + version + chr(10)); "
        f"sys.exit(1 if version == {fail_on!r} else 0)"
    )
    return [PY, "-c", code, "{env}", "{version}"]


def write_project(
    root: Path,
    environments: str,
    *,
    name: str = "demo-app",
    version: str = "1.0.0",
    extra: str = "",
) -> Path:
    """Write ``root/pyproject.toml`` with ``environments`` TOML appended; returns its path."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "pyproject.toml"
    text = HEADER.format(name=name, version=version) + extra + "\n" + environments
    path.write_text(text, encoding="utf-8")
    return path


def ledger_of(state: Path) -> Ledger:
    """The ledger under state folder ``state``."""
    return Ledger.in_state_dir(state)


def write_wheel(
    dist: Path, name: str, version: str, package: str, body: str = "", *, requires: str = ""
) -> Path:
    """A minimal valid pure-Python wheel of ``name`` ``version`` holding ``package``."""
    dist.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_')}-{version}"
    wheel = dist / f"{stem}-py3-none-any.whl"
    files = {
        f"{package}/__init__.py": body or f'__version__ = "{version}"\n',
        f"{stem}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + (f"Requires-Dist: {requires}\n" if requires else "")
        ),
        f"{stem}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for member, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(data)}")
    record.append(f"{stem}.dist-info/RECORD,,")
    files[f"{stem}.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return wheel


# Child processes must import this checkout's ``ci`` whatever folder they run in.
ROOT_ENV = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
