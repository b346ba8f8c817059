"""Load and validate the ``[tool.ci]`` table of pyproject.toml into frozen records.

Stdlib only: noxfile.py and tasks.py import this before any environment is synced.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci.core.errors import ConfigError

DEFAULT_PYTHONS = ("3.12", "3.11", "3.13")
# the prefix of the dependency groups that hold the bundle's tools in an adopted project
BUNDLE_GROUP_PREFIX = "noxgate-"
DEFAULT_MASK_ENV = ("*_TOKEN", "*_KEY", "*_SECRET", "*PASSWORD*")
SEVERITIES = ("low", "medium", "high", "critical")
PYTHON_VERSION = re.compile(r"(?:pypy)?3\.\d{1,2}(?:\.\d{1,2})?t?")  # what nox and uv accept
ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # used in file names under the state folder
ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TAG_PLACEHOLDER = "{version}"
DEFAULT_TAG_FORMAT = "v{version}"
# what a tag format may hold around {version}: plain ref characters, no glob or shell syntax
_TAG_FORMAT = re.compile(r"[A-Za-z0-9._/@-]*\{version\}[A-Za-z0-9._/@-]*")
# The lint gate's families besides Python (ci.gates.lint_families), in the order they run;
# "actions" is on only when listed: no build of its linter installs from PyPI offline.
LINT_FAMILIES = ("shell", "yaml", "json", "toml", "docker", "actions")
DEFAULT_LINT_FAMILIES = ("shell", "yaml", "json", "toml", "docker")
# What the lint families leave out unless [tool.ci.gates.lint] exclude says otherwise:
# the deliberately invalid fixtures of a test tree (a parser's tests/data/invalid/*.toml).
# Only folders named for invalid input: a finding there is the fixture's point, not a bug.
DEFAULT_LINT_EXCLUDE = tuple(
    f"**/{tests}/**/{bad}/**"
    for tests in ("tests", "test")
    for bad in ("invalid", "bad", "broken", "malformed")
)

# what the test gate runs the suite with (ci.gates.suites detects it when unset)
TEST_RUNNERS = ("pytest", "unittest")


class Mode(enum.StrEnum):
    """Whether a gate blocks (required) or is only reported (advisory)."""

    REQUIRED = "required"
    ADVISORY = "advisory"


@dataclass(frozen=True, slots=True, kw_only=True)
class GateConfig:
    """One ``[tool.ci.gates.NAME]`` table: policy, a built-in gate's options, a declared gate.

    Types are checked here; which keys a gate accepts (and whether NAME is a gate at all)
    is checked against the gate registry (``ci.gates.registry.validate``).
    """

    name: str
    mode: Mode = Mode.REQUIRED
    budget_s: float | None = None
    budget_blocks: bool = False
    # options of built-in gates (each Gate names the ones it reads in ``options``)
    coverage_min: float = 85.0
    coverage_drop_max: float = 0.5
    secondary_args: tuple[str, ...] = ()
    # pytest-xdist workers: "auto" (one per CPU) or a number; None: the project's own way
    # (no -n from the bundle: xdist runs only where the project's addopts turn it on)
    workers: int | str | None = None
    shards: int = 1  # CI matrix jobs the suite is split into (by recorded test durations)
    reruns: int = 0  # reruns of a failed test that may turn the gate green (it is flaky then)
    runner: str | None = None  # test: "pytest" or "unittest"; None: the project's, detected
    mypy: bool = False
    families: tuple[str, ...] = DEFAULT_LINT_FAMILIES  # lint: the families checked ...
    advisory_families: tuple[str, ...] = ()  # ... and those of them reported, never failing
    exclude: tuple[str, ...] = DEFAULT_LINT_EXCLUDE  # lint: globs the families leave out
    fail_on: str = "high"
    unknown_severity: str = "high"
    ignore_pinned_commits: bool = True  # secrets: commit ids in uses: o/r@SHA, rev: SHA
    env: tuple[str, ...] = ()  # env vars (names or fnmatch patterns) the gate may see: keyed
    # a gate the project declares: the command its session runs, and what it depends on
    command: tuple[str, ...] = ()
    group: str | None = None
    inputs: tuple[str, ...] | None = None
    pythons: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # the keys the table sets, sorted (for the registry's checks)


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiver:
    """A time-bound exception for one finding id (advisory id or secret hash)."""

    id: str
    reason: str
    expires: dt.date
    approved_by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """A deployment target and its protections."""

    name: str
    after: str | None = None
    allowed_refs: tuple[str, ...] = ()
    allowed_actors: tuple[str, ...] = ()
    requires_approval: bool = False
    required_secrets: tuple[str, ...] = ()
    deploy_command: tuple[str, ...] = ()
    healthcheck_command: tuple[str, ...] = ()
    timeout_s: float = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishConfig:
    """Where releases go and how many builds to keep."""

    repository_url: str | None = None
    retain: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningConfig:
    """[tool.ci.release] signing: the key that signs SHA256SUMS, and who users trust for it.

    ``signer`` and ``allowed_signers`` (an ssh ``allowed_signers`` file in the project) are
    what ``verify`` checks against; the private key comes from ``signing_key`` (a file) or
    ``signing_key_env`` (an environment variable holding it, e.g. a CI secret). Without a
    key the release still writes provenance but cannot sign.
    """

    signer: str
    allowed_signers: str
    key_file: str | None = None
    key_env: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheConfig:
    """Bounds of the gate result cache."""

    max_mb: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyConfig:
    """Where failed runs are announced."""

    webhook_url: str | None = None


STATE_BACKENDS = ("local", "git")
# the longest timeout, lease or budget (7 days): far beyond any deploy, far below what a
# timer thread can wait (threading.TIMEOUT_MAX; a longer wait raises OverflowError in it)
MAX_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryConfig:
    """How much run history the state backend keeps: ``[tool.ci.history]``."""

    keep: int = 2000  # records kept per log (gate runs, pipeline runs, lock waits)


@dataclass(frozen=True, slots=True, kw_only=True)
class StateConfig:
    """Where deploy state (ledger, locks, environment state) lives: ``[tool.ci.state]``."""

    backend: str = "local"  # "local": the state folder; "git": a ref of the git remote
    remote: str = "origin"
    lease_s: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole validated ``[tool.ci]`` table, plus where it came from."""

    root: Path
    path: Path | None
    project_name: str = ""
    project_version: str = ""
    project_dynamic: tuple[str, ...] = ()  # [project] dynamic ("version": ask the backend)
    tag_format: str | None = None  # [tool.ci.release] tag_format; None: detect from the tags
    signing: SigningConfig | None = None  # [tool.ci.release] signer etc.; None: not signed
    # [tool.ci.release] wheels: "local" (the package gate's one wheel) or "cibuildwheel" (the
    # release workflow also builds the platform wheels of every Python with cibuildwheel)
    wheels: str = "local"
    pythons: tuple[str, ...] = DEFAULT_PYTHONS
    packages: tuple[str, ...] = ("ci",)
    tests: str = "tests"
    required_secrets: tuple[str, ...] = ()
    mask_env: tuple[str, ...] = DEFAULT_MASK_ENV
    advisory_db: str | None = None
    reports_dir: str = "reports"
    gates: Mapping[str, GateConfig] = field(default_factory=dict)
    waivers: tuple[Waiver, ...] = ()
    environments: Mapping[str, Environment] = field(default_factory=dict)
    publish: PublishConfig = PublishConfig()
    cache: CacheConfig = CacheConfig()
    notify: NotifyConfig = NotifyConfig()
    state: StateConfig = StateConfig()
    history: HistoryConfig = HistoryConfig()
    dependency_groups: frozenset[str] = frozenset()  # the names in [dependency-groups]

    @property
    def default_python(self) -> str:
        """The first of ``pythons``: the one plain ``nox`` tests on."""
        return self.pythons[0]

    def group(self, name: str | None) -> str | None:
        """The dependency group that holds the tools of a gate's group ``name``.

        An adopted project keeps the bundle's tools in groups of their own
        (``noxgate-test`` beside its own ``test``); elsewhere the group is ``name`` itself.
        """
        if name is None:
            return None
        own = f"{BUNDLE_GROUP_PREFIX}{name}"
        return own if own in self.dependency_groups else name

    def gate(self, name: str) -> GateConfig:
        """The policy of gate ``name`` (defaults when it is not configured)."""
        return self.gates.get(name, GateConfig(name=name))

    def environment(self, name: str) -> Environment:
        """The environment ``name``, or a ConfigError listing the known ones."""
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            msg = (
                f"{self._where()}: no environment {name!r} in [tool.ci.environments] "
                f"(configured: {known})"
            )
            raise ConfigError(msg)
        return self.environments[name]

    def reports_path(self) -> Path:
        """The folder where gate reports are written."""
        return self.root / self.reports_dir

    def _where(self) -> str:
        return str(self.path) if self.path else "pyproject.toml"


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start``, or None."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load(config_file: Path | None = None, *, cwd: Path | None = None) -> Config:
    """Load ``[tool.ci]`` from ``config_file`` or the nearest pyproject.toml."""
    start = (cwd or Path.cwd()).resolve()
    path = config_file.resolve() if config_file else find_pyproject(start)
    if path is None:
        return Config(root=start, path=None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{path}: no such file; pass --config with an existing pyproject.toml"
        raise ConfigError(msg) from None
    except IsADirectoryError:
        msg = f"{path} is a folder; pass --config the pyproject.toml file itself"
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"{path}: cannot read it ({exc.strerror}); fix it or pass another --config"
        raise ConfigError(msg) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: not valid TOML ({exc}); fix the file"
        raise ConfigError(msg) from None
    return parse(data, root=path.parent, path=path)


def parse(data: Mapping[str, Any], *, root: Path, path: Path | None) -> Config:
    """Validate a parsed pyproject.toml document into a Config."""
    v = _Validator(str(path) if path else "pyproject.toml")
    project = data.get("project", {})
    tool = data.get("tool", {})
    table = tool.get("ci", {}) if isinstance(tool, Mapping) else {}
    if not isinstance(table, Mapping):
        raise ConfigError(f"{v.file}: [tool.ci] must be a table")
    v.keys(
        table,
        "tool.ci",
        {
            "pythons",
            "packages",
            "tests",
            "required_secrets",
            "mask_env",
            "advisory_db",
            "reports_dir",
            "gates",
            "waivers",
            "environments",
            "publish",
            "cache",
            "notify",
            "state",
            "release",
            "history",
        },
    )
    pythons = _pythons(v, v.str_list(table, "tool.ci", "pythons", DEFAULT_PYTHONS))
    name = project.get("name", "") if isinstance(project, Mapping) else ""
    default_package = str(name).replace("-", "_") if name else "ci"
    return Config(
        root=root,
        path=path,
        project_name=str(name),
        project_version=str(project.get("version", "")) if isinstance(project, Mapping) else "",
        project_dynamic=_dynamic(project),
        tag_format=_tag_format(v, v.table(table, "tool.ci", "release")),
        signing=_signing(v, v.table(table, "tool.ci", "release")),
        wheels=v.choice(
            v.table(table, "tool.ci", "release"), "tool.ci.release", "wheels", WHEELS, "local"
        ),
        pythons=pythons,
        packages=_packages(v, v.str_list(table, "tool.ci", "packages", (default_package,))),
        tests=v.folder(table, "tool.ci", "tests", "tests"),
        required_secrets=v.env_names(table, "tool.ci", "required_secrets"),
        mask_env=v.str_list(table, "tool.ci", "mask_env", DEFAULT_MASK_ENV),
        advisory_db=v.opt_string(table, "tool.ci", "advisory_db"),
        reports_dir=v.folder(table, "tool.ci", "reports_dir", "reports"),
        gates=_gates(v, v.table(table, "tool.ci", "gates")),
        waivers=_waivers(v, table.get("waivers", [])),
        environments=_environments(v, v.table(table, "tool.ci", "environments")),
        publish=_publish(v, v.table(table, "tool.ci", "publish")),
        cache=_cache(v, v.table(table, "tool.ci", "cache")),
        notify=_notify(v, v.table(table, "tool.ci", "notify")),
        state=_state(v, v.table(table, "tool.ci", "state")),
        history=_history(v, v.table(table, "tool.ci", "history")),
        dependency_groups=_group_names(data.get("dependency-groups")),
    )


def _group_names(groups: object) -> frozenset[str]:
    return frozenset(str(k) for k in groups) if isinstance(groups, Mapping) else frozenset()


def _pythons(v: _Validator, pythons: tuple[str, ...]) -> tuple[str, ...]:
    if not pythons:
        raise ConfigError(f"{v.file}: [tool.ci] pythons must name at least one version")
    for version in pythons:
        if not PYTHON_VERSION.fullmatch(version):
            msg = (
                f"{v.file}: tool.ci.pythons has {version!r}, which is not a Python version; "
                'write versions like "3.12"'
            )
            raise ConfigError(msg)
    twice = sorted({p for p in pythons if pythons.count(p) > 1})
    if twice:
        msg = f"{v.file}: tool.ci.pythons lists {twice[0]!r} more than once"
        raise ConfigError(msg)
    return pythons


def _packages(v: _Validator, packages: tuple[str, ...]) -> tuple[str, ...]:
    for name in packages:
        if not all(part.isidentifier() for part in name.split(".")):
            msg = (
                f"{v.file}: tool.ci.packages has {name!r}, which is not an import name; "
                "write the name you import (my_package, not my-package or src/my_package)"
            )
            raise ConfigError(msg)
    return packages


GATE_POLICY = frozenset({"mode", "budget_s", "budget_blocks", "env"})  # every gate's
GATE_OPTIONS = frozenset(
    {
        "coverage_min",
        "coverage_drop_max",
        "secondary_args",
        "workers",
        "reruns",
        "shards",
        "runner",
        "mypy",
        "families",
        "advisory_families",
        "exclude",
        "fail_on",
        "unknown_severity",
        "ignore_pinned_commits",
    }
)  # built-in gates' own keys
GATE_DECLARATION = frozenset({"command", "group", "inputs", "pythons"})  # declared gates'


def _gates(v: _Validator, table: Mapping[str, Any]) -> dict[str, GateConfig]:
    gates: dict[str, GateConfig] = {}
    for name, raw in table.items():
        where = f"tool.ci.gates.{name}"
        sub = v.table({name: raw}, "tool.ci.gates", name)
        v.keys(sub, where, set(GATE_POLICY | GATE_OPTIONS | GATE_DECLARATION))
        defaults = GateConfig(name=name)
        inputs = v.str_list(sub, where, "inputs", ()) if "inputs" in sub else None
        gates[name] = GateConfig(
            name=name,
            mode=Mode(v.choice(sub, where, "mode", [m.value for m in Mode], defaults.mode.value)),
            budget_s=v.opt_seconds(sub, where, "budget_s"),
            budget_blocks=v.boolean(sub, where, "budget_blocks", defaults.budget_blocks),
            mypy=v.boolean(sub, where, "mypy", defaults.mypy),
            families=_families(v, where, sub, "families", defaults.families),
            advisory_families=_advisory_families(v, where, sub),
            exclude=_globs(v, where, sub, "exclude", defaults.exclude),
            coverage_min=v.percent(sub, where, "coverage_min", defaults.coverage_min),
            coverage_drop_max=v.percent(
                sub, where, "coverage_drop_max", defaults.coverage_drop_max
            ),
            secondary_args=v.str_list(sub, where, "secondary_args", ()),
            workers=v.count_or_auto(sub, where, "workers", defaults.workers),
            reruns=v.whole(sub, where, "reruns", defaults.reruns, minimum=0),
            shards=v.whole(sub, where, "shards", defaults.shards, minimum=1),
            runner=v.choice(sub, where, "runner", TEST_RUNNERS, "pytest")
            if "runner" in sub
            else None,
            env=v.str_list(sub, where, "env", ()),
            fail_on=v.choice(sub, where, "fail_on", SEVERITIES, defaults.fail_on),
            unknown_severity=v.choice(
                sub, where, "unknown_severity", SEVERITIES, defaults.unknown_severity
            ),
            ignore_pinned_commits=v.boolean(
                sub, where, "ignore_pinned_commits", defaults.ignore_pinned_commits
            ),
            command=v.str_list(sub, where, "command", ()),
            group=v.opt_string(sub, where, "group"),
            inputs=inputs,
            pythons=_gate_pythons(v, where, v.str_list(sub, where, "pythons", ())),
            keys=tuple(sorted(sub)),
        )
    return gates


def _families(
    v: _Validator, where: str, table: Mapping[str, Any], key: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    names = v.str_list(table, where, key, default)
    for name in names:
        if name not in LINT_FAMILIES:
            msg = (
                f"{v.file}: {where}.{key} has {name!r}, not a lint family; "
                f"use some of {', '.join(LINT_FAMILIES)}"
            )
            raise ConfigError(msg)
    return tuple(dict.fromkeys(names))


def _globs(
    v: _Validator, where: str, table: Mapping[str, Any], key: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    globs = v.str_list(table, where, key, default)
    for glob in globs:
        bad = not glob.strip() or glob.startswith("/") or ".." in glob.split("/")
        if bad:
            msg = (
                f"{v.file}: {where}.{key} has {glob!r}; write globs relative to the project "
                'like "tests/data/invalid/**" or "*.min.json"'
            )
            raise ConfigError(msg)
    return globs


def _advisory_families(v: _Validator, where: str, table: Mapping[str, Any]) -> tuple[str, ...]:
    advisory = _families(v, where, table, "advisory_families", ())
    families = _families(v, where, table, "families", DEFAULT_LINT_FAMILIES)
    left_out = [name for name in advisory if name not in families]
    if left_out:
        msg = (
            f"{v.file}: {where}.advisory_families has {left_out[0]!r}, which {where}.families "
            "leaves out; add it to families or drop it from advisory_families"
        )
        raise ConfigError(msg)
    return advisory


def _gate_pythons(v: _Validator, where: str, pythons: tuple[str, ...]) -> tuple[str, ...]:
    for version in pythons:
        if not PYTHON_VERSION.fullmatch(version):
            msg = f'{v.file}: {where}.pythons has {version!r}; write versions like "3.12"'
            raise ConfigError(msg)
    return pythons


def _waivers(v: _Validator, raw: object) -> tuple[Waiver, ...]:
    if not isinstance(raw, list):
        raise ConfigError(
            f"{v.file}: tool.ci.waivers must be an array of tables ([[tool.ci.waivers]])"
        )
    waivers = []
    for index, item in enumerate(raw):
        where = f"tool.ci.waivers[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{v.file}: {where} must be a table")
        v.keys(item, where, {"id", "reason", "expires", "approved_by"})
        for key in ("id", "reason", "expires"):
            if key not in item:
                msg = f"{v.file}: {where} has no {key!r}; every waiver needs id, reason and expires"
                raise ConfigError(msg)
        expires = item["expires"]
        if isinstance(expires, dt.datetime):
            expires = expires.date()
        if not isinstance(expires, dt.date):
            msg = f"{v.file}: {where}.expires must be a TOML date like 2027-01-31, not {expires!r}"
            raise ConfigError(msg)
        if not v.string(item, where, "id", "").strip():
            msg = f"{v.file}: {where}.id is empty; name the advisory id or the secret's hash"
            raise ConfigError(msg)
        reason = v.string(item, where, "reason", "")
        if not reason.strip():
            raise ConfigError(f"{v.file}: {where}.reason is empty; say why the finding is accepted")
        waivers.append(
            Waiver(
                id=v.string(item, where, "id", ""),
                reason=reason,
                expires=expires,
                approved_by=v.opt_string(item, where, "approved_by"),
            )
        )
    return tuple(waivers)


def _environments(v: _Validator, table: Mapping[str, Any]) -> dict[str, Environment]:
    envs: dict[str, Environment] = {}
    for name in table:
        where = f"tool.ci.environments.{name}"
        if not ENV_NAME.fullmatch(name):
            msg = (
                f"{v.file}: [{where}]: an environment name may only hold letters, digits, "
                "'.', '_' and '-' (it names files under the state folder)"
            )
            raise ConfigError(msg)
        sub = v.table(table, "tool.ci.environments", name)
        v.keys(
            sub,
            where,
            {
                "after",
                "allowed_refs",
                "allowed_actors",
                "requires_approval",
                "required_secrets",
                "deploy_command",
                "healthcheck_command",
                "timeout_s",
            },
        )
        envs[name] = Environment(
            name=name,
            after=v.opt_string(sub, where, "after"),
            allowed_refs=v.str_list(sub, where, "allowed_refs", ()),
            allowed_actors=v.str_list(sub, where, "allowed_actors", ()),
            requires_approval=v.boolean(sub, where, "requires_approval", False),
            required_secrets=v.env_names(sub, where, "required_secrets"),
            deploy_command=v.str_list(sub, where, "deploy_command", ()),
            healthcheck_command=v.str_list(sub, where, "healthcheck_command", ()),
            timeout_s=v.seconds(sub, where, "timeout_s", 600.0),
        )
    _check_promotion_order(v, envs)
    return envs


def _check_promotion_order(v: _Validator, envs: Mapping[str, Environment]) -> None:
    """Every ``after`` names another environment, and following them never comes back."""
    for env in envs.values():
        where = f"[tool.ci.environments.{env.name}] after = {env.after!r}"
        if env.after is not None and env.after not in envs:
            msg = f"{v.file}: {where} is not an environment"
            raise ConfigError(msg)
        if env.after == env.name:
            msg = f"{v.file}: {where} names the environment itself; name the one before it"
            raise ConfigError(msg)
        seen = [env.name]
        step = env.after
        while step is not None and step not in seen:
            seen.append(step)
            step = envs[step].after if step in envs else None
        if step is not None:
            cycle = " -> ".join([*seen[seen.index(step) :], step])
            msg = f"{v.file}: {where}: the after chain is a cycle ({cycle}); break it"
            raise ConfigError(msg)


def _dynamic(project: object) -> tuple[str, ...]:
    raw = project.get("dynamic", []) if isinstance(project, Mapping) else []
    return tuple(str(x) for x in raw) if isinstance(raw, list) else ()


WHEELS = ("local", "cibuildwheel")  # [tool.ci.release] wheels
SIGNING_KEYS = ("signer", "allowed_signers", "signing_key", "signing_key_env")
_SIGNER = re.compile(r"[^\s,\"*?!]+")  # one principal of an allowed_signers line


def _signing(v: _Validator, table: Mapping[str, Any]) -> SigningConfig | None:
    where = "tool.ci.release"
    values = {k: v.opt_string(table, where, k) for k in SIGNING_KEYS}
    if not any(values.values()):
        return None
    signer, allowed = values["signer"], values["allowed_signers"]
    key_file, key_env = values["signing_key"], values["signing_key_env"]
    for key in ("signer", "allowed_signers"):
        if not values[key]:
            msg = (
                f"{v.file}: {where}.{key} is missing: signing needs signer (an identity such as "
                'an email) and allowed_signers (a file in the project, "<signer> <public key>" '
                "lines, what users verify with)"
            )
            raise ConfigError(msg)
    if signer is None or allowed is None:  # checked above; narrows the types
        return None
    if not _SIGNER.fullmatch(signer):
        msg = f"{v.file}: {where}.signer = {signer!r} must be one identity without spaces or commas"
        raise ConfigError(msg)
    v.folder(table, where, "allowed_signers", "")  # a path inside the project
    if key_file and key_env:
        msg = f"{v.file}: {where}: set signing_key (a file) or signing_key_env, not both"
        raise ConfigError(msg)
    if key_env is not None and not ENV_VAR.fullmatch(key_env):
        msg = f"{v.file}: {where}.signing_key_env = {key_env!r} is not an environment variable name"
        raise ConfigError(msg)
    return SigningConfig(signer=signer, allowed_signers=allowed, key_file=key_file, key_env=key_env)


def _tag_format(v: _Validator, table: Mapping[str, Any]) -> str | None:
    v.keys(table, "tool.ci.release", {"tag_format", "wheels", *SIGNING_KEYS})
    text = v.opt_string(table, "tool.ci.release", "tag_format")
    if text is not None and not _TAG_FORMAT.fullmatch(text):
        msg = (
            f"{v.file}: tool.ci.release.tag_format = {text!r} must hold {TAG_PLACEHOLDER} once, "
            'with only letters, digits and ._/@- around it (e.g. "v{version}" or "{version}")'
        )
        raise ConfigError(msg)
    return text


def _publish(v: _Validator, table: Mapping[str, Any]) -> PublishConfig:
    v.keys(table, "tool.ci.publish", {"repository_url", "retain"})
    return PublishConfig(
        repository_url=v.url(table, "tool.ci.publish", "repository_url"),
        retain=v.whole(table, "tool.ci.publish", "retain", 5, minimum=1),
    )


def _cache(v: _Validator, table: Mapping[str, Any]) -> CacheConfig:
    v.keys(table, "tool.ci.cache", {"max_mb"})
    return CacheConfig(max_mb=v.whole(table, "tool.ci.cache", "max_mb", 200, minimum=0))


def _notify(v: _Validator, table: Mapping[str, Any]) -> NotifyConfig:
    v.keys(table, "tool.ci.notify", {"webhook_url"})
    return NotifyConfig(webhook_url=v.url(table, "tool.ci.notify", "webhook_url"))


def _state(v: _Validator, table: Mapping[str, Any]) -> StateConfig:
    where = "tool.ci.state"
    v.keys(table, where, {"backend", "remote", "lease_s"})
    remote = v.string(table, where, "remote", "origin")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", remote):
        msg = f"{v.file}: {where}.remote = {remote!r} must be the name of a git remote"
        raise ConfigError(msg)
    return StateConfig(
        backend=v.choice(table, where, "backend", STATE_BACKENDS, "local"),
        remote=remote,
        lease_s=v.seconds(table, where, "lease_s", 300.0),
    )


def _history(v: _Validator, table: Mapping[str, Any]) -> HistoryConfig:
    v.keys(table, "tool.ci.history", {"keep"})
    return HistoryConfig(keep=v.whole(table, "tool.ci.history", "keep", 2000, minimum=1))


@dataclass(frozen=True, slots=True)
class _Validator:
    """Typed getters that raise one clear ConfigError naming the key and the file."""

    file: str

    def _type_error(self, where: str, key: str, expected: str, value: object) -> ConfigError:
        got = type(value).__name__
        return ConfigError(f"{self.file}: {where}.{key} must be {expected}, not {got} ({value!r})")

    def keys(self, table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            msg = (
                f"{self.file}: unknown key {unknown[0]!r} in [{where}] "
                f"(known: {', '.join(sorted(allowed))})"
            )
            raise ConfigError(msg)

    def table(self, table: Mapping[str, Any], where: str, key: str) -> Mapping[str, Any]:
        value = table.get(key, {})
        if not isinstance(value, Mapping):
            raise self._type_error(where, key, "a table", value)
        return value

    def string(self, table: Mapping[str, Any], where: str, key: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise self._type_error(where, key, "a string", value)
        return value

    def opt_string(self, table: Mapping[str, Any], where: str, key: str) -> str | None:
        if key not in table:
            return None
        return self.string(table, where, key, "")

    def str_list(
        self, table: Mapping[str, Any], where: str, key: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = table.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise self._type_error(where, key, "a list of strings", value)
        return tuple(value)

    def boolean(self, table: Mapping[str, Any], where: str, key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self._type_error(where, key, "true or false", value)
        return value

    def number(
        self,
        table: Mapping[str, Any],
        where: str,
        key: str,
        default: float,
        *,
        positive: bool = False,
    ) -> float:
        """A finite number (TOML allows nan and inf); greater than 0 when ``positive``."""
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._type_error(where, key, "a number", value)
        if not math.isfinite(value) or (positive and value <= 0):
            wanted = "a number greater than 0" if positive else "a finite number"
            msg = f"{self.file}: {where}.{key} must be {wanted}, not {value!r}"
            raise ConfigError(msg)
        return float(value)

    def seconds(self, table: Mapping[str, Any], where: str, key: str, default: float) -> float:
        """A time in seconds: greater than 0 and at most ``MAX_SECONDS`` (a timer can wait it)."""
        value = self.number(table, where, key, default, positive=True)
        if value > MAX_SECONDS:
            msg = (
                f"{self.file}: {where}.{key} must be at most {MAX_SECONDS} seconds (7 days), "
                f"not {table[key]!r}"
            )
            raise ConfigError(msg)
        return value

    def count_or_auto(
        self, table: Mapping[str, Any], where: str, key: str, default: int | str | None
    ) -> int | str | None:
        if key not in table:
            return default
        value = table[key]
        if value == "auto":
            return "auto"
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = f'{self.file}: {where}.{key} must be "auto" or a whole number of at least 1'
            raise ConfigError(f"{msg}, not {value!r}")
        return value

    def opt_seconds(self, table: Mapping[str, Any], where: str, key: str) -> float | None:
        if key not in table:
            return None
        return self.seconds(table, where, key, 0.0)

    def percent(self, table: Mapping[str, Any], where: str, key: str, default: float) -> float:
        value = self.number(table, where, key, default)
        if not 0 <= value <= 100:
            msg = f"{self.file}: {where}.{key} must be between 0 and 100, not {value!r}"
            raise ConfigError(msg)
        return value

    def whole(
        self, table: Mapping[str, Any], where: str, key: str, default: int, *, minimum: int
    ) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            wanted = f"at least {minimum} (a whole number)"
            msg = f"{self.file}: {where}.{key} must be {wanted}, not {value!r}"
            raise ConfigError(msg)
        return value

    def env_names(self, table: Mapping[str, Any], where: str, key: str) -> tuple[str, ...]:
        names = self.str_list(table, where, key, ())
        for name in names:
            if not ENV_VAR.fullmatch(name):
                msg = f"{self.file}: {where}.{key} has {name!r}, not an environment variable name"
                raise ConfigError(msg)
        return names

    def url(self, table: Mapping[str, Any], where: str, key: str) -> str | None:
        value = self.opt_string(table, where, key)
        if value is not None and not re.fullmatch(r"https?://[^\s/]+\S*", value):
            msg = f"{self.file}: {where}.{key} must be an http:// or https:// URL, not {value!r}"
            raise ConfigError(msg)
        return value

    def folder(self, table: Mapping[str, Any], where: str, key: str, default: str) -> str:
        value = self.string(table, where, key, default)
        parts = Path(value).parts
        if not value.strip() or Path(value).is_absolute() or ".." in parts:
            msg = (
                f"{self.file}: {where}.{key} = {value!r} must be a folder inside the project "
                "(a relative path without '..')"
            )
            raise ConfigError(msg)
        return value

    def choice(
        self,
        table: Mapping[str, Any],
        where: str,
        key: str,
        choices: tuple[str, ...] | list[str],
        default: str,
    ) -> str:
        value = self.string(table, where, key, default)
        if value not in choices:
            msg = f"{self.file}: {where}.{key} = {value!r} is not one of {', '.join(choices)}"
            raise ConfigError(msg)
        return value


def state_dir(root: Path, env: Mapping[str, str] | None = None) -> Path:
    """The state folder: ``CI_STATE_DIR`` or ``<root>/.ci-state`` (ConfigError if not a folder)."""
    environ = os.environ if env is None else env
    raw = environ.get("CI_STATE_DIR", "")
    path = Path(raw) if raw else root / ".ci-state"
    if path.exists() and not path.is_dir():
        where = "CI_STATE_DIR" if raw else "the default state folder"
        msg = f"{path} ({where}) is a file, not a folder; move it aside or set CI_STATE_DIR"
        raise ConfigError(msg)
    return path


def env_flag(name: str, env: Mapping[str, str] | None = None) -> bool:
    """True when env var ``name`` is set to 1/true/yes (a ConfigError for other values)."""
    environ = os.environ if env is None else env
    raw = environ.get(name, "").strip().lower()
    if raw in {"", "0", "false", "no"}:
        return False
    if raw in {"1", "true", "yes"}:
        return True
    msg = f"environment variable {name}={raw!r} is not a boolean; use 1 or 0"
    raise ConfigError(msg)


def missing_secrets(names: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The names among ``names`` that are unset or empty in ``env`` (order kept, no repeats)."""
    return [n for n in dict.fromkeys(names) if not env.get(n)]


def missing_secret_message(name: str, workflow: str = "release.yml") -> str:
    """The actionable line for a missing secret."""
    return (
        f"{name} is not set: add it as a repository secret and map it in {workflow}; "
        "locally, export it"
    )
