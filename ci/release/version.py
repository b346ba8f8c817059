"""The release version (static, or what the build backend makes) and the project's tag format.

Pure: ``TagFormat``, ``detect_format``, ``problem_with`` and ``match_head`` take strings and
return records. I/O (git, the build backend) goes through the runner in ``tag_format``,
``project_version`` and ``resolve``.

A release is any PEP 440 public version (``1.2.3``, ``26.4``, ``1.0rc1``, ``2.0.post1``);
development releases (``.devN``) and local versions (``+label``) are refused, which is also
what a VCS-derived version looks like on an untagged commit or a dirty tree. A tag matches
the version when its version part is equal under PEP 440 (``v1.0`` matches ``1.0.0``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from ci.core.config import DEFAULT_TAG_FORMAT, TAG_PLACEHOLDER, Config, load
from ci.core.errors import PreflightError, ToolError
from ci.core.runner import Runner

BACKEND_TIMEOUT_S = 600.0
STATIC = "static [project] version"


@dataclass(frozen=True, slots=True, kw_only=True)
class TagFormat:
    """How a version becomes a release tag (``v{version}``, ``{version}``, ...)."""

    text: str = DEFAULT_TAG_FORMAT
    origin: str = "default"  # configured, detected from the tags, or the default

    @property
    def prefix(self) -> str:
        """What comes before the version."""
        return self.text.partition(TAG_PLACEHOLDER)[0]

    @property
    def suffix(self) -> str:
        """What comes after the version."""
        return self.text.partition(TAG_PLACEHOLDER)[2]

    def tag(self, version: str) -> str:
        """The tag of ``version``."""
        return f"{self.prefix}{version}{self.suffix}"

    def version_of(self, tag: str) -> Version | None:
        """The version a tag of this format names, or None when it is not one."""
        if not (tag.startswith(self.prefix) and tag.endswith(self.suffix)):
            return None
        middle = tag[len(self.prefix) : len(tag) - len(self.suffix)]
        if not middle[:1].isdigit():  # PEP 440 would read "v1.2" as 1.2 after an empty prefix
            return None
        try:
            return Version(middle)
        except InvalidVersion:
            return None

    def git_pattern(self) -> str:
        """A ``git tag --list`` pattern every tag of this format matches."""
        return f"{self.prefix}[0-9]*{self.suffix}"

    def workflow_filter(self) -> str:
        """The GitHub Actions ``tags:`` filter for tags of this format."""
        return f"{self.prefix}[0-9]*{self.suffix}"

    def describe(self) -> str:
        """``tag format v{version}, detected from ...`` for messages."""
        return f"tag format {self.text}, {self.origin}"


DEFAULT_FORMAT = TagFormat()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectVersion:
    """The version a release would carry, and where it came from."""

    version: str
    source: str  # STATIC, or "build backend <name> (dynamic version)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """What is released: the version, its source, the tag format and the tag."""

    version: str
    source: str
    tag_format: TagFormat
    tag: str  # the matching tag on HEAD, else the tag the format makes


@dataclass(frozen=True, slots=True, kw_only=True)
class TagMatch:
    """How the tags on HEAD relate to the release version."""

    tag: str | None  # the tag that matches, if any
    problem: str | None  # why HEAD cannot be released as is, with the fix

    def __bool__(self) -> bool:
        """True when a tag on HEAD matches the version."""
        return self.tag is not None


def detect_format(tags: Iterable[str]) -> TagFormat:
    """``v{version}`` or ``{version}``, whichever the project's version tags mostly use."""
    v_style = TagFormat(text="v{version}")
    plain = TagFormat(text=TAG_PLACEHOLDER)
    listed = list(tags)
    with_v = sum(v_style.version_of(t) is not None for t in listed)
    bare = sum(plain.version_of(t) is not None for t in listed)
    if bare > with_v:
        return TagFormat(text=TAG_PLACEHOLDER, origin=f"detected from {bare} tags like 1.2.3")
    if with_v:
        return TagFormat(text="v{version}", origin=f"detected from {with_v} tags like v1.2.3")
    return TagFormat(text=DEFAULT_TAG_FORMAT, origin="default: no version tags yet")


