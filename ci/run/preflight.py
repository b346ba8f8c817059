"""The checks before a gate run (lock, config, interpreters, tools) and before a release."""

from __future__ import annotations

import enum
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ci.core.config import Config, missing_secret_message, missing_secrets
from ci.core.errors import CIError, PreflightError
from ci.core.files import write_json
from ci.core.runner import Completed, Runner
from ci.gates import cache
from ci.gates.cache import GateCache
from ci.release import commits as history
from ci.release import notes
from ci.release import version as release_version
from ci.run import lockfile


class Status(enum.StrEnum):
    """The outcome of one check."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One preflight check: what was checked, how it went, and the error if it failed."""

    name: str
    status: Status
    detail: str
    error: CIError | None = None

    def __bool__(self) -> bool:
        """True unless the check failed."""
        return self.status is not Status.FAIL


REQUIRED_TOOLS = ("uv", "nox")


def gather(config: Config, runner: Runner) -> list[Check]:
    """Run every check of a plain (non-release) preflight and return their records."""
    where = str(config.path) if config.path else "defaults (no pyproject.toml)"
    checks = [Check(name="config", status=Status.OK, detail=f"[tool.ci] valid in {where}")]
    checks.extend(_lock_checks(config, runner))
    checks.extend(_python_checks(config, runner))
    checks.extend(_tool_checks(runner))
    return checks


def _lock_checks(config: Config, runner: Runner) -> list[Check]:
    try:
        info = lockfile.read(config.root)
    except PreflightError as exc:
        return [
            Check(name="uv.lock", status=Status.FAIL, detail=str(exc), error=exc),
            Check(name="uv.lock fresh", status=Status.SKIP, detail="no readable uv.lock"),
        ]
    present = Check(
        name="uv.lock",
        status=Status.OK,
        detail=f"{info.packages} packages, sha256 {info.sha256[:12]}",
    )
    try:
        lockfile.check_fresh(config.root, runner)
    except PreflightError as exc:
        return [
            present,
            Check(name="uv.lock fresh", status=Status.FAIL, detail=str(exc), error=exc),
        ]
    except CIError as exc:
        detail = f"could not run `uv lock --check`: {exc}"
        error = PreflightError(detail)
        return [
            present,
            Check(name="uv.lock fresh", status=Status.FAIL, detail=detail, error=error),
        ]
    fresh = Check(name="uv.lock fresh", status=Status.OK, detail="in sync with pyproject.toml")
    return [present, fresh]


def _python_checks(config: Config, runner: Runner) -> list[Check]:
    checks = []
    for version in config.pythons:
        found = _find_python(version, runner)
        default = version == config.default_python
        name = f"python {version}" + (" (default)" if default else "")
        if found:
            checks.append(Check(name=name, status=Status.OK, detail=found))
        elif default:
            detail = (
                f"Python {version} (the first of [tool.ci] pythons) was not found: install it "
                f"(e.g. `pyenv install {version}`) or put python{version} on PATH"
            )
            checks.append(
                Check(name=name, status=Status.FAIL, detail=detail, error=PreflightError(detail))
            )
        else:
            detail = "not found: `nox -s test` skips it here (and fails in CI)"
            checks.append(Check(name=name, status=Status.WARN, detail=detail))
    return checks


def _find_python(version: str, runner: Runner) -> str | None:
    if runner.which("uv") is None:
        return runner.which(f"python{version}")
    done = runner.run(
        ["uv", "python", "find", "--no-python-downloads", version],
        env={"UV_PYTHON_DOWNLOADS": "never"},
    )
    return done.stdout.strip() or None if done else None


def _tool_checks(runner: Runner) -> list[Check]:
    checks = []
    for tool in REQUIRED_TOOLS:
        path = runner.which(tool)
        if path:
            checks.append(Check(name=tool, status=Status.OK, detail=path))
        else:
            detail = f"{tool} is not on PATH: `pip install {tool}` (or run through `uv run`)"
            checks.append(
                Check(name=tool, status=Status.FAIL, detail=detail, error=PreflightError(detail))
            )
    return checks


