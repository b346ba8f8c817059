"""Import contracts in the lint gate: import-linter, when the project configures it.

import-linter has no machine-readable output and exits 1 both for a broken contract and for
a configuration it cannot use, so its own closing line ("Contracts: N kept, M broken.")
tells the two apart: broken contracts are findings (one per forbidden import, at the
importing module's line), anything else is the tool failing (exit 6), never a pass.
"""

from __future__ import annotations

import configparser
import re
import sys
import tomllib
from pathlib import Path

from ci.core.errors import ToolError
from ci.core.gate import Finding, GateContext

_VERDICT = re.compile(r"^Contracts: (?P<kept>\d+) kept, (?P<broken>\d+) broken\.$", re.MULTILINE)
# "-   a.b -> c.d (l.3, l.9)" starts a chain; indented "c.d -> e (l.4)" lines continue it
_LINK = re.compile(
    r"^(?P<start>-)?\s+(?P<importer>[\w.]+) -> (?P<imported>[\w.]+) \(l\.(?P<line>\d+)"
)
_BROKEN_HEADER = "Broken contracts"


def configured(root: Path) -> bool:
    """True when the project has import-linter contracts (pyproject, .importlinter, setup.cfg)."""
    if (root / ".importlinter").is_file():
        return True
    try:
        pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pyproject = {}
    tool = pyproject.get("tool", {})
    if isinstance(tool, dict) and "importlinter" in tool:
        return True
    setup_cfg = configparser.ConfigParser()
    try:
        setup_cfg.read(root / "setup.cfg", encoding="utf-8")
    except configparser.Error:
        return False
    return setup_cfg.has_section("importlinter")


def check(ctx: GateContext) -> list[Finding]:
    """The broken import contracts of the project (none when it configures none)."""
    if not configured(ctx.root):
        return []
    beside = Path(sys.executable).parent / "lint-imports"
    program = str(beside) if beside.exists() else "lint-imports"
    done = ctx.runner.run([program, "--no-logo", "--no-cache"], cwd=ctx.root)
    verdict = _VERDICT.search(done.stdout)
    if done.returncode == 0 and verdict:
        return []
    if done.returncode != 1 or verdict is None or int(verdict["broken"]) == 0:
        tail = done.output.strip().splitlines()[-1:] or ["no output"]
        msg = (
            f"lint-imports could not check the import contracts (exit {done.returncode}): {tail[0]}"
        )
        raise ToolError(msg)
    return findings(done.stdout, ctx.root)


def findings(text: str, root: Path) -> list[Finding]:
    """One finding per forbidden import chain listed under each broken contract (pure)."""
    chains: list[tuple[str, list[str], int]] = []  # (contract, modules, line of the first link)
    contract = ""
    body = text.split(_BROKEN_HEADER, 1)[-1].splitlines()
    for index, line in enumerate(body):
        following = body[index + 1].strip() if index + 1 < len(body) else ""
        if line.strip() and following and set(following) == {"-"}:
            contract = line.strip()  # a contract's name, underlined
            continue
        link = _LINK.match(line)
        if link is None:
            continue
        if link["start"] or not chains:
            chains.append((contract, [link["importer"], link["imported"]], int(link["line"])))
        else:
            chains[-1][1].append(link["imported"])
    found = [
        Finding(
            rule="import-contract",
            message=f"{name}: {' -> '.join(modules)}",
            file=module_file(modules[0], root),
            line=line,
        )
        for name, modules, line in chains
    ]
    if not found:  # a contract type that lists no imports: still a failure, by name
        found.append(Finding(rule="import-contract", message="an import contract is broken"))
    return found


def module_file(module: str, root: Path) -> str | None:
    """The file of ``module`` under ``root`` (flat or src/ layout), relative, or None."""
    parts = module.split(".")
    for base in (root, root / "src"):
        for candidate in (
            base.joinpath(*parts).with_suffix(".py"),
            base.joinpath(*parts, "__init__.py"),
        ):
            if candidate.is_file():
                return candidate.relative_to(root).as_posix()
    return None