def problem_with(raw: str) -> str | None:
    """Why ``raw`` cannot be released (not PEP 440, a dev release, a local version), or None."""
    try:
        version = Version(raw)
    except InvalidVersion:
        return f"{raw!r} is not a valid PEP 440 version"
    reasons = []
    if version.is_devrelease:
        reasons.append(f"a development release (.dev{version.dev})")
    if version.local is not None:
        reasons.append(f"a local version (+{version.local}, which package indexes refuse)")
    return f"{raw} is {' and '.join(reasons)}, not a release" if reasons else None


def match_head(version: str, tags: Sequence[str], fmt: TagFormat) -> TagMatch:
    """The tag on HEAD (``tags``) that names ``version`` in format ``fmt``, or the problem."""
    wanted = Version(version)
    ours = sorted(t for t in tags if fmt.version_of(t) is not None)
    for tag in ours:
        if fmt.version_of(tag) == wanted:
            return TagMatch(tag=tag, problem=None)
    fix = f"`git tag {fmt.tag(version)}`"
    if ours:
        problem = (
            f"tag {ours[0]} on HEAD does not match the release version {version}: tag HEAD "
            f"{fmt.tag(version)} or change the version to {fmt.version_of(ours[0])}"
        )
        return TagMatch(tag=None, problem=problem)
    for other in (TagFormat(text="v{version}"), TagFormat(text=TAG_PLACEHOLDER)):
        if other.text == fmt.text:
            continue
        named = sorted(t for t in tags if other.version_of(t) == wanted)
        if named:
            problem = (
                f"HEAD is tagged {named[0]}, but release tags have the {fmt.describe()}: "
                f'set [tool.ci.release] tag_format = "{other.text}" or tag with {fix}'
            )
            return TagMatch(tag=None, problem=problem)
    problem = f"HEAD has no release tag ({fmt.describe()}): tag the release commit with {fix}"
    return TagMatch(tag=None, problem=problem)


def _git_tags(runner: Runner, root: Path, *args: str) -> list[str]:
    done = runner.run(["git", "tag", "--list", *args], cwd=root)
    return done.stdout.split() if done else []


def tag_format(config: Config, runner: Runner) -> TagFormat:
    """``[tool.ci.release] tag_format``, else the format the repository's tags use."""
    if config.tag_format is not None:
        return TagFormat(text=config.tag_format, origin="set in [tool.ci.release]")
    return detect_format(_git_tags(runner, config.root))


def tag_format_at(root: Path, runner: Runner) -> TagFormat:
    """The tag format of the project at ``root`` (its ``[tool.ci.release]``, else its tags)."""
    path = root / "pyproject.toml"
    return tag_format(load(path) if path.is_file() else Config(root=root, path=None), runner)


def workflow_text(text: str, fmt: TagFormat) -> str:
    """A workflow whose tag filters (``tags: ["v[0-9]*"]``) and tag-to-version step follow ``fmt``.

    The bundle's workflows are written for ``v{version}``; this rewrites them for the
    project's format, so a project that tags ``1.2.3`` gets a release workflow that runs.
    """
    default = TagFormat()
    text = text.replace(
        f'tags: ["{default.workflow_filter()}"]', f'tags: ["{fmt.workflow_filter()}"]'
    )
    version_of_ref = f'"${{GITHUB_REF_NAME#{fmt.prefix}}}"'
    if fmt.suffix:
        version_of_ref = f'"$(v="${{GITHUB_REF_NAME#{fmt.prefix}}}"; echo "${{v%{fmt.suffix}}}")"'
    return text.replace('"${GITHUB_REF_NAME#v}"', version_of_ref)


