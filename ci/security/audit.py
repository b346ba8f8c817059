"""The audit gate: pip-audit over the locked dependencies, with severities, waivers and a policy."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ci import __version__
from ci.core import uv as bundle_uv
from ci.core.config import SEVERITIES, Config, Waiver
from ci.core.errors import ToolError, UsageError
from ci.core.files import atomic_write_text
from ci.core.gate import (
    Finding,
    Gate,
    GateContext,
    GateInputs,
    GateResult,
    GateStatus,
    judge_waivers,
)
from ci.core.http import ApiError, HttpClient, Retry, parse_json, send
from ci.core.runner import Runner
from ci.security import sarif
from ci.security.advisories import AdvisoryDB, Record, Upstream, serving
from ci.testing import faults

OSV_API = "https://api.osv.dev"
DB_ENV = "CI_ADVISORY_DB"
UNREACHABLE = "the vulnerability service could not be reached; use --advisory-db for offline audits"
FORMATS = ("text", "json", "markdown", "cyclonedx", "sarif")
_NETWORK_SIGNS = (
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Max retries exceeded",
    "Failed to establish a new connection",
    "NameResolutionError",
    "Could not connect",
    "Temporary failure in name resolution",
)
# pip-audit errors about the requirements file itself: bad input, not a broken tool
_INPUT_SIGNS = ("not pinned", "invalid specifier", "Invalid requirement", "requirement file")
# GHSA and OSV label words, mapped onto the policy scale
_LABELS = {"low": "low", "moderate": "medium", "medium": "medium", "high": "high"}
_LABELS |= {"critical": "critical"}

Fetch = Callable[[str], "Record | None"]


def rank(severity: str) -> int:
    """The position of ``severity`` on low < medium < high < critical."""
    return SEVERITIES.index(severity)


def label_of_score(score: float) -> str:
    """The CVSS qualitative rating of a base score (0.0 counts as low)."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


@dataclass(frozen=True, slots=True, kw_only=True)
class Severity:
    """How bad an advisory is, and where that came from."""

    label: str  # low | medium | high | critical | unknown
    score: float | None = None
    vector: str | None = None
    source: str = "none"  # cvss | label | none


def cvss_score(kind: str, vector: str) -> float | None:
    """The base score of a CVSS v2/v3/v4 vector, or None when it does not parse."""
    import cvss  # noqa: PLC0415 - the cvss library lives in the security group

    classes = {"CVSS_V2": cvss.CVSS2, "CVSS_V3": cvss.CVSS3, "CVSS_V4": cvss.CVSS4}
    if kind not in classes:
        return None
    try:
        scored = classes[kind](vector)
    except cvss.CVSSError:
        return None
    base = scored.base_score if kind == "CVSS_V4" else scored.scores()[0]
    return float(base)


def severity_of(records: Iterable[Mapping[str, Any]]) -> Severity:
    """The highest CVSS-scored severity over ``records``, else their labels, else unknown."""
    best: Severity | None = None
    labels: list[str] = []
    for record in records:
        entries = list(record.get("severity") or [])
        for affected in record.get("affected") or []:
            entries += affected.get("severity") or []
            for key in ("ecosystem_specific", "database_specific"):
                labels.append(str((affected.get(key) or {}).get("severity", "")))
        labels.append(str((record.get("database_specific") or {}).get("severity", "")))
        for entry in entries:
            kind, vector = str(entry.get("type", "")), str(entry.get("score", ""))
            score = cvss_score(kind, vector)
            if score is not None and (best is None or (best.score or 0) < score):
                best = Severity(
                    label=label_of_score(score), score=score, vector=vector, source="cvss"
                )
    if best is not None:
        return best
    known = [_LABELS[x.lower()] for x in labels if x.lower() in _LABELS]
    if known:
        return Severity(label=max(known, key=rank), source="label")
    return Severity(label="unknown")


