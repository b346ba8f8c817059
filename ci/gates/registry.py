"""The gate registry: the built-in gates, the ones a project declares, and their sessions.

A built-in gate is one module that defines ``GATE`` (a ``ci.core.gate.Gate``) plus its entry
in ``BUILTIN``. A project declares its own in ``[tool.ci.gates.NAME]`` with a ``command``.
Config validation, the noxfile's sessions, the main job, release, the cache, statuses and
init's dependency groups all read the gates from here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from ci.core.config import GATE_DECLARATION, GATE_OPTIONS, GATE_POLICY, Config, GateConfig
from ci.core.errors import ConfigError, UsageError
from ci.core.gate import Gate, GateInputs
from ci.gates import command, lint, test, workflows
from ci.release import package
from ci.security import audit, secrets

# The built-in gates, in the order the main job runs their sessions.
BUILTIN: tuple[Gate, ...] = (
    lint.GATE,
    test.GATE,
    secrets.GATE,
    audit.GATE,
    package.GATE,
    workflows.GATE,
)

_NAME = re.compile(r"[a-z][a-z0-9_]*(-[a-z][a-z0-9_]*)*")
_PY_SUFFIX = re.compile(r"(?P<base>.+)-(?P<python>\d+\.\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One nox session and the gates it runs, in order (its arguments go to the first)."""

    name: str
    gates: tuple[Gate, ...]
    group: str | None
    pythons: tuple[str, ...]  # the first is the one the main job runs
    parametrized: bool  # one session per Python: NAME-3.12, NAME-3.11, ...

    @property
    def doc(self) -> str:
        """The session's one-line description (its gates' descriptions)."""
        return " ".join(gate.doc for gate in self.gates)

    @property
    def main(self) -> str:
        """The session name the main job and a release run."""
        return f"{self.name}-{self.pythons[0]}" if self.parametrized else self.name

    def names(self) -> tuple[str, ...]:
        """Every name nox lists for it (``test-3.12``, ``test-3.11``, ... or just ``lint``)."""
        if not self.parametrized:
            return (self.name,)
        return tuple(f"{self.name}-{python}" for python in self.pythons)


def gates(config: Config) -> tuple[Gate, ...]:
    """Every gate of the project: the built-in ones, then those it declares (validated)."""
    validate(config)
    return BUILTIN + tuple(
        declared_gate(policy) for policy in config.gates.values() if policy.command
    )


def get(config: Config, name: str) -> Gate:
    """Gate ``name``; UsageError (exit 2) naming the known ones when there is none."""
    for gate in gates(config):
        if gate.name == name:
            return gate
    known = ", ".join(g.name for g in gates(config))
    msg = f"unknown gate {name!r} (known: {known})"
    raise UsageError(msg)


def declared_gate(policy: GateConfig) -> Gate:
    """The Gate of a ``[tool.ci.gates.NAME]`` table that has a ``command``.

    Without ``inputs`` it is never cached. With them its key is the cache's: the whole
    project tree (so a narrower list never replays a stale pass), its ``env`` and, by
    content, the files ``inputs`` names outside the project (``../shared/ruff.toml``).
    """
    name = policy.name
    inputs = None
    if policy.inputs is not None:
        inputs = GateInputs(extra_files=tuple(p for p in policy.inputs if _outside(p)))
    return Gate(
        name=policy.name,
        session=policy.name,
        doc=f"{name.capitalize()}: {_shown(policy.command)} ([tool.ci.gates.{name}]).",
        run=command.CommandGate(policy.name),
        group=policy.group,
        inputs=inputs,
        pythons=policy.pythons,
        declared=True,
    )


