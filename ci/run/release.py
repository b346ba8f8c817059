"""The plan of ``invoke release``: preflight, gates, publish, post-publish, deploy, record.

``plan`` is pure (config in, steps out); ``execute`` runs the steps in order and stops at the
first failure with that step's exit code, so nothing is published after a failed gate and
nothing is deployed after a failed publish.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ci.core.config import Config, Environment
from ci.core.errors import CIError, ExitCode, UsageError
from ci.core.gate import GateStatus
from ci.core.runner import Runner
from ci.gates import registry
from ci.release.version import Release
from ci.run import lockfile, report

PUBLISH_URL_ENV = "CI_PUBLISH_REPOSITORY_URL"
PUBLISH_NEEDS = ("package",)  # publish uploads what this gate built: it must have passed
NO_CACHE = {"CI_NO_CACHE": "1"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One step of a release: a name, what it does, and the command that does it."""

    name: str
    argv: tuple[str, ...]
    what: str
    # gates whose output this step uses: each must have passed in this release, advisory or
    # not (publish uploads what the package gate built), checked before the step runs
    needs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleasePlan:
    """Every step of a release, in order."""

    version: str
    steps: tuple[Step, ...]
    release: Release
    publish_to: str | None
    deploy_env: str | None
    missing: tuple[str, ...] = ()  # gate sessions the noxfile does not declare (skipped)


PostPublish = Callable[[Config, Release, Sequence[str]], Sequence[Step]]

# The one place where steps that follow a successful publish are declared (release notes,
# the GitHub release, ...). Each hook gets the config, the release (version and tag) and the
# `python -m ci` prefix, and returns its steps; they run after publish and before the first
# deploy.
POST_PUBLISH: list[PostPublish] = []


def record_step(config: Config, release: Release, ci: Sequence[str]) -> Sequence[Step]:
    """The release record: dist-assets/RELEASE_NOTES.md, the step summary and the GitHub release."""
    del config
    return [
        Step(
            name="release record",
            argv=(*ci, "release-record", "--tag", release.tag, "--dist", "dist"),
            what=(
                "dist-assets/RELEASE_NOTES.md, the step summary and, with GITHUB_TOKEN, the GitHub "
                "release with its assets and the ledger anchor"
            ),
        )
    ]


# Steps that close a release, after the first deploy (after publish when nothing is
# deployed). The release record is one: run last, its ledger anchor covers the deploy, and
# a re-run (publish and deploy being no-ops then) finds nothing to change on GitHub.
FINAL: list[PostPublish] = [record_step]


def sign_steps(config: Config, ci: Sequence[str]) -> list[Step]:
    """Provenance and signatures beside SHA256SUMS, then the offline check a user runs."""
    signer = config.signing.signer if config.signing else None
    steps = [
        Step(
            name="sign",
            argv=(*ci, "sign", "--dist", "dist"),
            what=(
                "dist-assets/provenance.intoto.json (in-toto, SLSA provenance v1)"
                + (
                    f", SHA256SUMS.sig and provenance.intoto.json.sig by {signer}"
                    if signer
                    else "; NOT SIGNED (no [tool.ci.release] signer)"
                )
            ),
            needs=PUBLISH_NEEDS,
        )
    ]
    if signer is not None:
        steps.append(
            Step(
                name="verify",
                argv=(*ci, "verify", "dist"),
                what="checksums, signatures and provenance subjects, as a user checks them",
            )
        )
    return steps


def first_environment(config: Config) -> Environment | None:
    """The environment a release deploys to: the first configured one that has no ``after``."""
    for environment in config.environments.values():
        if environment.after is None:
            return environment
    return None


def gate_sessions(config: Config) -> list[str]:
    """The nox sessions a release must pass, in order: the main job's."""
    return registry.main_sessions(config)


def publish_target(config: Config, env: Mapping[str, str]) -> str | None:
    """Where publish uploads to, as publish itself resolves it (None: nowhere configured)."""
    return env.get(PUBLISH_URL_ENV) or config.publish.repository_url or None


def parse_nox_list(text: str) -> list[str]:
    """Session names from ``nox --list`` output (selected ``*`` and skipped ``-`` alike)."""
    names = []
    for line in text.splitlines():
        if line[:2] in {"* ", "- "}:
            names.append(line[2:].split(" -> ", 1)[0].strip())
    return names