@dataclass(frozen=True, slots=True, kw_only=True)
class Vulnerability:
    """One advisory against one pinned package."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()
    description: str = ""
    severity: Severity = field(default_factory=lambda: Severity(label="unknown"))
    counts_as: str = "high"  # the severity the policy judges (unknown -> unknown_severity)
    waived: bool = False
    markers: str = ""  # the pin's environment markers in the lock ("" = every environment)
    pythons: tuple[str, ...] | None = None  # the [tool.ci] pythons it applies to (None: all)

    @property
    def where(self) -> str:
        """`` (Python 3.11: python_version < '3.12')`` for a pin limited by markers, else ``""``."""
        if not self.markers:
            return ""
        which = ", ".join(self.pythons or ()) or "none of the configured"
        return f" (Python {which}: {self.markers})"

    @property
    def ids(self) -> tuple[str, ...]:
        """The id and every alias."""
        return (self.id, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "package": self.package,
            "version": self.version,
            "id": self.id,
            "aliases": list(self.aliases),
            "severity": self.severity.label,
            "score": self.severity.score,
            "vector": self.severity.vector,
            "severity_source": self.severity.source,
            "counts_as": self.counts_as,
            "fix_versions": list(self.fix_versions),
            "waived": self.waived,
            "description": self.description,
            "markers": self.markers,
            "pythons": list(self.pythons) if self.pythons is not None else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditReport:
    """The outcome of one audit; ``bool(report)`` is False when it fails."""

    source: str  # what was audited: uv.lock or a requirements file
    service: str  # the OSV endpoint or the local database
    fail_on: str
    dependencies: tuple[tuple[str, str], ...] = ()
    skipped: tuple[str, ...] = ()
    findings: tuple[Vulnerability, ...] = ()
    expired: tuple[str, ...] = ()
    duration_s: float = 0.0

    @property
    def failing(self) -> list[Vulnerability]:
        """Unwaived findings at or above ``fail_on``."""
        return [
            f for f in self.findings if not f.waived and rank(f.counts_as) >= rank(self.fail_on)
        ]

    def __bool__(self) -> bool:
        """True when nothing fails the policy and no matching waiver has expired."""
        return not self.failing and not self.expired

    def summary(self) -> str:
        """One line: what was audited and what was found."""
        packages = len({f.package for f in self.findings})
        parts = [
            f"{len(self.findings)} vulnerabilit{'y' if len(self.findings) == 1 else 'ies'} "
            f"in {packages} of {len(self.dependencies)} package(s)",
            f"{len(self.failing)} at or above {self.fail_on}",
        ]
        waived = sum(f.waived for f in self.findings)
        if waived:
            parts.append(f"{waived} waived")
        if self.expired:
            parts.append(f"{len(self.expired)} expired waiver(s)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (without the schema, which the writer adds)."""
        return {
            "source": self.source,
            "service": self.service,
            "fail_on": self.fail_on,
            "passed": bool(self),
            "summary": self.summary(),
            "dependencies": [{"name": n, "version": v} for n, v in self.dependencies],
            "skipped": list(self.skipped),
            "findings": [f.to_dict() for f in self.findings],
            "expired_waivers": list(self.expired),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditOptions:
    """What to audit, against what, and how strictly."""

    root: Path
    requirements: Path | None = None  # None: export uv.lock
    advisory_db: Path | None = None  # None: the OSV service
    osv_api: str = OSV_API
    fail_on: str = "high"
    unknown_severity: str = "high"
    waivers: tuple[Waiver, ...] = ()
    today: dt.date = field(default_factory=dt.date.today)
    timeout_s: float = 600.0
    extra_pins: tuple[str, ...] = ()  # audited too (fault injection adds one)
    pythons: tuple[str, ...] = ()  # [tool.ci] pythons: which of them each pin applies to
    uv: str = "uv"  # the bundle's uv (ci.core.uv), not one a project's venv puts on PATH


def resolve_db(cli: str | None, env: Mapping[str, str], config: Config, cwd: Path) -> Path | None:
    """The advisory database: --advisory-db, else $CI_ADVISORY_DB, else config; checked to exist."""
    if cli:
        path, origin = cwd / cli, "--advisory-db"
    elif env.get(DB_ENV):
        path, origin = config.root / env[DB_ENV], DB_ENV
    elif config.advisory_db:
        path, origin = config.root / config.advisory_db, "[tool.ci] advisory_db"
    else:
        return None
    if not path.is_dir():
        msg = (
            f"advisory database {path} (from {origin}) does not exist; point it at a folder "
            "of OSV records such as a checkout of pypa/advisory-database/vulns"
        )
        raise UsageError(msg)
    return path.resolve()


def export_locked(runner: Runner, root: Path, target: Path, *, uv: str = "uv") -> None:
    """Write uv.lock's pinned dependencies (with hashes and markers) to ``target`` (with ``uv``)."""
    if not (root / "uv.lock").is_file():
        msg = f"{root / 'uv.lock'} does not exist; run `uv lock` or pass --requirements FILE"
        raise UsageError(msg)
    argv = [uv, "export", "--frozen", "--format", "requirements.txt", "--all-groups"]
    argv += ["--all-extras", "--no-emit-project", "--no-emit-workspace", "--no-emit-local"]
    done = runner.run([*argv, "--no-header", "--output-file", str(target)], cwd=root)
    if not done:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        msg = f"uv export failed (exit status {done.returncode}): {tail[0]}"
        raise ToolError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    """One ``name==version`` of a requirements file, with its markers and hash options."""

    name: str  # canonical
    version: str
    markers: str
    line: str  # the requirement without markers, hashes on continuation lines


def read_pins(text: str) -> tuple[list[str], list[Pin]]:
    """The option lines and the pins of a requirements file (comments dropped)."""
    options, pins = [], []
    for logical in _logical_lines(text):
        head, *hashes = re.split(r"\s+(?=--hash[=\s])", logical)
        if head.startswith("-"):
            options.append(logical)
            continue
        try:
            req = Requirement(head)
        except InvalidRequirement:
            options.append(logical)  # passed on as is: pip-audit names what it cannot read
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in {"==", "==="}:
            options.append(logical)
            continue
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        line = " \\\n    ".join([f"{req.name}{extras}=={specs[0].version}", *hashes])
        pins.append(
            Pin(
                name=canonicalize_name(req.name),
                version=specs[0].version,
                markers=str(req.marker) if req.marker else "",
                line=line,
            )
        )
    return options, pins


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if stripped.endswith("\\"):
            current += stripped[:-1].strip() + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def layers(pins: Sequence[Pin]) -> list[list[Pin]]:
    """Pins in files pip-audit accepts: each holds at most one version of a package.

    A lock that forks a package by Python version (or platform) pins it twice; pip-audit
    refuses duplicate names, so the Nth version of every package goes to the Nth file.
    """
    seen: dict[str, list[str]] = {}
    out: list[list[Pin]] = []
    for pin in pins:
        versions = seen.setdefault(pin.name, [])
        if pin.version in versions:
            continue  # the same version under other markers: one audit covers it
        versions.append(pin.version)
        while len(out) < len(versions):
            out.append([])
        out[len(versions) - 1].append(pin)
    return out or [[]]


def applies_to(markers: str, pythons: Sequence[str]) -> tuple[str, ...] | None:
    """The ``pythons`` a pin with ``markers`` is installed on (on any platform); None: all."""
    if not markers:
        return None
    marker = Marker(markers)
    found = []
    for python in pythons:
        for platform, system, os_name in _PLATFORMS:
            env = {
                "python_version": python,
                "sys_platform": platform,
                "platform_system": system,
                "os_name": os_name,
                "extra": "",
            }
            if any(
                marker.evaluate({**env, "python_full_version": f"{python}.{patch}"})
                for patch in (0, 99)
            ):
                found.append(python)
                break
    return tuple(found)


_PLATFORMS = (
    ("linux", "Linux", "posix"),
    ("darwin", "Darwin", "posix"),
    ("win32", "Windows", "nt"),
)


def run_pip_audit(
    runner: Runner, requirements: Path, osv_url: str, cache: Path, timeout: float
) -> dict[str, Any]:
    """pip-audit's JSON for ``requirements`` against the OSV endpoint ``osv_url``."""
    argv = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps"]
    argv += ["--disable-pip", "-f", "json", "--progress-spinner", "off", "-s", "osv"]
    argv += ["--osv-url", osv_url, "--cache-dir", str(cache), "--timeout", "30"]
    done = runner.run(argv, timeout=timeout)
    output = done.stdout.strip()
    if done.returncode in {0, 1} and output.startswith("{"):
        try:
            data = json.loads(output)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("dependencies"), list):
            return data
    if any(sign in done.stderr for sign in _NETWORK_SIGNS):
        raise ToolError(UNREACHABLE)
    errors = [
        line.removeprefix("ERROR:").split(":", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("ERROR:")
    ]
    if errors and any(sign in errors[-1] for sign in _INPUT_SIGNS):
        msg = f"{errors[-1]}; fix the requirements file: one name==version per line"
        raise UsageError(msg)
    tail = errors[-1:] or [line for line in done.stderr.strip().splitlines() if line.strip()][-1:]
    msg = f"pip-audit failed (exit status {done.returncode}): {tail[0] if tail else 'no output'}"
    raise ToolError(msg)


def fetch_osv(
    api: str, http: HttpClient, *, retry: Retry | None = None, timeout: float = 30.0
) -> Fetch:
    """A fetcher of full records from an OSV API (``/v1/vulns/<id>``) through ``http``.

    Failures end as every HTTP call does (``ci.core.http``: unreachable, timed out or
    5xx after retries is exit 6), saying how to audit offline.
    """

    def fetch(vuln_id: str) -> Record | None:
        url = f"{api.rstrip('/')}/v1/vulns/{urllib.parse.quote(vuln_id, safe='')}"
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"the OSV API address {api!r} is not http(s)")
        what = f"reading {vuln_id} from the OSV API"
        try:
            answer = send(http, "GET", url, retry=retry, what=what, timeout=timeout, ok=(200, 404))
            data = None if answer.status == 404 else parse_json(answer, what)
        except ApiError as exc:
            msg = f"{exc}; use --advisory-db for offline audits"
            raise ApiError(msg, kind=exc.kind, status=exc.status, exhausted=exc.exhausted) from None
        return data if isinstance(data, dict) else None

    return fetch