def validate(config: Config) -> None:
    """ConfigError (exit 2) for a gate table that names no gate or sets keys it does not take."""
    where_file = str(config.path) if config.path else "pyproject.toml"
    builtin = {gate.name: gate for gate in BUILTIN}
    builtin_sessions = {gate.session for gate in BUILTIN}
    for name, policy in config.gates.items():
        where = f"{where_file}: [tool.ci.gates.{name}]"
        gate = builtin.get(name)
        if gate is not None:
            allowed = GATE_POLICY | gate.options
            wrong = [k for k in policy.keys if k not in allowed]
            if wrong and wrong[0] in GATE_DECLARATION:
                msg = (
                    f"{where} sets {wrong[0]!r}, but {name} is a built-in gate: a gate of your "
                    "own needs a name of its own (built-in gates cannot be replaced)"
                )
                raise ConfigError(msg)
            if wrong:
                msg = (
                    f"{where}: unknown key {wrong[0]!r} for the {name} gate "
                    f"(known: {', '.join(sorted(allowed))})"
                )
                raise ConfigError(msg)
            continue
        if not policy.command:
            known = ", ".join(builtin)
            msg = (
                f"{where}: no such built-in gate (built-in: {known}); to declare a gate of "
                'your own give it a command, e.g. command = ["sphinx-build", "docs", "build"]'
            )
            raise ConfigError(msg)
        _validate_declared(where, name, policy, builtin_sessions)


def _validate_declared(where: str, name: str, policy: GateConfig, sessions: set[str]) -> None:
    wrong = [k for k in policy.keys if k in GATE_OPTIONS]
    if wrong:
        allowed = ", ".join(sorted(GATE_POLICY | GATE_DECLARATION))
        msg = f"{where}: unknown key {wrong[0]!r} for a declared gate (known: {allowed})"
        raise ConfigError(msg)
    if not _NAME.fullmatch(name) or _PY_SUFFIX.fullmatch(name):
        msg = (
            f"{where}: {name!r} cannot name a gate and its nox session; use lower-case "
            "letters, digits, _ and - (e.g. docs, type-check)"
        )
        raise ConfigError(msg)
    if name in sessions:
        msg = f"{where}: {name!r} is the name of a built-in session; pick another name"
        raise ConfigError(msg)
    for pattern in policy.inputs or ():
        if _outside(pattern) and any(c in pattern for c in "*?["):
            msg = (
                f"{where}: inputs entry {pattern!r} is a pattern outside the project; name "
                "files outside it one by one (files inside are all keyed anyway)"
            )
            raise ConfigError(msg)
    if not policy.command[0].strip():
        msg = f"{where}: command starts with an empty string; name the program to run first"
        raise ConfigError(msg)


def sessions(config: Config) -> tuple[Session, ...]:
    """The nox sessions of the project's gates, in the main job's order."""
    order: dict[str, list[Gate]] = {}
    for gate in gates(config):
        order.setdefault(gate.session, []).append(gate)
    found = []
    for name, members in order.items():
        first = members[0]
        found.append(
            Session(
                name=name,
                gates=tuple(members),
                group=config.group(first.group),
                pythons=first.session_pythons(config),
                parametrized=first.parametrized,
            )
        )
    return tuple(found)


def main_sessions(config: Config) -> list[str]:
    """The nox sessions the main job (`invoke ci`) and a release run, in order."""
    return [
        session.main
        for session in sessions(config)
        if any(gate.applies_to(config) for gate in session.gates)
    ]


def session_gates(session: str, config: Config) -> list[tuple[Gate, str]]:
    """The (gate, python) pairs nox session ``session`` runs; [] for a session of no gate."""
    by_name = {s.name: s for s in sessions(config)}
    base, python = session, ""
    match = _PY_SUFFIX.fullmatch(session)
    if session not in by_name and match:
        base, python = match["base"], match["python"]
    found = by_name.get(base)
    if found is None or (python and python not in found.pythons and found.parametrized):
        return []
    if not found.parametrized:
        python = config.default_python
    return [(gate, python or found.pythons[0]) for gate in found.gates]


def groups() -> Mapping[str, tuple[str, ...]]:
    """What each built-in gate's dependency group needs (for ``init``), in session order."""
    found: dict[str, list[str]] = {}
    for gate in BUILTIN:
        if gate.group is None:
            continue
        have = found.setdefault(gate.group, [])
        have += [r for r in gate.requires if r not in have]
    return {group: tuple(requires) for group, requires in found.items()}


def _outside(pattern: str) -> bool:
    """True when an ``inputs`` entry names something outside the project folder."""
    return pattern.startswith(("/", "~")) or ".." in pattern.replace("\\", "/").split("/")


def _shown(command: tuple[str, ...], limit: int = 60) -> str:
    """The command as a shell would show it, cut to ``limit`` characters."""
    text = shlex.join(command)
    return text if len(text) <= limit else text[: limit - 1] + "…"