def tags_on_head(runner: Runner, root: Path) -> list[str]:
    """Every tag pointing at HEAD."""
    return _git_tags(runner, root, "--points-at", "HEAD")


def project_version(config: Config, runner: Runner) -> ProjectVersion:
    """The static ``[project] version``, else the version the build backend makes."""
    if config.project_version and "version" not in config.project_dynamic:
        return ProjectVersion(version=config.project_version, source=STATIC)
    return backend_version(config.root, runner)


def backend_version(root: Path, runner: Runner, python: str = sys.executable) -> ProjectVersion:
    """The version in the wheel metadata the build backend prepares for ``root``.

    ``python -m build --metadata`` asks the backend (``prepare_metadata_for_build_wheel``)
    in an isolated environment with the project's ``[build-system] requires``, so hatch-vcs,
    setuptools-scm, flit's ``__version__`` and any other PEP 517 backend answer as they
    would when the release is built.
    """
    argv = [python, "-m", "build", "--metadata"]
    if runner.which("uv"):
        argv += ["--installer", "uv"]
    done = runner.run([*argv, str(root)], cwd=root, timeout=BACKEND_TIMEOUT_S)
    text = done.stderr + done.stdout
    if not done:
        if "No module named build" in text:
            msg = (
                f"`build` is not installed for {python}, so the build backend cannot "
                "be asked for the version: run `uv sync --group package`"
            )
            raise ToolError(msg)
        raise ToolError(_backend_failure(done.returncode, text))
    try:
        data = json.loads(done.stdout[done.stdout.index("{") :])
    except (ValueError, json.JSONDecodeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        msg = "python -m build --metadata printed no version; is build older than 1.5?"
        raise ToolError(msg)
    source = f"build backend {_backend(root)} (dynamic version)"
    return ProjectVersion(version=data["version"], source=source)


def _backend_failure(code: int, text: str) -> str:
    """The ERROR line of build, and the last line the backend itself printed (``< ...``)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    error = next((ln for ln in lines if ln.startswith("ERROR")), lines[-1] if lines else "")
    said = [ln.removeprefix("<").strip() for ln in lines if ln.startswith("<")]
    detail = error.removeprefix("ERROR").strip() or "no output"
    if said and said[-1]:
        detail += f" ({said[-1]})"
    return f"the build backend could not prepare the metadata (exit {code}): {detail}"


def _backend(root: Path) -> str:
    """The ``build-backend`` named in pyproject.toml (the setuptools default without one)."""
    try:
        import tomllib  # noqa: PLC0415 - only needed here

        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    system = data.get("build-system", {})
    backend = system.get("build-backend") if isinstance(system, dict) else None
    return str(backend) if backend else "setuptools.build_meta:__legacy__"


def resolve(config: Config, runner: Runner) -> Release:
    """The release of HEAD: its version (refused when not releasable) and its tag.

    PreflightError (exit 3) when the version cannot be released; ToolError (exit 6) when the
    build backend cannot be asked.
    """
    found = project_version(config, runner)
    problem = problem_with(found.version)
    fmt = tag_format(config, runner)
    if problem:
        raise PreflightError(refusal(problem, found, fmt))
    match = match_head(found.version, tags_on_head(runner, config.root), fmt)
    tag = match.tag or fmt.tag(found.version)
    return Release(version=found.version, source=found.source, tag_format=fmt, tag=tag)


def refusal(problem: str, found: ProjectVersion, fmt: TagFormat) -> str:
    """The one line that says why the version is refused and what to do."""
    try:
        example = Version(found.version).base_version
    except InvalidVersion:
        example = "1.2.0"
    if found.source == STATIC:
        return (
            f"release version {problem}: set [project] version in pyproject.toml to a release "
            f'version (e.g. "{example}")'
        )
    return (
        f"release version {problem} (from the {found.source}): when it comes from git, "
        f"release a clean commit with a release tag (e.g. `git tag {fmt.tag(example)}`); "
        "otherwise set it where the backend reads it"
    )