def _markers(pins: Sequence[Pin]) -> dict[tuple[str, str], str]:
    """(name, version) -> its markers; a version pinned under several is joined with ``or``."""
    found: dict[tuple[str, str], list[str]] = {}
    for pin in pins:
        found.setdefault((pin.name, pin.version), []).append(pin.markers)
    joined = {}
    for key, each in found.items():
        unique = list(dict.fromkeys(each))
        if "" in unique:
            joined[key] = ""  # pinned for every environment somewhere
        elif len(unique) == 1:
            joined[key] = unique[0]
        else:
            joined[key] = " or ".join(f"({m})" for m in unique)
    return joined


def enrich(
    data: Mapping[str, Any],
    fetch: Fetch,
    options: AuditOptions,
    markers: Mapping[tuple[str, str], str] | None = None,
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], list[Vulnerability]]:
    """pip-audit's JSON turned into (dependencies, skipped, findings with severities)."""
    dependencies, skipped, found = [], [], []
    cache: dict[str, Record | None] = {}

    def record(vuln_id: str) -> Record | None:
        if vuln_id not in cache:
            cache[vuln_id] = fetch(vuln_id)
        return cache[vuln_id]

    for dep in data.get("dependencies", []):
        name, version = str(dep.get("name", "")), str(dep.get("version", ""))
        if dep.get("skip_reason"):
            skipped.append(f"{name}: {dep['skip_reason']}")
            continue
        dependencies.append((name, version))
        for vuln in dep.get("vulns", []):
            vuln_id = str(vuln["id"])
            aliases = tuple(str(a) for a in vuln.get("aliases", []))
            records = [r for r in (record(i) for i in (vuln_id, *aliases)) if r is not None]
            severity = severity_of(records)
            counts_as = options.unknown_severity if severity.label == "unknown" else severity.label
            where = (markers or {}).get((canonicalize_name(name), version), "")
            found.append(
                Vulnerability(
                    package=name,
                    version=version,
                    id=vuln_id,
                    aliases=aliases,
                    fix_versions=tuple(str(v) for v in vuln.get("fix_versions", [])),
                    description=str(vuln.get("description", "")),
                    severity=severity,
                    counts_as=counts_as,
                    markers=where,
                    pythons=applies_to(where, options.pythons),
                )
            )
    return tuple(dependencies), tuple(skipped), found