def verdict(checks: Sequence[Check]) -> None:
    """Raise the error of the first failed check (exit 3), or return when all passed."""
    for check in checks:
        if check.error is not None:
            raise check.error


def render(checks: Sequence[Check]) -> str:
    """A short aligned table of the checks, one line each."""
    width = max((len(c.name) for c in checks), default=0)
    lines = ["preflight:"]
    for check in checks:
        lines.append(f"  {check.status.value:<4}  {check.name:<{width}}  {check.detail}")
    return "\n".join(lines)


def gather_release(
    config: Config, runner: Runner, env: Mapping[str, str], deploy_env: str | None = None
) -> list[Check]:
    """Every check of ``preflight --release``: the plain ones, then tree, tag, secrets."""
    checks = gather(config, runner)
    checks.append(_clean_tree_check(config, runner))
    release_checks, release = _release_checks(config, runner)
    checks.extend(release_checks)
    checks.extend(_one_release_tag_check(config, runner))
    if release is not None:
        checks.append(_version_proposal_check(config, runner, env, release))
    names = list(config.required_secrets)
    if config.signing is not None and config.signing.key_env is not None:
        names.append(config.signing.key_env)  # the release signs SHA256SUMS with it
    if deploy_env is not None and deploy_env in config.environments:
        names += config.environments[deploy_env].required_secrets
    checks.extend(_secret_checks(names, env))
    return checks


def _fail(name: str, detail: str) -> Check:
    return Check(name=name, status=Status.FAIL, detail=detail, error=PreflightError(detail))


def _git(config: Config, runner: Runner, *args: str) -> Completed:
    return runner.run(["git", *args], cwd=config.root)


def _clean_tree_check(config: Config, runner: Runner) -> Check:
    try:
        done = _git(config, runner, "status", "--porcelain", "--untracked-files=normal")
    except CIError as exc:
        return _fail("clean tree", f"could not run git: {exc}")
    if not done:
        detail = f"{config.root} is not a git repository: a release is built from a tagged commit"
        return _fail("clean tree", detail)
    changed = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if changed:
        shown = ", ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        detail = (
            f"the working tree is not clean ({shown}): commit or stash the changes, "
            "then tag the commit you release"
        )
        return _fail("clean tree", detail)
    return Check(name="clean tree", status=Status.OK, detail="no uncommitted or untracked files")


def _release_checks(
    config: Config, runner: Runner
) -> tuple[list[Check], release_version.Release | None]:
    """The release version (static or from the build backend) and the tag on HEAD that names it."""
    try:
        fmt = release_version.tag_format(config, runner)
        found = release_version.project_version(config, runner)
    except CIError as exc:
        failed = Check(name="release version", status=Status.FAIL, detail=str(exc), error=exc)
        return [failed], None
    problem = release_version.problem_with(found.version)
    if problem:
        return [_fail("release version", release_version.refusal(problem, found, fmt))], None
    checks = [Check(name="release version", status=Status.OK, detail=_shown(found))]
    try:
        on_head = release_version.tags_on_head(runner, config.root)
    except CIError as exc:
        return [*checks, _fail("release tag", f"could not run git: {exc}")], None
    match = release_version.match_head(found.version, on_head, fmt)
    if match.tag is None:
        return [*checks, _fail("release tag", match.problem or "no release tag on HEAD")], None
    detail = f"{match.tag} matches version {found.version} ({fmt.describe()})"
    checks.append(Check(name="release tag", status=Status.OK, detail=detail))
    release = release_version.Release(
        version=found.version, source=found.source, tag_format=fmt, tag=match.tag
    )
    return checks, release


def _shown(found: release_version.ProjectVersion) -> str:
    return f"{found.version} ({found.source})"


def _one_release_tag_check(config: Config, runner: Runner) -> list[Check]:
    """A failed check when HEAD carries more than one release tag (which one is released?)."""
    try:
        fmt = release_version.tag_format(config, runner)
        on_head = release_version.tags_on_head(runner, config.root)
    except CIError:
        return []  # the tag check has said so already
    versions = {t: fmt.version_of(t) for t in on_head}
    releases = sorted(
        (t for t, v in versions.items() if v is not None), key=lambda t: (versions[t], t)
    )
    if len(releases) < 2:  # one tag is the normal case
        return []
    detail = (
        f"HEAD carries {len(releases)} release tags ({', '.join(releases)}): a commit is one "
        "release; delete the tags that are wrong (git tag -d TAG, and on the remote) and rerun"
    )
    return [_fail("one release tag", detail)]


