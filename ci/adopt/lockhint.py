"""When ``uv lock`` cannot lock a target as it is: the ``[tool.uv]`` setting that makes it solvable.

uv locks every dependency group for every Python that ``requires-python`` admits, so a
project whose own group needs a newer Python (a ``docs`` group pinning a Sphinx for 3.11+
in a project for 3.9+) cannot be locked until the group says so, in uv's own setting
``[tool.uv.dependency-groups] docs = {requires-python = ">=3.11"}``. ``hint`` works that
setting out from what uv said (pure); ``init`` writes it, locks again and says which.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ci.core.config import BUNDLE_GROUP_PREFIX
from ci.core.uv import LockFailure


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupFloor:
    """A dependency group of the project that uv can lock only from a newer Python."""

    group: str  # as the project spells it in [dependency-groups]
    floor: str  # "3.11"
    requirement: str  # what uv said the group cannot have below it ("sphinx==8.2.3")
    requires_python: str  # the project's own, for the note

    @property
    def setting(self) -> str:
        """The setting as it reads in pyproject.toml."""
        return f'[tool.uv.dependency-groups] {self.group} = {{requires-python = ">={self.floor}"}}'

    def note(self) -> str:
        """The one line ``init`` prints: what it wrote and why."""
        return (
            f"uv cannot lock the {self.group} group for requires-python {self.requires_python} "
            f"({self.requirement} needs a newer Python): wrote {self.setting} to pyproject.toml, "
            f"so uv locks that group for Python >={self.floor} only"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why no setting is written although uv named a group and a Python floor."""

    reason: str


def hint(
    failure: LockFailure,
    data: Mapping[str, Any],
    *,
    pythons: Sequence[str],
    written: Mapping[str, str],
) -> GroupFloor | Refusal | None:
    """The group floor that makes ``failure`` solvable, a refusal, or None (another failure).

    ``data`` is the pyproject.toml as it stands, ``pythons`` the Pythons the sessions run,
    ``written`` the floors already written by group (each retry raises one to the next floor
    uv names). The floor goes on the group that declares what uv names (a ``docs`` group a
    ``dev`` group includes, not ``dev``), never on the bundle's groups nor over the project's
    own setting, and above the oldest session Python only for a group no gate syncs.
    """
    if failure.group is None or failure.requirement is None or not failure.floors:
        return None
    groups = _table(data, "dependency-groups")
    spelled = {canonicalize_name(str(name)): str(name) for name in groups}
    named = spelled.get(canonicalize_name(failure.group))
    if named is None:
        return None
    group = _declaring(groups, named, failure.requirement)
    if group is None:
        return None
    own = _table(data, "tool", "uv", "dependency-groups", group).get("requires-python")
    if own is not None and group not in written:
        return Refusal(
            reason=f"[tool.uv.dependency-groups] {group} already has requires-python = "
            f"{own!r}, the project's own: raise it by hand if uv needs more"
        )
    current = Version(written[group]) if group in written else None
    above = [f for f in failure.floors if current is None or Version(f) > current]
    if not above:
        return None
    floor = above[0]
    oldest = min(pythons, key=Version)
    if Version(floor) > Version(oldest) and group in _synced_by_gates(data):
        return Refusal(
            reason=f"the {group} group needs Python >={floor} and the gates sync it on "
            f"{oldest} too: drop {oldest} from [tool.ci] pythons or pin what it needs lower"
        )
    requires = _table(data, "project").get("requires-python")
    return GroupFloor(
        group=group,
        floor=floor,
        requirement=failure.requirement,
        requires_python=str(requires) if requires else "(none)",
    )


def _declaring(groups: Mapping[str, Any], named: str, requirement: str) -> str | None:
    """The project's group that declares ``requirement``'s package, searched from ``named``.

    uv names the group the project requires (``dev``), which may only include the one that
    declares the package (``docs``). The bundle's own groups are not candidates.
    """
    try:
        wanted = canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        wanted = None
    own = [g for g in _closure(groups, [named]) if not g.startswith(BUNDLE_GROUP_PREFIX)]
    for group in own:
        if wanted is not None and wanted in _declared(groups.get(group)):
            return group
    return named if named in own else None


def _declared(entries: object) -> set[str]:
    names: set[str] = set()
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, str):
            try:
                names.add(canonicalize_name(Requirement(entry).name))
            except InvalidRequirement:
                continue
    return names


def _closure(groups: Mapping[str, Any], start: Sequence[str]) -> list[str]:
    """``start`` and every group they include, in the order a depth-first walk meets them."""
    spelled = {canonicalize_name(str(name)): str(name) for name in groups}
    seen: list[str] = []

    def walk(name: str) -> Iterator[str]:
        if name in seen:
            return
        seen.append(name)
        yield name
        for entry in groups.get(name) or []:
            if isinstance(entry, Mapping) and "include-group" in entry:
                included = spelled.get(canonicalize_name(str(entry["include-group"])))
                if included is not None:
                    yield from walk(included)

    return [g for name in start for g in walk(name)]


def _synced_by_gates(data: Mapping[str, Any]) -> set[str]:
    """The groups a gate session syncs: the bundle's, the declared gates', and what they include."""
    groups = _table(data, "dependency-groups")
    gates = _table(data, "tool", "ci", "gates")
    start = [str(g) for g in groups if str(g).startswith(BUNDLE_GROUP_PREFIX)]
    start += [
        str(gate["group"])
        for gate in gates.values()
        if isinstance(gate, Mapping) and isinstance(gate.get("group"), str)
    ]
    return set(_closure(groups, [g for g in start if g in groups]))


def _table(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    node: Any = data
    for key in keys:
        node = node.get(key, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}