def _upstream_problem(upstream: Upstream | None) -> None:
    """Raise what the relay found wrong with the OSV API's answers, if anything."""
    if upstream is not None and upstream.problem:
        if upstream.unreachable:
            raise ToolError(UNREACHABLE)
        msg = (
            f"{upstream.problem}; the audit cannot vouch for any pin (retry, or use --advisory-db)"
        )
        raise ToolError(msg)


def _db_problem(db: AdvisoryDB | None) -> None:
    """Raise the damaged record the local database met while serving pip-audit, if any."""
    if db is not None and db.problem is not None:
        raise db.problem


def audit(options: AuditOptions, runner: Runner, http: HttpClient) -> AuditReport:
    """Export (or read) the pins, run pip-audit, score each advisory and apply the policy."""
    start = time.monotonic()
    # a folder without OSV records is refused before anything runs: served, it answers "none"
    db = AdvisoryDB(options.advisory_db) if options.advisory_db is not None else None
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ci-audit-")))
        if options.requirements is not None:
            if not options.requirements.is_file():
                what = "is a folder" if options.requirements.is_dir() else "does not exist"
                msg = f"{options.requirements} {what}; pass a pinned requirements file"
                raise UsageError(msg)
            requirements, source = options.requirements, str(options.requirements)
        else:
            requirements, source = scratch / "requirements.txt", "uv.lock"
            export_locked(runner, options.root, requirements, uv=options.uv)
        # an export of a lock without dependencies may write nothing at all
        text = requirements.read_text(encoding="utf-8") if requirements.is_file() else ""
        if options.extra_pins:  # fault injection: CI_INJECT_FAULT=audit adds a pin
            text = faults.add_pins(text, options.extra_pins)
        extra, pins = read_pins(text)
        files = []
        for number, layer in enumerate(layers(pins), start=1):
            # markers dropped: pip-audit would skip pins whose markers miss this interpreter
            path = scratch / f"requirements-{number}.txt"
            atomic_write_text(
                path, "".join(f"{line}\n" for line in [*extra, *(p.line for p in layer)])
            )
            files.append(path)
            extra = []  # options and unreadable lines go to the first file only
        if db is not None:
            api = stack.enter_context(serving(db))
            service = str(options.advisory_db)
            fetch: Fetch = db.get
            upstream = None
        else:
            # pip-audit reads a malformed answer as "no vulnerabilities": it asks through a
            # local relay that checks every answer of the real API first
            if not options.osv_api.startswith(("http://", "https://")):
                msg = f"the OSV API address {options.osv_api!r} is not http(s); fix CI_OSV_API"
                raise UsageError(msg)
            upstream = Upstream(options.osv_api, http)
            api, service = stack.enter_context(serving(upstream)), options.osv_api
            fetch = fetch_osv(options.osv_api, http)
        data: dict[str, Any] = {"dependencies": []}
        for path in files:
            try:
                done = run_pip_audit(
                    runner, path, f"{api}/v1/query", scratch / "cache", options.timeout_s
                )
            except ToolError:
                _upstream_problem(upstream)
                _db_problem(db)
                raise
            _upstream_problem(upstream)
            _db_problem(db)
            data["dependencies"] += done.get("dependencies", [])
        dependencies, skipped, found = enrich(data, fetch, options, _markers(pins))
    ids = {i for f in found for i in f.ids}
    verdict = judge_waivers(ids, options.waivers, options.today)
    findings = [replace(f, waived=any(i in verdict.waived for i in f.ids)) for f in found]
    return AuditReport(
        source=source,
        service=service,
        fail_on=options.fail_on,
        dependencies=dependencies,
        skipped=skipped,
        findings=tuple(findings),
        expired=tuple(verdict.expired_messages()),
        duration_s=time.monotonic() - start,
    )


