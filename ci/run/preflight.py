"""The checks before a gate run (lock, config, interpreters, tools) and before a release."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ci.core.config import Config
from ci.core.errors import CIError, PreflightError
from ci.core.runner import Completed, Runner
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


def missing_secrets(names: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The names among ``names`` that are unset or empty in ``env`` (order kept, no repeats)."""
    return [n for n in dict.fromkeys(names) if not env.get(n)]


def missing_secret_message(name: str, workflow: str = "release.yml") -> str:
    """The actionable line for a missing secret."""
    return (
        f"{name} is not set: add it as a repository secret and map it in {workflow}; "
        "locally, export it"
    )


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
