"""GitHub workflow files parsed the way GitHub reads them, with the line of every key."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ci.core.errors import ConfigError, ToolError

if TYPE_CHECKING:
    from yaml import SafeLoader
    from yaml.nodes import Node

WORKFLOWS_DIR = Path(".github") / "workflows"

YamlPath = tuple[str | int, ...]

# GitHub reads YAML 1.2 booleans: only true/false. PyYAML's 1.1 rules would turn the
# `on:` key into True (and `yes`/`no`/`off` values into booleans), so they are narrowed.
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class WorkflowSyntaxError(ConfigError):
    """A workflow file that is not valid YAML or not a mapping; carries file and line."""

    def __init__(self, message: str, *, file: str, line: int | None) -> None:
        """Keep where the problem is, for file:line findings."""
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")
        self.file = file
        self.line = line
        self.problem = message


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowFile:
    """One parsed workflow: its data, its text, and the 1-based line of every key."""

    rel: str
    text: str
    data: Mapping[str, Any]
    lines: Mapping[YamlPath, int] = field(default_factory=dict)
    content_lines: Mapping[YamlPath, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The file name, e.g. ``ci.yml``."""
        return self.rel.rsplit("/", 1)[-1]

    def line(self, *path: str | int) -> int:
        """The line of ``path``, or of its nearest ancestor that has one (1 at worst)."""
        for size in range(len(path), -1, -1):
            if path[:size] in self.lines:
                return self.lines[path[:size]]
        return 1

    def source_line(self, number: int) -> str:
        """The text of line ``number`` (1-based), or an empty string."""
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""

    @property
    def triggers(self) -> Mapping[str, Any]:
        """The ``on:`` block as a mapping of event name to its filters (None when bare)."""
        raw = self.data.get("on")
        if isinstance(raw, str):
            return {raw: None}
        if isinstance(raw, list):
            return {str(event): None for event in raw}
        if isinstance(raw, Mapping):
            return raw
        return {}

    @property
    def jobs(self) -> Mapping[str, Any]:
        """The ``jobs:`` block (empty when missing or malformed)."""
        raw = self.data.get("jobs")
        return raw if isinstance(raw, Mapping) else {}


def parse(text: str, rel: str) -> WorkflowFile:
    """Parse workflow ``text`` (named ``rel`` in messages) into a WorkflowFile."""
    yaml = _yaml()
    converter = _Converter(_loader_class()(text))
    try:
        node = converter.loader.get_single_node()
        if node is None:
            raise WorkflowSyntaxError("the file is empty", file=rel, line=1)
        data = converter.convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "not valid YAML"
        raise WorkflowSyntaxError(f"not valid YAML: {problem}", file=rel, line=line) from None
    except yaml.YAMLError as exc:
        raise WorkflowSyntaxError(f"not valid YAML: {exc}", file=rel, line=None) from None
    finally:
        converter.loader.dispose()
    if not isinstance(data, dict):
        msg = "a workflow must be a mapping with `on:` and `jobs:`"
        raise WorkflowSyntaxError(msg, file=rel, line=1)
    return WorkflowFile(
        rel=rel, text=text, data=data, lines=converter.lines, content_lines=converter.content
    )


def needs_of(job: object) -> list[str]:
    """The job ids a job ``needs:`` (a string or a list)."""
    raw = job.get("needs") if isinstance(job, Mapping) else None
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [str(n) for n in raw]
    return []


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle in ``graph`` (node -> nodes it needs) as a closed path, or an empty list."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return []


def workflow_paths(root: Path) -> list[Path]:
    """The workflow files under ``root/.github/workflows`` (``*.yml`` and ``*.yaml``), sorted."""
    folder = root / WORKFLOWS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in {".yml", ".yaml"} and p.is_file())


def load(path: Path, root: Path) -> WorkflowFile:
    """Read and parse one workflow file; ``rel`` is its path relative to ``root``."""
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowSyntaxError(f"cannot be read ({exc})", file=rel, line=None) from None
    return parse(text, rel)


def load_all(root: Path) -> list[WorkflowFile]:
    """Every workflow under ``root``; ConfigError naming file:line for the first broken one."""
    return [load(path, root) for path in workflow_paths(root)]


def _yaml() -> ModuleType:
    """PyYAML, imported on first use so commands that never read YAML work without it."""
    try:
        import yaml  # noqa: PLC0415 - optional dependency (the `workflows` group)
    except ModuleNotFoundError:
        msg = "PyYAML is not installed; run `uv sync` (it is in the `workflows` group)"
        raise ToolError(msg) from None
    return yaml


@functools.cache
def _loader_class() -> type[SafeLoader]:
    """A SafeLoader subclass that reads booleans the YAML 1.2 way, as GitHub does."""
    yaml = _yaml()

    class Loader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in entries if tag != "tag:yaml.org,2002:bool"]
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
    return Loader


def _duplicate(key: str, node: Node) -> Exception:
    """The error for a key a mapping already has, marked at the second one."""
    from yaml.constructor import ConstructorError  # noqa: PLC0415 - optional dependency

    return ConstructorError(None, None, f"duplicate key {key!r}", node.start_mark)


@dataclass(slots=True)
class _Converter:
    """Turns a composed node tree into plain data, recording the line of every path."""

    loader: SafeLoader
    lines: dict[YamlPath, int] = field(default_factory=dict)
    content: dict[YamlPath, int] = field(default_factory=dict)

    def convert(self, node: Node, path: YamlPath) -> object:
        """Plain Python data from ``node``."""
        from yaml import MappingNode, SequenceNode  # noqa: PLC0415 - optional dependency

        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            out: dict[str, object] = {}
            for key_node, value_node in node.value:
                key = str(self.loader.construct_object(key_node, deep=True))
                if key in out:  # GitHub refuses it; PyYAML alone would keep the last one
                    raise _duplicate(key, key_node)
                child = (*path, key)
                self.lines[child] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, child)
            return out
        if isinstance(node, SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        # a block scalar (`run: |`) starts on the line after its indicator
        block = getattr(node, "style", None) in {"|", ">"}
        self.content[path] = node.start_mark.line + (2 if block else 1)
        return self.loader.construct_object(node, deep=True)