def render_text(report: AuditReport) -> str:
    """Human-readable lines: one per finding, then the summary."""
    lines = []
    for f in report.findings:
        score = f" {f.severity.score:.1f}" if f.severity.score is not None else ""
        judged = f" (counts as {f.counts_as})" if f.severity.label == "unknown" else ""
        fix = f"; fixed in {', '.join(f.fix_versions)}" if f.fix_versions else "; no fix yet"
        state = " [waived]" if f.waived else ""
        lines.append(
            f"{f.package} {f.version}{f.where}: {f.id} {f.severity.label}{score}{judged}{fix}"
            f"{state}"
        )
    lines += report.expired
    lines += [f"skipped {s}" for s in report.skipped]
    lines.append(f"audit: {report.summary()} (source {report.source}, service {report.service})")
    return "\n".join(lines) + "\n"


def render_markdown(report: AuditReport) -> str:
    """A step-summary section."""
    verdict = "passed" if report else "failed"
    lines = [f"### Dependency audit: {verdict}", "", report.summary(), ""]
    if report.findings:
        lines += ["| package | version | id | severity | fixed in | status |"]
        lines += ["|---|---|---|---|---|---|"]
        for f in report.findings:
            score = f" ({f.severity.score:.1f})" if f.severity.score is not None else ""
            status = "waived" if f.waived else "**fails**" if f in report.failing else "reported"
            lines.append(
                f"| {f.package} | {f.version}{f.where} | {f.id} | {f.severity.label}{score} | "
                f"{', '.join(f.fix_versions) or '-'} | {status} |"
            )
        lines.append("")
    lines += [f"- {message}" for message in report.expired]
    return "\n".join(lines) + "\n"


