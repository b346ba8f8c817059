"""Secret scanning with detect-secrets: the tracked tree, a commit range, or the whole history."""

from __future__ import annotations

import bisect
import datetime as dt
import enum
import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ci.core.config import Waiver
from ci.core.errors import ToolError, UsageError
from ci.core.gate import (
    Finding,
    Gate,
    GateContext,
    GateInputs,
    GateResult,
    GateStatus,
    judge_waivers,
)
from ci.core.runner import Runner
from ci.security import sarif
from ci.security.prefilter import Prefilter
from ci.testing import faults

BASELINE = ".secrets.baseline"
Progress = Callable[[int, int], None]
_GIT = ("git", "-c", "core.quotepath=off")
_LOG = (
    "log",
    "-p",
    "-U0",
    "--no-color",
    "--no-ext-diff",
    "--no-renames",
    "--no-textconv",
    "--text",  # else a file git calls binary shows as "Binary files differ" alone, unread
    "--cc",  # merges: only what the merge itself added (conflict resolutions)
    "--reverse",
    "--format=%x00%H",
)


class Mode(enum.StrEnum):
    """What a scan reads: the tracked tree, the commits of a range, or every commit."""

    TREE = "tree"
    RANGE = "range"
    HISTORY = "history"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretFinding:
    """One potential secret: where it is and a hash of it, never the value."""

    file: str
    line: int
    type: str
    hashed_secret: str
    commit: str | None = None
    baseline_hash: str = ""  # detect-secrets' own hash, as its baselines record it
    known: bool = False  # listed in the baseline: audited, does not fail
    waived: bool = False
    pinned: bool = False  # a commit id pinning an action or a pre-commit hook: not a secret

    @property
    def failing(self) -> bool:
        """True when this finding fails the scan."""
        return not (self.known or self.waived)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the hash, never the value)."""
        return {
            "file": self.file,
            "line": self.line,
            "type": self.type,
            "commit": self.commit,
            "hashed_secret": self.hashed_secret,
            "known": self.known,
            "waived": self.waived,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanReport:
    """The outcome of one scan; ``bool(report)`` is False when it fails."""

    mode: Mode
    since: str | None = None
    scanned: int = 0  # files (tree) or commits (range, history)
    findings: tuple[SecretFinding, ...] = ()
    expired: tuple[str, ...] = ()
    duration_s: float = 0.0

    @property
    def failing(self) -> list[SecretFinding]:
        """The findings that are neither in the baseline nor waived."""
        return [f for f in self.findings if f.failing]

    def __bool__(self) -> bool:
        """True when nothing unwaived was found and no matching waiver has expired."""
        return not self.failing and not self.expired

    def summary(self) -> str:
        """One line: what was scanned and what was found."""
        unit = "file(s)" if self.mode is Mode.TREE else "commit(s)"
        where = f"{self.scanned} {unit}" + (f" in {self.since}..HEAD" if self.since else "")
        known = sum(f.known for f in self.findings)
        waived = sum(f.waived and not f.known for f in self.findings)
        parts = [f"{len(self.failing)} secret(s) found in {where}"]
        if known:
            parts.append(f"{known} in the baseline")
        if waived:
            parts.append(f"{waived} waived")
        if self.expired:
            parts.append(f"{len(self.expired)} expired waiver(s)")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (without the schema, which the writer adds)."""
        return {
            "mode": self.mode.value,
            "since": self.since,
            "scanned": self.scanned,
            "passed": bool(self),
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
            "expired_waivers": list(self.expired),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanOptions:
    """What to scan and against which baseline."""

    repo: Path
    mode: Mode = Mode.TREE
    since: str | None = None
    baseline: Path | None = None  # None: <repo>/.secrets.baseline when it exists
    waivers: tuple[Waiver, ...] = ()
    today: dt.date = field(default_factory=dt.date.today)
    extra_files: tuple[Path, ...] = ()  # scanned too (fault injection plants one)
    # tree mode: exactly these files (relative to the repo), as listed by tree_files when the
    # gate cache keyed them; None: list them now
    files: tuple[str, ...] | None = None
    # drop commit ids pinning an action (uses: o/r@SHA) or a pre-commit hook (rev: SHA)
    ignore_pinned_commits: bool = True


def repo_root(runner: Runner, path: Path) -> Path:
    """The top folder of the git checkout at ``path``; UsageError when it is not one."""
    if not path.is_dir():
        msg = f"{path} is not a folder; pass --repo with a git checkout"
        raise UsageError(msg)
    try:  # unmasked: a masked path would name a folder that does not exist
        top = "".join(runner.lines([*_GIT, "rev-parse", "--show-toplevel"], cwd=path)).strip()
    except ToolError:
        top = ""
    if not top:
        msg = f"{path} is not a git repository; pass --repo with a git checkout"
        raise UsageError(msg)
    return Path(top)


def verify_rev(runner: Runner, root: Path, rev: str) -> None:
    """UsageError unless ``rev`` names a commit of the repository at ``root``."""
    done = runner.run([*_GIT, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=root)
    if rev.startswith("-") or not done:
        msg = f"--since {rev!r} is not a commit in {root}; pass a branch, tag or commit id"
        raise UsageError(msg)


def load_baseline(path: Path) -> dict[str, Any]:
    """The parsed detect-secrets baseline; UsageError when it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not valid JSON"
        msg = (
            f"cannot read the secrets baseline {path} ({reason}); fix it or regenerate it "
            "with `detect-secrets scan > .secrets.baseline`"
        )
        raise UsageError(msg) from None
    if not isinstance(data, dict) or not isinstance(data.get("results", {}), dict):
        msg = f"{path} is not a detect-secrets baseline (no results table); regenerate it"
        raise UsageError(msg)
    return data


def known_hashes(baseline: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(file, hashed_secret) of the baseline's audited entries that are not real secrets."""
    known = set()
    for file, items in baseline.get("results", {}).items():
        for item in items if isinstance(items, list) else []:
            # an entry audited as a real secret stays a failure until it is removed
            if isinstance(item, dict) and item.get("is_secret") is not True:
                known.add((str(file), str(item.get("hashed_secret", ""))))
    return known


@contextmanager
def _settings(baseline: Mapping[str, Any] | None, *, files_exist: bool) -> Iterator[None]:
    """detect-secrets' plugins and filters: the baseline's, or all plugins and default filters."""
    # detect-secrets is imported late: it lives in the security group, not in every session
    from detect_secrets.settings import (  # noqa: PLC0415
        default_settings,
        get_filters,
        transient_settings,
    )

    if baseline and "plugins_used" in baseline:
        config = {k: baseline[k] for k in ("plugins_used", "filters_used") if k in baseline}
        manager = transient_settings(config)
    else:
        manager = default_settings()
    with manager as settings:
        if not files_exist:  # history: the file may be gone from the tree
            settings.disable_filters("detect_secrets.filters.common.is_invalid_file")
        get_filters.cache_clear()
        yield


def scan(options: ScanOptions, runner: Runner, progress: Progress | None = None) -> ScanReport:
    """Scan what ``options`` asks for and judge the findings against baseline and waivers."""
    start = time.monotonic()
    root = repo_root(runner, options.repo)
    baseline_path = options.baseline or root / BASELINE
    baseline: dict[str, Any] | None = None
    if options.baseline is not None or baseline_path.exists():
        baseline = load_baseline(baseline_path)
    if options.mode is Mode.RANGE:
        if not options.since:
            raise UsageError("a range scan needs --since REV")
        verify_rev(runner, root, options.since)
    with _settings(baseline, files_exist=options.mode is Mode.TREE):
        if options.mode is Mode.TREE:
            skip = {_relative(baseline_path, root)}
            scanned, found = scan_tree(runner, root, skip=skip, files=options.files)
        else:
            revs = ["--all"] if options.mode is Mode.HISTORY else [f"{options.since}..HEAD"]
            skip = {_relative(baseline_path, root)}
            scanned, found = scan_log(runner, root, revs, progress, skip=skip)
        # fault injection: CI_INJECT_FAULT=secrets scans a planted file too
        extra = [_relative(path, root) or str(path) for path in options.extra_files]
        extra_scanned, extra_found = scan_files(root, extra)
        scanned, found = scanned + extra_scanned, _unique([*found, *extra_found])
    if options.ignore_pinned_commits:
        found = [f for f in found if not f.pinned]
    known = known_hashes(baseline or {})
    judged = [
        replace(f, known=bool({(f.file, f.hashed_secret), (f.file, f.baseline_hash)} & known))
        for f in found
    ]
    verdict = judge_waivers(
        {f.hashed_secret for f in judged if not f.known}, options.waivers, options.today
    )
    judged = [replace(f, waived=f.hashed_secret in verdict.waived) for f in judged]
    return ScanReport(
        mode=options.mode,
        since=options.since if options.mode is Mode.RANGE else None,
        scanned=scanned,
        findings=tuple(judged),
        expired=tuple(verdict.expired_messages()),
        duration_s=time.monotonic() - start,
    )


def _relative(path: Path, root: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else ""


def tree_files(root: Path, runner: Runner) -> list[str]:
    """The tracked files of the working tree a tree scan reads (regular files, no symlinks)."""
    # unmasked: a file named after a secret env value must still be found and scanned
    listed = "".join(runner.lines([*_GIT, "ls-files", "-z"], cwd=root))
    return [
        name
        for name in listed.split("\0")
        if name and (root / name).is_file() and not (root / name).is_symlink()
    ]


def listed_tree(repo: Path, runner: Runner) -> tuple[Path, list[str]]:
    """The git top folder of ``repo`` and the files a tree scan of it reads (tree_files)."""
    root = repo_root(runner, repo)
    return root, tree_files(root, runner)


def scan_tree(
    runner: Runner,
    root: Path,
    skip: Iterable[str] = (),
    files: Sequence[str] | None = None,
) -> tuple[int, list[SecretFinding]]:
    """Scan ``files`` (default: tree_files) except ``skip``; (files, findings)."""
    listed = tree_files(root, runner) if files is None else files
    skipped = set(skip)
    return scan_files(root, [name for name in listed if name not in skipped])


def scan_files(root: Path, names: Iterable[str]) -> tuple[int, list[SecretFinding]]:
    """Scan the files ``names`` (relative to ``root``, or absolute); (files, findings).

    ToolError when a file could not be read: detect-secrets alone finds nothing in a file it
    cannot open (or that is gone) and says nothing, so the scan would vouch for it unread.
    """
    from detect_secrets.settings import get_plugins  # noqa: PLC0415 - see _settings

    listed = list(names)
    if not listed:  # the usual extra list: no probes to build
        return 0, []
    prefilter = Prefilter(get_plugins())
    findings = []
    scanned = 0
    unread: list[str] = []
    for name in listed:
        path = root / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            unread.append(f"{name} ({exc.strerror or type(exc).__name__})")
            continue
        scanned += 1
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:  # detect-secrets skips the whole file; read it as git log -p
            texts = data.decode("utf-8", "replace").splitlines()
            found = list(_scan_undecodable(path, texts, prefilter))
        else:
            found = list(scan_file(str(path), prefilter))
            if not path.exists():  # removed after our read: scan_file saw nothing
                unread.append(f"{name} (vanished while the scan ran)")
        for secret in found:
            text = _line_of(path, secret.line_number)
            findings.append(_finding(secret, name, secret.line_number, None, text))
    if unread:
        msg = (
            f"{len(unread)} file(s) could not be read, so the scan cannot vouch for them: "
            f"{', '.join(unread)}; make them readable (or remove them) and scan again"
        )
        raise ToolError(msg)
    return scanned, _unique(findings)


def _scan_undecodable(path: Path, texts: Sequence[str], prefilter: Prefilter) -> Iterator[Any]:
    """The range scan's line loop over a file that is not UTF-8 (decoded with replacement)."""
    from detect_secrets.core.scan import _is_filtered_out  # noqa: PLC0415 - see _settings

    if _is_filtered_out(required_filter_parameters=["filename"], filename=str(path)):
        return
    yield from scan_lines(texts, every_plugin(prefilter.candidates(texts)), str(path))


def _line_of(path: Path, number: int) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for index, line in enumerate(handle, start=1):
                if index == number:
                    return line
    except OSError:
        pass
    return ""


def scan_log(
    runner: Runner,
    root: Path,
    revs: Sequence[str],
    progress: Progress | None = None,
    skip: Iterable[str] = (),
) -> tuple[int, list[SecretFinding]]:
    """Scan the lines added by the commits of ``revs`` (one ``git log -p``); (commits, findings)."""
    from detect_secrets.settings import get_plugins  # noqa: PLC0415 - see _settings

    total = 0
    if progress is not None:
        counted = runner.run([*_GIT, "rev-list", "--count", *revs], cwd=root)
        total = int(counted.stdout.strip() or 0) if counted else 0
    wanted = Prefilter(get_plugins())
    skipped: dict[str, bool] = dict.fromkeys(skip, True)  # the baseline lists hashes
    findings: list[SecretFinding] = []
    batch: list[AddedLines] = []
    size = commits = 0

    def flush() -> None:
        # one prefilter pass over many hunks: per-call costs dominate on small commits
        texts = [text for hunk in batch for _, text in hunk.lines]
        starts = list(itertools.accumulate((len(hunk.lines) for hunk in batch), initial=0))
        local: dict[int, list[int]] = {}
        for index in wanted.candidates(texts):
            owner = bisect.bisect_right(starts, index) - 1
            local.setdefault(owner, []).append(index - starts[owner])
        for owner in sorted(local):  # history order: the first finding names the introducer
            findings.extend(_scan_hunk(batch[owner], local[owner], skipped))
        batch.clear()

    for hunk in added_lines(runner.lines([*_GIT, *_LOG, *revs, "--"], cwd=root)):
        if not hunk.file:  # a commit starts
            commits += 1
            if progress is not None and commits % 100 == 0:
                progress(commits, total)
            continue
        if _filtered_out(hunk.file, skipped):
            continue  # before the prefilter: a big image or archive costs nothing
        batch.append(hunk)
        size += len(hunk.lines)
        if size >= _BATCH_LINES:
            flush()
            size = 0
    flush()
    if progress is not None:
        progress(commits, total)
    return commits, _unique(findings)


_BATCH_LINES = 2000


def _scan_hunk(
    hunk: AddedLines, candidates: list[int], skipped: dict[str, bool]
) -> Iterator[SecretFinding]:
    """Run detect-secrets on the candidate lines of one hunk (unless its file is filtered)."""
    if _filtered_out(hunk.file, skipped):
        return
    texts = [text for _, text in hunk.lines]
    for secret in scan_lines(texts, every_plugin(candidates), hunk.file):
        number = hunk.lines[secret.line_number - 1][0]
        yield _finding(secret, hunk.file, number, hunk.commit, texts[secret.line_number - 1])


def _filtered_out(file: str, skipped: dict[str, bool]) -> bool:
    """True for a file detect-secrets' filename filters exclude (as the tree scan does)."""
    from detect_secrets.core.scan import _is_filtered_out  # noqa: PLC0415 - see _settings

    if file not in skipped:
        skipped[file] = _is_filtered_out(required_filter_parameters=["filename"], filename=file)
    return skipped[file]


def scan_lines(
    texts: Sequence[str], plan: Iterable[tuple[int, Sequence[Any]]], filename: str
) -> Iterator[Any]:
    """detect-secrets' line loop over the planned lines only, with the whole text as context.

    ``plan`` pairs a line's index with the plugins to run on it (Prefilter.plan), in order.
    """
    from detect_secrets.core.scan import _is_filtered_out, _scan_line  # noqa: PLC0415
    from detect_secrets.util.code_snippet import get_code_snippet  # noqa: PLC0415

    lines = list(texts)
    for index, plugins in plan:
        number = index + 1
        line = lines[index].rstrip()
        context = get_code_snippet(lines=lines, line_number=number)
        if _is_filtered_out(
            required_filter_parameters=["line"], filename=filename, line=line, context=context
        ):
            continue
        for plugin in plugins:
            for secret in _scan_line(
                plugin=plugin, filename=filename, line=line, line_number=number, context=context
            ):
                if not _is_filtered_out(
                    required_filter_parameters=["context"],
                    filename=secret.filename,
                    secret=secret.secret_value,
                    plugin=plugin,
                    line=line,
                    context=context,
                ):
                    yield secret


def every_plugin(candidates: Iterable[int]) -> Iterator[tuple[int, Sequence[Any]]]:
    """A plan that runs every plugin on each of ``candidates``."""
    from detect_secrets.settings import get_plugins  # noqa: PLC0415 - see _settings

    plugins = get_plugins()
    return ((index, plugins) for index in candidates)


def scan_file(filename: str, prefilter: Prefilter) -> Iterator[Any]:
    """detect-secrets' ``scan_file``, run only on the lines and plugins the prefilter plans.

    The same steps in the same order: the file filters, then the lines as detect-secrets'
    transformers (INI, YAML) or a plain read give them, and only when those find nothing
    the eager transformers' lines. Yields what ``scan_file`` would, in its order.
    """
    from detect_secrets.core.scan import (  # noqa: PLC0415 - see _settings
        _get_lines_from_file,
        _is_filtered_out,
    )

    if not prefilter.plugins:
        return
    if _is_filtered_out(required_filter_parameters=["filename"], filename=filename):
        return
    found = False
    try:
        for lines in _get_lines_from_file(filename):
            for secret in scan_lines(lines, prefilter.plan(lines, filename), filename):
                found = True
                yield secret
            if found:
                break
    except OSError:  # as detect-secrets: scan_files reports what it could not read
        return


SHORT_SECRET = 8


def _finding(
    secret: Any,  # noqa: ANN401 - detect-secrets' PotentialSecret is untyped
    file: str,
    line: int,
    commit: str | None,
    text: str,
) -> SecretFinding:
    return SecretFinding(
        file=file,
        line=int(line),
        type=str(secret.type),
        hashed_secret=secret_hash(str(secret.type), str(secret.secret_value or ""), text),
        baseline_hash=str(secret.secret_hash),
        commit=commit,
        pinned=pinned_commit(str(secret.secret_value or ""), text),
    )


_PINNED = (
    re.compile(r"^\s*(?:-\s*)?uses:\s*[\"']?[\w.\-/]+@(?P<sha>[0-9a-f]{40})[\"']?\s*(?:#.*)?$"),
    re.compile(r"^\s*(?:-\s*)?rev:\s*[\"']?(?P<sha>[0-9a-f]{40})[\"']?\s*(?:#.*)?$"),
)


def pinned_commit(value: str, line: str) -> bool:
    """True when ``value`` is the commit id a ``uses: owner/repo@SHA`` or ``rev: SHA`` pins."""
    for pattern in _PINNED:
        match = pattern.match(line.rstrip("\r\n"))
        if match and match["sha"] == value:
            return True
    return False


def secret_hash(kind: str, value: str, line: str) -> str:
    """detect-secrets' SHA-1 of the value, or of the whole line when the value is too short.

    Some plugins capture only a prefix (the GitHub token plugin yields ``ghp``), so every
    such token would share one hash, and one waiver or baseline entry would cover them all.
    """
    if len(value) >= SHORT_SECRET:
        return hashlib.sha1(value.encode("utf-8")).hexdigest()  # noqa: S324 - not for security
    salted = f"{kind}\0{line.strip()}"
    return hashlib.sha1(salted.encode("utf-8")).hexdigest()  # noqa: S324 - an identifier


def _unique(findings: Iterable[SecretFinding]) -> list[SecretFinding]:
    """The first occurrence of each (file, type, hash): in history order, the introducing commit."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.file, finding.type, finding.hashed_secret)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


@dataclass(frozen=True, slots=True, kw_only=True)
class AddedLines:
    """The lines one commit added to one file, with their line numbers in the new file."""

    commit: str
    file: str
    lines: tuple[tuple[int, str], ...]


def added_lines(log: Iterable[str]) -> Iterator[AddedLines]:
    """Group the added lines of ``git log -p -U0 --cc --format=%x00%H`` by commit and file.

    Each commit starts with an item without a file, so callers can count commits. In a
    merge's combined diff only lines new against every parent (``++``) count as added:
    the others came from a parent's own commit, scanned there.
    """
    commit = file = ""
    lines: list[tuple[int, str]] = []
    parents = number = 0
    in_hunk = False
    for raw in log:
        line = raw.rstrip("\n")
        # inside a hunk every line starts with a column per parent: " ", "+" or "-"
        if in_hunk and line[:1] in {" ", "+", "-", "\\"} and line:
            prefix = line[:parents]
            if line.startswith("\\") or "-" in prefix:
                continue  # "\ No newline at end of file", or a removed line
            if prefix == "+" * parents:
                lines.append((number, line[parents:]))
            number += 1
            continue
        in_hunk = False
        if line.startswith("\0"):
            if lines:
                yield AddedLines(commit=commit, file=file, lines=tuple(lines))
            commit, file, lines = line[1:].strip(), "", []
            yield AddedLines(commit=commit, file="", lines=())
        elif line.startswith("diff "):
            if lines:
                yield AddedLines(commit=commit, file=file, lines=tuple(lines))
            file, lines = "", []
        elif line.startswith("+++ "):
            target = _unquote(line[4:])
            file = target[2:] if target.startswith("b/") else ""
        elif line.startswith("@@"):
            parents = len(line) - len(line.lstrip("@")) - 1
            number, in_hunk = _new_start(line), True
    if lines:
        yield AddedLines(commit=commit, file=file, lines=tuple(lines))


def _new_start(header: str) -> int:
    """The first new-file line number of a hunk header (``@@ -a,b +c,d @@`` or ``@@@ ...``)."""
    for part in header.split(" ")[1:]:
        if part.startswith("+"):
            return int(part[1:].partition(",")[0])
    return 1


def _unquote(name: str) -> str:
    """A path as git prints it, with C-style quoting undone."""
    name = name.rstrip("\t")
    if not (name.startswith('"') and name.endswith('"')):
        return name
    raw = name[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def render_text(report: ScanReport) -> str:
    """Human-readable lines: one per finding not in the baseline, then the summary."""
    lines = []
    for f in report.findings:
        if f.known:
            continue  # audited already: counted in the summary
        where = f"{f.file}:{f.line}" + (f" (commit {f.commit[:12]})" if f.commit else "")
        state = " [waived]" if f.waived else ""
        lines.append(f"{where}: {f.type} (hash {f.hashed_secret[:12]}){state}")
    lines.extend(report.expired)
    lines.append(f"secrets: {report.summary()}")
    return "\n".join(lines) + "\n"


def render_markdown(report: ScanReport) -> str:
    """A step-summary section."""
    icon = "passed" if report else "failed"
    lines = [f"### Secrets ({report.mode.value}): {icon}", "", report.summary(), ""]
    if report.findings:
        lines += ["| file | line | type | commit | status |", "|---|---|---|---|---|"]
        for f in report.findings:
            state = "baseline" if f.known else "waived" if f.waived else "**new**"
            commit = f"`{f.commit[:12]}`" if f.commit else ""
            lines.append(f"| `{f.file}` | {f.line} | {f.type} | {commit} | {state} |")
        lines.append("")
    lines += [f"- {message}" for message in report.expired]
    return "\n".join(lines) + "\n"


def sarif_log(report: ScanReport) -> dict[str, Any]:
    """A SARIF 2.1.0 log for GitHub code scanning."""
    results = [
        sarif.result(
            rule_id=f.type,
            message=f"potential secret ({f.type})"
            + (f" added in commit {f.commit}" if f.commit else ""),
            level="note" if not f.failing else "error",
            file=f.file,
            line=f.line,
            fingerprint=f.hashed_secret,
            suppressed=not f.failing,
        )
        for f in report.findings
    ]
    rules = sorted({f.type for f in report.findings})
    return sarif.log("noxgate-secrets", rules, results)


def gate_findings(report: ScanReport) -> tuple[Finding, ...]:
    """The scan's findings as gate findings: rule is the secret type; hash, never the value."""
    found = [
        Finding(
            rule=f.type,
            message=f"potential secret (hash {f.hashed_secret[:12]})"
            + (f" added in commit {f.commit[:12]}" if f.commit else ""),
            file=f.file,
            line=f.line,
            severity="high",
            waived=not f.failing,
        )
        for f in report.findings
    ]
    found += [Finding(rule="waiver-expired", message=m) for m in report.expired]
    return tuple(found)


def gate_result(report: ScanReport, artifacts: Sequence[str] = ()) -> GateResult:
    """The gate record of a scan."""
    return GateResult(
        gate="secrets",
        status=GateStatus.PASSED if report else GateStatus.FAILED,
        duration_s=report.duration_s,
        summary=report.summary(),
        findings=gate_findings(report),
        artifacts=tuple(artifacts),
    )


def options_from_gate_args(ctx: GateContext, args: Sequence[str]) -> ScanOptions:
    """ScanOptions for ``python -m ci gate secrets [--since REV | --history]``."""
    mode, since = Mode.TREE, None
    rest = list(args)
    if rest == ["--history"]:
        mode = Mode.HISTORY
    elif len(rest) == 2 and rest[0] == "--since":
        mode, since = Mode.RANGE, rest[1]
    elif rest:
        msg = f"gate secrets takes --since REV or --history, not {' '.join(rest)!r}"
        raise UsageError(msg)
    return ScanOptions(
        repo=ctx.root,
        mode=mode,
        since=since,
        waivers=ctx.config.waivers,
        today=ctx.clock.today(),
        ignore_pinned_commits=ctx.config.gate("secrets").ignore_pinned_commits,
    )


FORMATS = ("text", "json", "sarif", "markdown")


def render(report: ScanReport, fmt: str) -> str:
    """The report in ``fmt`` (one of FORMATS)."""
    if fmt == "json":
        return json.dumps({"schema": 1, **report.to_dict()}, indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(sarif_log(report), indent=2) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report)


def run(ctx: GateContext, args: Sequence[str] = ()) -> GateResult:
    """The secrets gate: scan, print, write SARIF and markdown next to the gate record."""
    options = options_from_gate_args(ctx, args)
    if options.mode is Mode.TREE and ctx.scan is not None:
        options = replace(options, files=ctx.scan)  # exactly what the cache key covers
    # fault injection: CI_INJECT_FAULT=secrets plants a key for the scan to find
    with faults.secret_paths(ctx.reports / "faults", ctx.env) as planted:
        report = scan(replace(options, extra_files=tuple(planted)), ctx.runner)
    print(render_text(report), end="")
    artifacts = ctx.write_reports(
        {"secrets.sarif": render(report, "sarif"), "secrets.md": render(report, "markdown")}
    )
    return gate_result(report, artifacts)


GATE = Gate(
    name="secrets",
    session="security",
    doc="Secrets: keys and tokens in the tracked tree (or a commit range).",
    run=run,
    group="security",
    inputs=GateInputs(
        lister=listed_tree,
        extra_files=(BASELINE,),
        tools=("detect-secrets",),
        config=("waivers",),
        daily=True,  # waivers expire
        args=False,
    ),
    options=frozenset({"ignore_pinned_commits"}),
    requires=("detect-secrets>=1.5",),
)