def _version_proposal_check(
    config: Config, runner: Runner, env: Mapping[str, str], release: release_version.Release
) -> Check:
    """Warn when the tagged version is lower than the commits since the last tag call for."""
    name = "version proposal"
    tag = release.tag
    try:
        found = history.gather_notes(
            runner, config.root, env, until=tag, tag_format=release.tag_format
        )
    except PreflightError as exc:  # a shallow clone: the release notes would be wrong
        return _fail(name, str(exc))
    except CIError as exc:
        return Check(name=name, status=Status.WARN, detail=f"could not read the history: {exc}")
    warning = notes.version_warning(tag, found.proposal, release.tag_format)
    if warning:
        return Check(name=name, status=Status.WARN, detail=warning)
    proposal = found.proposal
    detail = f"{tag} is not lower than the proposed {proposal.version} ({proposal.reason})"
    return Check(name=name, status=Status.OK, detail=detail)


def _secret_checks(names: Sequence[str], env: Mapping[str, str]) -> list[Check]:
    unique = list(dict.fromkeys(names))
    if not unique:
        return [Check(name="secrets", status=Status.OK, detail="none required")]
    missing = set(missing_secrets(unique, env))
    return [
        _fail(f"secret {n}", missing_secret_message(n))
        if n in missing
        else Check(name=f"secret {n}", status=Status.OK, detail="set")
        for n in unique
    ]


# -- the main job's preflight, reused while nothing it checks has changed -------------------

PREFLIGHT_MAX_AGE_S = 24 * 3600
# Env vars that change which interpreters and tools the preflight finds.
_PREFLIGHT_ENV = (
    "PATH",
    "PYENV_VERSION",
    "VIRTUAL_ENV",
    "UV_PYTHON",
    "UV_PYTHON_DOWNLOADS",
    "UV_PYTHON_INSTALL_DIR",
    "UV_PYTHON_PREFERENCE",
)


def gather_cached(store: GateCache) -> tuple[list[Check], bool]:
    """The preflight checks, reused when uv.lock, pyproject.toml and PATH are unchanged.

    Returns the checks and whether they came from the cache (``store``'s folder). Only a
    passing preflight is kept, for at most a day; interpreters it found must still exist.
    """
    path = store.dir / "preflight.json"
    key = _cache_key(store)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        fresh = time.time() - float(data["at"]) < PREFLIGHT_MAX_AGE_S
        if data.get("key") == key and fresh and all(os.path.exists(p) for p in data["paths"]):
            checks = [
                Check(name=str(c["name"]), status=Status(c["status"]), detail=c["detail"])
                for c in data["checks"]
            ]
            return checks, True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    checks = gather(store.config, store.runner)
    if all(checks):
        paths = [c.detail for c in checks if c.status is Status.OK and _is_path(c)]
        payload = {
            "key": key,
            "at": time.time(),
            "paths": paths,
            "checks": [
                {"name": c.name, "status": c.status.value, "detail": c.detail} for c in checks
            ],
        }
        write_json(path, payload)
    return checks, False


def _cache_key(store: GateCache) -> str:
    root = store.config.root
    files = {
        name: store.index.hash(root / name, name).sha256 for name in ("pyproject.toml", "uv.lock")
    }
    tools = {}
    for tool in REQUIRED_TOOLS:
        where = store.runner.which(tool)
        tools[tool] = [where, _mtime(where)]
    return cache.digest(
        {
            "files": files,
            "tools": tools,
            "config": str(store.config.path),
            "bundle": store.bundle_hashes(),
            "env": {n: cache.env_hash(store.env.get(n)) for n in _PREFLIGHT_ENV},
        }
    )


def _is_path(check: Check) -> bool:
    return check.name.startswith("python") or check.name in REQUIRED_TOOLS


def _mtime(path: str | None) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
