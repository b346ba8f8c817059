"""The ci workflow's jobs from ``[tool.ci]``: one matrix entry per gate session, then package.

The workflow has one job template for every gate session of the main job (``python -m ci
plan --matrix`` writes its matrix to ``$GITHUB_OUTPUT``), so the gates, Pythons and test
shards it runs follow the project's configuration instead of being written out per job.
The package session runs after them, in a job of its own (it builds what they checked),
and so does the one combined verdict of a sharded suite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ci.core.config import Config
from ci.gates import registry, shards

AFTER = "package"  # the session that runs once the others passed: it builds what they checked


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One gate job: its artifact id, display name, nox session, Python and test shard."""

    id: str
    name: str
    session: str
    python: str
    shard: str = ""  # CI_TEST_SHARD (empty: the whole suite)
    cache: bool = False  # whether the job restores cached gate results

    def to_dict(self) -> dict[str, Any]:
        """The matrix ``include`` entry (``cache`` as "true" or "", for ``if:``)."""
        return {
            "id": self.id,
            "name": self.name,
            "session": self.session,
            "python": self.python,
            "shard": self.shard,
            "cache": "true" if self.cache else "",
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Jobs:
    """The gate jobs, and the sharded session whose shards the package job combines."""

    entries: tuple[Entry, ...]
    combine: str = ""  # e.g. "test-3.12"; empty when no session is sharded
    combine_dir: str = ""  # e.g. "reports/shards/3.12": where its shards' outputs land

    def outputs(self) -> Mapping[str, str]:
        """The step outputs the workflow reads (one line each in ``$GITHUB_OUTPUT``)."""
        matrix = {"include": [entry.to_dict() for entry in self.entries]}
        return {
            "gates": json.dumps(matrix, separators=(",", ":")),
            "combine": self.combine,
            "combine-dir": self.combine_dir,
        }

    def render(self) -> str:
        """``name=value`` lines for ``$GITHUB_OUTPUT``."""
        return "".join(f"{key}={value}\n" for key, value in self.outputs().items())


def jobs(config: Config) -> Jobs:
    """The gate jobs of the main job's sessions (all but ``package``), in the main job's order.

    A per-Python session gets one job per Python; the main job's Python is split into the
    gate's ``shards`` (``[tool.ci.gates.NAME] shards``) when there are more than one.
    """
    entries: list[Entry] = []
    combine = combine_dir = ""
    for session in registry.sessions(config):
        if session.name == AFTER or not any(g.applies_to(config) for g in session.gates):
            continue
        cache = any(gate.inputs is not None for gate in session.gates)
        if not session.parametrized:
            entries.append(
                Entry(
                    id=session.name,
                    name=session.name,
                    session=session.name,
                    python=config.default_python,
                    cache=cache,
                )
            )
            continue
        count = config.gate(session.gates[0].name).shards
        main = session.pythons[0]
        for row in shards.matrix(session.pythons, main, count):
            python, shard = row["python"], row["shard"]
            name = f"{session.name}-{python}"
            index = shard.partition("/")[0]
            entries.append(
                Entry(
                    id=f"{name}-{index}" if shard else name,
                    name=f"{name} (shard {shard})" if shard else name,
                    session=name,
                    python=python,
                    shard=shard,
                    cache=cache,
                )
            )
        if count > 1 and not combine:
            combine, combine_dir = f"{session.name}-{main}", f"{config.reports_dir}/shards/{main}"
    return Jobs(entries=tuple(entries), combine=combine, combine_dir=combine_dir)