def _purl(name: str, version: str) -> str:
    return f"pkg:pypi/{name.lower()}@{version}"


def cyclonedx(report: AuditReport, now: dt.datetime) -> dict[str, Any]:
    """A CycloneDX 1.5 JSON BOM of the audited pins and their vulnerabilities."""
    components = [
        {
            "type": "library",
            "bom-ref": _purl(n, v),
            "name": n,
            "version": v,
            "purl": _purl(n, v),
        }
        for n, v in report.dependencies
    ]
    vulns = []
    for f in report.findings:
        rating: dict[str, Any] = {"severity": f.severity.label}
        if f.severity.score is not None:
            rating |= {"score": f.severity.score, "vector": f.severity.vector}
            rating["method"] = _cvss_method(f.severity.vector or "")
        item: dict[str, Any] = {
            "id": f.id,
            "source": {"name": "OSV", "url": f"https://osv.dev/vulnerability/{f.id}"},
            "references": [{"id": a, "source": {"name": "alias"}} for a in f.aliases],
            "ratings": [rating],
            "description": f.description,
            "affects": [{"ref": _purl(f.package, f.version)}],
        }
        if f.fix_versions:
            item["recommendation"] = f"Upgrade {f.package} to {', '.join(f.fix_versions)}"
        if f.waived:
            item["analysis"] = {"state": "exploitable", "response": ["will_not_fix"]}
        vulns.append(item)
    body = json.dumps([components, vulns], sort_keys=True)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, body)}",
        "version": 1,
        "metadata": {
            "timestamp": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [{"type": "application", "name": "noxgate", "version": __version__}]
            },
        },
        "components": components,
        "vulnerabilities": vulns,
    }


def _cvss_method(vector: str) -> str:
    if vector.startswith("CVSS:4"):
        return "CVSSv4"
    if vector.startswith("CVSS:3.1"):
        return "CVSSv31"
    return "CVSSv3" if vector.startswith("CVSS:3") else "CVSSv2"


def sarif_log(report: AuditReport, root: Path) -> dict[str, Any]:
    """A SARIF 2.1.0 log: each finding at its pin in uv.lock or the requirements file."""
    source = Path(report.source) if report.source != "uv.lock" else root / "uv.lock"
    lines = _read_lines(source)
    uri = (
        source.resolve().relative_to(root.resolve()).as_posix()
        if source.resolve().is_relative_to(root.resolve())
        else source.as_posix()
    )
    levels = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
    results = [
        sarif.result(
            rule_id=f.id,
            message=f"{f.package} {f.version}{f.where} is affected by {f.id} ({f.severity.label})"
            + (f"; fixed in {', '.join(f.fix_versions)}" if f.fix_versions else ""),
            level=levels.get(f.counts_as, "error"),
            file=uri,
            line=_pin_line(lines, f.package),
            suppressed=f.waived,
        )
        for f in report.findings
    ]
    return sarif.log("noxgate-audit", sorted({f.id for f in report.findings}), results)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _pin_line(lines: Sequence[str], package: str) -> int | None:
    """The line that pins ``package`` (requirements ``name==`` or uv.lock ``name = "..."``)."""
    wanted = package.lower().replace("_", "-")
    for number, line in enumerate(lines, start=1):
        text = line.strip().lower().replace("_", "-")
        if text.startswith((f"{wanted}==", f'name = "{wanted}"')):
            return number
    return None