def declared_sessions(runner: Runner, nox: Sequence[str], config: Config) -> list[str] | None:
    """The sessions noxfile.py declares, or None when nox cannot list them."""
    done = runner.run([*nox, "--list"], cwd=config.root)
    return parse_nox_list(done.stdout) if done else None


def plan(
    config: Config,
    *,
    release: Release,
    env: Mapping[str, str],
    ci: Sequence[str],
    nox: Sequence[str],
    declared: Sequence[str] | None = None,
    post_publish: Sequence[PostPublish] | None = None,
    final: Sequence[PostPublish] | None = None,
    publish_ci: Sequence[str] | None = None,
) -> ReleasePlan:
    """The release of ``release`` (version and tag of HEAD) as a list of steps (pure).

    Gate sessions missing from ``declared`` (when known) are left out and listed in
    ``missing``, so a partial bundle still releases, loudly. ``publish_ci`` is how the
    publish step calls ``python -m ci`` (default ``ci``): in an environment with twine.
    """
    version = release.version
    wanted = gate_sessions(config)
    missing = tuple(s for s in wanted if declared is not None and s not in declared)
    steps = [
        Step(
            name="preflight",
            argv=(*ci, "preflight", "--release"),
            what=f"clean tree, HEAD tagged {release.tag}, secrets, uv.lock fresh",
        )
    ]
    for session in (s for s in wanted if s not in missing):
        steps.append(Step(name=f"gate {session}", argv=(*nox, "-s", session), what="nox session"))
    steps.extend(sign_steps(config, ci))
    target = publish_target(config, env)
    where = target or f"NO INDEX CONFIGURED (set {PUBLISH_URL_ENV} or [tool.ci.publish])"
    steps.append(
        Step(
            name="publish",
            argv=(*(publish_ci or ci), "publish", "--dist", "dist"),
            what=f"upload dist/ (wheel, sdist) of {config.project_name} {version} to {where}",
            needs=PUBLISH_NEEDS,
        )
    )
    hooks = POST_PUBLISH if post_publish is None else post_publish
    for hook in hooks:
        steps.extend(hook(config, release, ci))
    environment = first_environment(config)
    if environment is not None:
        steps.append(
            Step(
                name=f"deploy {environment.name}",
                argv=(*ci, "deploy", "--env", environment.name, "--version", version),
                what=f"deploy {version} to {environment.name} (first environment)",
            )
        )
    for hook in FINAL if final is None else final:
        steps.extend(hook(config, release, ci))
    return ReleasePlan(
        version=version,
        steps=tuple(steps),
        release=release,
        publish_to=target,
        deploy_env=environment.name if environment else None,
        missing=missing,
    )


def lock_notes(config: Config, runner: Runner) -> list[str]:
    """What the release preflight will say of uv.lock, found read-only (``uv lock --check``).

    A dry run never writes: a stale lock (a bumped static version changes the project's own
    line) is reported here, and a uv.lock that differs from HEAD (``uv run`` without
    ``--locked`` re-locks before the dry run even starts) is named with how to undo it.
    """
    notes = []
    try:
        lockfile.read(config.root)
        lockfile.check_fresh(config.root, runner)
    except CIError as exc:
        notes.append(f"preflight will stop the release: {exc}")
    try:
        done = runner.run(
            ["git", "diff", "--quiet", "HEAD", "--", lockfile.LOCK_NAME], cwd=config.root
        )
    except CIError:
        return notes  # no git: the release preflight says so
    if done.returncode == 1:
        notes.append(
            f"{lockfile.LOCK_NAME} differs from HEAD (was it re-locked by `uv run` without "
            f"--locked?): a release builds the committed lock; `git checkout -- "
            f"{lockfile.LOCK_NAME}` undoes it, `uv run --locked invoke ...` never re-locks"
        )
    return notes


def render(release: ReleasePlan, notes: Sequence[str] = ()) -> str:
    """The plan as printed by ``--dry-run``, with ``notes`` (e.g. ``lock_notes``) at the end."""
    lines = [f"release {release.version} plan (dry run: nothing is run, published or deployed):"]
    what = release.release
    lines.append(f"  version {what.version} from the {what.source}")
    lines.append(f"  tag {what.tag} ({what.tag_format.describe()})")
    for index, step in enumerate(release.steps, start=1):
        lines.append(f"  {index}. {step.name}: {step.what}")
        lines.append(f"       $ {' '.join(step.argv)}")
    if release.deploy_env is None:
        lines.append("  (no [tool.ci.environments]: nothing is deployed)")
    lines.extend(f"  warning: {w}" for w in [*warnings(release), *notes])
    return "\n".join(lines)


