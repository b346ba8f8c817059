"""A new built-in gate is one module plus its entry in the registry, and then it is everywhere.

The test copies ``ci/`` (as git tracks it), adds ``ci/gates/spelling.py`` and the registry
entry, shows with ``git diff`` that nothing else changed, and then, running the copy in
fresh interpreters, finds the gate in config validation, ``python -m ci gate``, the gate
records, nox's session list, the main job, the release plan, the cache, the commit status
contexts and init's dependency groups.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, git

pytestmark = pytest.mark.integration

MODULE = '''\
"""The spelling gate: codespell over the project."""

from __future__ import annotations

from collections.abc import Sequence

from ci.core.gate import Gate, GateContext, GateInputs, GateResult, GateStatus


def run(ctx: GateContext, args: Sequence[str] = ()) -> GateResult:
    """Check the spelling (here: always clean)."""
    del args
    return GateResult(gate="spelling", status=GateStatus.PASSED, summary=f"{ctx.root.name} ok")


GATE = Gate(
    name="spelling",
    session="spelling",
    doc="Spelling: codespell over the tracked text.",
    run=run,
    group="spelling",
    inputs=GateInputs(tools=("codespell",)),
    requires=("codespell>=2.3",),
)
'''

PROBE = textwrap.dedent("""\
    import json, sys
    from pathlib import Path
    from ci.adopt import pyproject_edit
    from ci.cli.status import required_contexts
    from ci.core import config as config_module
    from ci.core.clock import SystemClock
    from ci.core.runner import ProcessRunner
    from ci.gates import registry
    from ci.gates.cache import GateCache
    from ci.release.version import Release, TagFormat
    from ci.run import pipeline, release

    config = config_module.load(cwd=Path(sys.argv[1]))
    fmt = TagFormat(text="v{version}", origin="default")
    released = Release(version="1.0", source="static", tag_format=fmt, tag="v1.0")
    plan = release.plan(config, release=released, env={}, ci=("ci",), nox=("nox",))
    store = GateCache(config, ProcessRunner(), SystemClock(), {})
    print(json.dumps({
        "gates": [g.name for g in registry.gates(config)],
        "main_job": pipeline.default_sessions(config),
        "release": [s.name for s in plan.steps],
        "contexts": required_contexts(config),
        "groups": {k: list(v) for k, v in pyproject_edit.TOOL_GROUPS.items()},
        "key": store.key("spelling", config.default_python),
        "mode": config.gate("spelling").mode.value,
    }))
    """)

NOXFILE = textwrap.dedent("""\
    from pathlib import Path

    from ci.gates import sessions

    sessions.declare(Path(__file__).parent)
    """)


def add_gate(copy: Path) -> str:
    """Write the module and the registry entry into the copy; returns ``git diff --stat``."""
    (copy / "ci" / "gates" / "spelling.py").write_text(MODULE, encoding="utf-8")
    registry = copy / "ci" / "gates" / "registry.py"
    text = registry.read_text(encoding="utf-8")
    text = text.replace(
        "from ci.gates import command, lint, test, workflows",
        "from ci.gates import command, lint, spelling, test, workflows",
    )
    text = text.replace("    workflows.GATE,\n)", "    workflows.GATE,\n    spelling.GATE,\n)")
    registry.write_text(text, encoding="utf-8")
    git(copy, "add", "-A")
    return git(copy, "diff", "--cached", "--numstat")


def run(argv: list[str], cwd: Path, copy: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_a_new_builtin_gate_is_one_module_and_one_registry_entry(tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    for rel in git(ROOT, "ls-files", "ci").splitlines():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, copy / rel)
    git(copy, "init", "-q", "-b", "main")
    git(copy, "add", "-A")
    git(copy, "commit", "-qm", "the bundle as it is")

    changed = [line.split("\t") for line in add_gate(copy).splitlines()]
    assert sorted((path, added, removed) for added, removed, path in changed) == [
        ("ci/gates/registry.py", "2", "1"),  # the entry, and the module named in the import
        ("ci/gates/spelling.py", str(len(MODULE.splitlines())), "0"),
    ]

    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1.0"\n\n[tool.ci]\npythons = ["3.12"]\n\n'
        '[tool.ci.gates.spelling]\nmode = "advisory"\n',
        encoding="utf-8",
    )
    (project / "noxfile.py").write_text(NOXFILE, encoding="utf-8")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "demo")

    done = run([sys.executable, "-c", PROBE, str(project)], project, copy)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["gates"][-1] == "spelling"
    assert seen["mode"] == "advisory"  # config validation knows its table
    assert seen["main_job"][-1] == "spelling"
    assert "gate spelling" in seen["release"]
    assert "ci/spelling" not in seen["contexts"]  # advisory: not a required check
    assert seen["groups"]["spelling"] == ["codespell>=2.3", "packaging>=24"]
    assert seen["key"]  # cacheable: it declares its inputs

    gate = run([sys.executable, "-m", "ci", "gate", "spelling"], project, copy)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "spelling: passed (advisory) project ok" in gate.stdout
    record = json.loads((project / "reports" / "run.json").read_text())
    assert [g["id"] for g in record["gates"]] == ["spelling"]

    listed = run([sys.executable, "-m", "nox", "-l"], project, copy)
    assert listed.returncode == 0, listed.stderr
    assert "* spelling -> Spelling: codespell over the tracked text." in listed.stdout

    bad = project / "pyproject.toml"
    bad.write_text(bad.read_text() + "coverage_min = 90\n", encoding="utf-8")
    refused = run([sys.executable, "-m", "ci", "gate", "spelling"], project, copy)
    assert refused.returncode == 2
    assert "unknown key 'coverage_min' for the spelling gate" in refused.stderr