def render(report: AuditReport, fmt: str, *, root: Path, now: dt.datetime) -> str:
    """The report in ``fmt`` (one of FORMATS)."""
    if fmt == "json":
        return json.dumps({"schema": 1, **report.to_dict()}, indent=2) + "\n"
    if fmt == "cyclonedx":
        return json.dumps(cyclonedx(report, now), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(sarif_log(report, root), indent=2) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report)


def options_for(
    config: Config,
    env: Mapping[str, str],
    today: dt.date,
    *,
    cwd: Path,
    requirements: Path | None = None,
    advisory_db: str | None = None,
    fail_on: str | None = None,
) -> AuditOptions:
    """AuditOptions from flags, environment and ``[tool.ci]``."""
    policy = config.gate("audit")
    return AuditOptions(
        root=config.root,
        requirements=requirements,
        advisory_db=resolve_db(advisory_db, env, config, cwd),
        osv_api=(env.get("CI_OSV_API") or OSV_API).rstrip("/").removesuffix("/v1/query"),
        fail_on=fail_on or policy.fail_on,
        unknown_severity=policy.unknown_severity,
        waivers=config.waivers,
        today=today,
        pythons=config.pythons,
        uv=bundle_uv.find(env),
    )


def gate_result(report: AuditReport, artifacts: Sequence[str] = ()) -> GateResult:
    """The gate record of an audit."""
    findings = [
        Finding(
            rule=f.id,
            message=f"{f.package} {f.version}{f.where}"
            + (f", fixed in {', '.join(f.fix_versions)}" if f.fix_versions else ", no fix yet")
            + (f" (unscored, counts as {f.counts_as})" if f.severity.label == "unknown" else "")
            + ("" if f.waived or f in report.failing else f" (below fail_on {report.fail_on})"),
            file=report.source,
            severity=f.severity.label,
            waived=f.waived or f not in report.failing,
        )
        for f in report.findings
    ]
    findings += [Finding(rule="waiver-expired", message=m) for m in report.expired]
    return GateResult(
        gate="audit",
        status=GateStatus.PASSED if report else GateStatus.FAILED,
        duration_s=report.duration_s,
        summary=report.summary(),
        findings=tuple(findings),
        artifacts=tuple(artifacts),
    )


def run(ctx: GateContext, args: Sequence[str] = ()) -> GateResult:
    """The audit gate: audit uv.lock, print, write SARIF and markdown next to the gate record."""
    if args:
        msg = f"gate audit takes no arguments (got {' '.join(args)!r}); use `python -m ci audit`"
        raise UsageError(msg)
    options = options_for(ctx.config, ctx.env, ctx.clock.today(), cwd=ctx.root)
    # fault injection: CI_INJECT_FAULT=audit audits a vulnerable pin as well
    options = replace(options, extra_pins=faults.audit_pins(ctx.env))
    report = audit(options, ctx.runner, ctx.http)
    print(render_text(report), end="")
    now = ctx.clock.now()
    artifacts = ctx.write_reports(
        {
            "audit.sarif": render(report, "sarif", root=ctx.root, now=now),
            "audit.md": render(report, "markdown", root=ctx.root, now=now),
        }
    )
    return gate_result(report, artifacts)


GATE = Gate(
    name="audit",
    session="security",
    doc="Audit: the locked dependencies against the advisory database.",
    run=run,
    group="security",
    inputs=GateInputs(
        tools=("pip-audit", "cvss"),
        env=("CI_ADVISORY_DB", "CI_OSV_API"),
        config=("waivers", "advisory_db"),
        daily=True,  # advisories are published every day: a pass is good for one day at most
        args=False,
        folder_from=("CI_ADVISORY_DB", "advisory_db"),
    ),
    options=frozenset({"fail_on", "unknown_severity"}),
    requires=("pip-audit>=2.9", "cvss>=3.2", "PyYAML>=6"),
)