def warnings(release: ReleasePlan) -> list[str]:
    """What the plan leaves out that a full release would run."""
    return [
        f"noxfile.py declares no `{session}` session: the release runs without that gate"
        for session in release.missing
    ]


def select(release: ReleasePlan, *, start: str | None, until: str | None) -> ReleasePlan:
    """The steps from ``start`` (included) up to ``until`` (excluded): one release in two jobs.

    ``--until publish`` builds, checks and signs without a publishing credential; ``--from
    publish`` (after an upload by another job, e.g. trusted publishing) checks what the index
    serves (files already there with the same sha256 are not uploaded again), deploys and
    records. UsageError (exit 2) for a step the plan does not have.
    """
    names = [s.name for s in release.steps]
    for flag, name in (("--from", start), ("--until", until)):
        if name is not None and name not in names:
            msg = f"{flag} {name!r} is not a step of this release (steps: {', '.join(names)})"
            raise UsageError(msg)
    first = names.index(start) if start else 0
    last = names.index(until) if until else len(names)
    if last <= first:
        msg = f"--until {until!r} does not come after --from {start!r}: nothing would run"
        raise UsageError(msg)
    return replace(release, steps=release.steps[first:last])


def check_runnable(release: ReleasePlan) -> None:
    """UsageError (exit 2) when the plan cannot succeed, before anything runs."""
    if release.publish_to is None and any(s.name == "publish" for s in release.steps):
        msg = (
            f"no package index to publish to: set {PUBLISH_URL_ENV} or [tool.ci.publish] "
            "repository_url (nothing was run)"
        )
        raise UsageError(msg)


def execute(
    release: ReleasePlan, runner: Runner, config: Config, out: Callable[[str], None] = print
) -> int:
    """Run the steps in order; the exit code of the first that fails (nothing after it runs)."""
    check_runnable(release)
    since = time.time_ns()
    for warning in warnings(release):
        out(f"warning: {warning}")
    total = len(release.steps)
    for index, step in enumerate(release.steps, start=1):
        problem = unmet_needs(step, config, since)
        if problem is not None:
            later = ", ".join(s.name for s in release.steps[index - 1 :])
            out(
                f"release {release.version} stopped at the preflight of {step.name}: {problem}; "
                f"not run: {later}"
            )
            return ExitCode.PREFLIGHT
        out(f"==> [{index}/{total}] {step.name}: {' '.join(step.argv)}")
        # a release never replays a cached verdict: every gate runs on what is published
        done = runner.run(step.argv, cwd=config.root, env=NO_CACHE, stream=True)
        if not done:
            code = done.returncode if done.returncode in {int(c) for c in ExitCode} else 1
            later = ", ".join(s.name for s in release.steps[index:]) or "nothing"
            out(
                f"release {release.version} stopped: {step.name} exited {done.returncode}; "
                f"not run: {later}"
            )
            return code
    out(f"released {release.version}")
    return 0


def unmet_needs(step: Step, config: Config, since_ns: int) -> str | None:
    """Why ``step`` cannot run: a gate it needs failed in this release (advisory or not)."""
    records = {r.gate: r for r in report.gate_records(config.reports_path(), since_ns)}
    for gate in step.needs:
        found = records.get(gate)
        if found is None or found.status in {GateStatus.PASSED, GateStatus.CACHED}:
            continue  # not run in this release (the step's own check says what is missing)
        reason = found.summary or found.status.value
        return (
            f"the {gate} gate {found.status.value} ({found.mode.value}, so its session went on): "
            f"{reason}; {step.name} needs what it makes: fix it (`nox -s {gate}`) and release again"
        )
    return None


def ci_prefix(config_file: str | None = None, *, group: str | None = None) -> tuple[str, ...]:
    """How a release step calls ``python -m ci`` (same --config).

    Without ``group``: this interpreter. With it: the project's locked environment with that
    dependency group synced in (``uv run --locked --group GROUP``), so a step finds its tools
    (twine for publish) whatever the maintainer's default groups hold.
    """
    prefix: tuple[str, ...] = (sys.executable, "-m", "ci")
    if group is not None:
        prefix = ("uv", "run", "--locked", "--group", group, "python", "-m", "ci")
    return (*prefix, "--config", config_file) if config_file else prefix
