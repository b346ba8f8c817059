"""The gate cache: keys from declared inputs, store, replay, LRU, and the main job's use of it."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from ci.cli.app import App
from ci.cli.main import main
from ci.core.config import Config, load
from ci.core.errors import UsageError
from ci.core.gate import GateContext, GateResult, GateStatus
from ci.core.runner import Completed, ProcessRunner, confined
from ci.gates import cache, registry
from ci.gates import test as testgate
from ci.gates.cache import GateCache
from ci.run import pipeline
from ci.testing.fakes import FakeRunner, FixedClock
from tests.conftest import git
from tests.support import pytest_tools

PY = sys.executable
LOCK = 'version = 1\n\n[[package]]\nname = "ruff"\nversion = "0.14.0"\n'
PYPROJECT = '[project]\nname = "demo"\nversion = "1.0"\n\n[tool.ci]\npythons = ["3.12"]\n'
SECRET = "-".join(["s3cr3t", "Value", "never", "stored", "42"])  # built: no literal to scan
# The demo project runs these two sessions; the other default sessions need their own tools.
SESSIONS = ("--session", "lint", "--session", "test-3.12")


def with_inputs(monkeypatch: pytest.MonkeyPatch, **changes: object) -> None:
    """Give the lint gate other declared inputs for one test."""
    gates = tuple(
        dataclasses.replace(g, inputs=dataclasses.replace(g.inputs, **changes))
        if g.name == "lint" and g.inputs is not None
        else g
        for g in registry.BUILTIN
    )
    monkeypatch.setattr(registry, "BUILTIN", gates)


def demo_files() -> dict[str, str]:
    return {
        "pyproject.toml": PYPROJECT,
        "uv.lock": LOCK,
        ".gitignore": "reports/\n",
        "demo/__init__.py": '"""Demo."""\n',
        "tests/test_demo.py": "def test_x():\n    assert 1\n",
        "tests/data/sample.txt": "fixture\n",
        "docs/guide.md": "# Guide\n",
    }


def fake_tools(ruff_findings: str = "[]") -> FakeRunner:
    """Tools the gates and the preflight call, answered without running them."""
    return FakeRunner(
        script={
            (PY, "-m", "ruff", "check"): (1 if ruff_findings != "[]" else 0, ruff_findings, ""),
            (PY, "-m", "ruff", "format"): (0, "", ""),
            **pytest_tools.script(PY),
            ("uv", "lock", "--check"): (0, "", ""),
            ("uv", "python", "find"): (0, PY, ""),
        },
        executables={"uv": PY, "nox": PY},
    )


def write_pytest_reports(argv: Sequence[str]) -> None:
    """What a passing pytest run with junit and coverage leaves behind."""
    pytest_tools.write_reports(argv)


class SessionRunner:
    """Real git; ``nox -s X`` runs the gate in-process (as the session would); tools faked."""

    def __init__(self, env: Mapping[str, str], tools: FakeRunner | None = None) -> None:
        self.env = dict(env)
        self.tools = tools or fake_tools()
        self.sessions: list[str] = []
        self.barrier: threading.Barrier | None = None
        self._lock = threading.Lock()

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> Completed:
        if argv[0] == "git":
            return ProcessRunner().run(argv, cwd=cwd, env=env, timeout=timeout)
        if "nox" in argv:
            session = argv[-1]
            with self._lock:
                self.sessions.append(session)
            if self.barrier is not None:
                self.barrier.wait()  # only passes when the sessions run at the same time
            assert cwd is not None
            gate, _, python = session.partition("-")
            ctx = GateContext(
                config=load(cwd=cwd),
                runner=self,
                clock=FixedClock(),
                env={**self.env, **(env or {})},
                python=python or "3.12",
            )
            # inside nox the gate's venv is the session's: here it is where nox would put it
            result = pipeline.run_gate(gate, ctx, venv=cache.nox_envdir(cwd, session))
            out = f"{session} line 1\n{session} line 2\n"
            code = 0 if result else 1
            return Completed(argv=tuple(argv), returncode=code, stdout=out, stderr="", duration_s=0)
        write_pytest_reports(argv)
        return self.tools.run(argv, cwd=cwd, env=env, timeout=timeout, stream=stream)

    def which(self, name: str) -> str | None:
        return self.tools.which(name)


@pytest.fixture
def demo(make_repo, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = make_repo(demo_files())
    # Files just written would be "racy" (always re-hashed); age them like a real checkout.
    past = time.time() - 60
    for path in repo.rglob("*"):
        if ".git" not in path.parts:
            os.utime(path, (past, past))
    monkeypatch.chdir(repo)
    return repo


def pipeline_run(
    repo: Path, runner: SessionRunner, *args: str, env: Mapping[str, str] | None = None
) -> int:
    app = App(cwd=repo, runner=runner, clock=FixedClock(), env={**runner.env, **(env or {})})
    return main(["pipeline", "--jobs", "1", *SESSIONS, *args], app)


def base_env() -> dict[str, str]:
    return {"CI_STATE_DIR": os.environ["CI_STATE_DIR"], "PATH": os.environ.get("PATH", "")}


def edit(path: Path, text: str) -> None:
    path.write_text(text)
    past = time.time() - 30
    os.utime(path, (past, past))


# -- the main job ---------------------------------------------------------------------------


def test_second_run_replays_every_gate_without_nox(demo: Path, capsys) -> None:
    runner = SessionRunner(base_env())
    assert pipeline_run(demo, runner) == 0
    assert runner.sessions == ["lint", "test-3.12"]
    capsys.readouterr()

    runner.sessions.clear()
    assert pipeline_run(demo, runner) == 0
    out = capsys.readouterr().out
    assert runner.sessions == []
    assert "lint       cached" in out
    assert "test-3.12  cached" in out
    report = json.loads((demo / "reports" / "test-3.12.json").read_text())
    assert report["status"] == "cached"


def test_changing_any_file_reruns_every_gate_keyed_on_the_tree(demo: Path) -> None:
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.sessions.clear()
    edit(demo / "tests" / "data" / "sample.txt", "fixture, changed\n")
    assert pipeline_run(demo, runner) == 0
    assert runner.sessions == ["lint", "test-3.12"]  # a linter may read data files too


def test_changing_a_test_module_reruns_test_and_lint(demo: Path) -> None:
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.sessions.clear()
    edit(demo / "tests" / "test_demo.py", "def test_x():\n    assert 2\n")
    pipeline_run(demo, runner)
    assert runner.sessions == ["lint", "test-3.12"]  # lint reads every .py file too


def test_touch_without_change_keeps_the_cache(demo: Path) -> None:
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.sessions.clear()
    edit(demo / "tests" / "test_demo.py", (demo / "tests" / "test_demo.py").read_text())
    pipeline_run(demo, runner)
    assert runner.sessions == []


@pytest.mark.parametrize("rel", ["docs/guide.md", "bench/data.txt", "ignored/fixture.txt"])
def test_docs_bench_and_ignored_files_are_inputs(demo: Path, rel: str) -> None:
    # doctests and tests read docs/ and bench/; tests read ignored data files too
    (demo / ".gitignore").write_text("reports/\nignored/\n")
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.sessions.clear()
    (demo / rel).parent.mkdir(exist_ok=True)
    edit(demo / rel, "changed\n")
    pipeline_run(demo, runner)
    assert runner.sessions == ["lint", "test-3.12"]


def test_new_untracked_test_file_invalidates(demo: Path) -> None:
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.sessions.clear()
    edit(demo / "tests" / "test_new.py", "def test_y():\n    assert 1\n")
    pipeline_run(demo, runner)
    assert runner.sessions == ["lint", "test-3.12"]


@pytest.mark.parametrize(("flag", "env"), [("--no-cache", {}), (None, {"CI_NO_CACHE": "1"})])
def test_no_cache_runs_every_gate(demo: Path, flag: str | None, env: dict[str, str]) -> None:
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.sessions.clear()
    assert pipeline_run(demo, runner, *([flag] if flag else []), env=env) == 0
    assert runner.sessions == ["lint", "test-3.12"]


def test_no_cache_also_reaches_the_gate_inside_the_session(demo: Path) -> None:
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.tools.calls.clear()
    pipeline_run(demo, runner, "--no-cache")
    assert any(call[:4] == (PY, "-m", "ruff", "format") for call in runner.tools.calls)


def test_failed_gate_is_not_cached(demo: Path) -> None:
    finding = json.dumps(
        [
            {
                "filename": str(demo / "demo" / "__init__.py"),
                "code": "F401",
                "message": "unused",
                "location": {"row": 1},
            }
        ]
    )
    runner = SessionRunner(base_env(), fake_tools(finding))
    assert pipeline_run(demo, runner) == 1
    runner.sessions.clear()
    assert pipeline_run(demo, runner) == 1
    assert runner.sessions == ["lint"]  # test passed and was replayed; lint ran again


def test_injected_fault_is_part_of_every_key(demo: Path) -> None:
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.sessions.clear()
    pipeline_run(demo, runner, env={"CI_INJECT_FAULT": "lint"})
    assert runner.sessions == ["lint", "test-3.12"]


def test_secret_env_value_never_reaches_the_cache(demo: Path, monkeypatch) -> None:
    # DEPLOY_TOKEN matches mask_env (masked on write too); SERVICE_URL does not: only the
    # key's hashing keeps its embedded password out of the cache.
    with_inputs(monkeypatch, env=("DEPLOY_TOKEN", "SERVICE_URL"))
    url = f"https://deploy:{SECRET[::-1]}@example.invalid"
    runner = SessionRunner({**base_env(), "DEPLOY_TOKEN": SECRET, "SERVICE_URL": url})
    pipeline_run(demo, runner)
    state = Path(os.environ["CI_STATE_DIR"])
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "result.json" for p in files)
    for path in files:
        text = path.read_text(errors="replace")
        assert SECRET not in text, path
        assert SECRET[::-1] not in text, path
    # ... yet its value is part of the key: a new value re-runs the gate
    runner.sessions.clear()
    pipeline_run(demo, runner, env={"DEPLOY_TOKEN": SECRET + "-rotated"})
    assert runner.sessions == ["lint"]


def test_parallel_sessions_run_at_once_and_print_whole(demo: Path, capsys) -> None:
    runner = SessionRunner(base_env())
    runner.barrier = threading.Barrier(2, timeout=10)
    app = App(cwd=demo, runner=runner, clock=FixedClock(), env=runner.env)
    assert main(["pipeline", "--jobs", "2", *SESSIONS], app) == 0
    out = capsys.readouterr().out
    assert sorted(runner.sessions) == ["lint", "test-3.12"]
    for session in ("lint", "test-3.12"):
        block = f"==> nox -s {session}\n{session} line 1\n{session} line 2\n"
        assert block in out  # each session's output kept together
    assert out.index("line 2") < out.index("gate ")  # the summary comes last
    assert "lint       passed" in out
    assert "test-3.12  passed" in out


def test_jobs_must_be_positive(capsys) -> None:
    assert main(["pipeline", "--jobs", "0"]) == 2
    assert "--jobs must be a whole number" in capsys.readouterr().err


def test_dry_run_shows_the_plan(demo: Path, capsys) -> None:
    runner = SessionRunner(base_env())
    app = App(cwd=demo, runner=runner, clock=FixedClock(), env=runner.env)
    assert main(["pipeline", "--dry-run", "--jobs", "3", *SESSIONS], app) == 0
    out = capsys.readouterr().out
    assert "nox -s lint (replayed if its gates' inputs are unchanged)" in out
    assert "sessions run 3 at a time" in out
    assert runner.sessions == []
    assert not Path(os.environ["CI_STATE_DIR"]).exists()


def test_outside_git_the_tree_is_still_keyed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # tmp may sit in a work tree
    project = tmp_path / "plain"
    project.mkdir()
    for rel, text in demo_files().items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    monkeypatch.chdir(project)
    runner = SessionRunner(base_env())
    pipeline_run(project, runner)
    runner.sessions.clear()
    pipeline_run(project, runner)
    assert runner.sessions == []  # the key walks the file system: it needs no git
    edit(project / "docs" / "guide.md", "# Changed\n")
    pipeline_run(project, runner)
    assert runner.sessions == ["lint", "test-3.12"]


# -- the preflight --------------------------------------------------------------------------


def test_preflight_is_reused_until_the_lock_changes(demo: Path, capsys) -> None:
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.tools.calls.clear()
    pipeline_run(demo, runner)
    assert not [c for c in runner.tools.calls if c[0] == "uv"]
    assert "(reused:" in capsys.readouterr().out
    edit(demo / "uv.lock", LOCK + "\n")
    pipeline_run(demo, runner)
    assert ("uv", "lock", "--check") in runner.tools.calls


def test_failed_preflight_is_not_reused(demo: Path) -> None:
    runner = SessionRunner(base_env())
    runner.tools.script[("uv", "lock", "--check")] = (1, "", "error: lock is stale")
    assert pipeline_run(demo, runner) == 3
    runner.tools.script[("uv", "lock", "--check")] = (0, "", "")
    runner.tools.calls.clear()
    assert pipeline_run(demo, runner) == 0
    assert ("uv", "lock", "--check") in runner.tools.calls


# -- keys, entries, replay, eviction --------------------------------------------------------


def open_cache(repo: Path, env: Mapping[str, str] | None = None) -> GateCache:
    environ = {**base_env(), **(env or {})}
    return GateCache(load(cwd=repo), ProcessRunner(), FixedClock(), environ)


def test_key_is_stable_and_names_every_input(demo: Path) -> None:
    store = open_cache(demo)
    inputs = store.inputs("test", "3.12")
    assert inputs is not None
    assert store.key("test", "3.12") == open_cache(demo).key("test", "3.12")
    assert "tests/data/sample.txt" in inputs["files"]
    assert "docs/guide.md" in inputs["files"]
    assert inputs["files"]["tests/data/"] == "dir"
    assert inputs["tools"] == {
        "pytest": None,
        "pytest-cov": None,
        "pytest-xdist": None,
        "pytest-rerunfailures": None,
        "coverage": None,
    }
    assert inputs["config"]["gate"]["coverage_min"] == 85.0
    assert inputs["env"]["CI_INJECT_FAULT"] is None
    assert inputs["env"]["CI_STATE_DIR"] == cache.env_hash(os.environ["CI_STATE_DIR"])
    assert "PATH" not in inputs["env"]  # passed through, not keyed
    assert "gates/cache.py" in inputs["bundle"]
    assert set(inputs["extra_files"]) == {
        "{reports}/coverage-baseline.json",
        "{state}/coverage-baseline.json",
    }
    lint = store.inputs("lint", "3.12")
    assert lint is not None
    assert lint["tools"]["ruff"] == "0.14.0"  # read from uv.lock
    assert lint["files"] == inputs["files"]


def test_key_changes_with_python_args_and_env(demo: Path) -> None:
    store = open_cache(demo)
    base = store.key("test", "3.12")
    assert store.key("test", "3.13") != base
    assert store.key("test", "3.12", ["-k", "x"]) != base
    assert open_cache(demo, {"CI_INJECT_FAULT": "test"}).key("test", "3.12") != base


def test_daily_gate_key_changes_with_the_date(demo: Path, monkeypatch) -> None:
    with_inputs(monkeypatch, tools=(), daily=True)
    store = open_cache(demo)
    clock = FixedClock()
    store.clock = clock
    today = store.key("lint", "3.12")
    clock.advance(86400)
    assert store.key("lint", "3.12") != today


def test_gate_without_inputs_is_not_cacheable(demo: Path) -> None:
    pyproject = demo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.ci.gates.docs]\ncommand = ["true"]\n', encoding="utf-8"
    )
    assert open_cache(demo).key("docs", "3.12") is None
    with pytest.raises(UsageError, match="unknown gate 'nope'"):
        open_cache(demo).key("nope", "3.12")


def test_reports_and_state_folders_are_never_inputs(demo: Path, monkeypatch) -> None:
    monkeypatch.setenv("CI_STATE_DIR", ".ci-state")
    store = open_cache(demo, {"CI_STATE_DIR": ".ci-state"})
    before = store.key("test", "3.12")
    (demo / ".ci-state").mkdir()
    (demo / ".ci-state" / "x.json").write_text("{}")
    (demo / ".nox").mkdir()
    (demo / ".nox" / "junk.txt").write_text("x")
    assert open_cache(demo, {"CI_STATE_DIR": ".ci-state"}).key("test", "3.12") == before


def passed(artifacts: tuple[str, ...] = ()) -> GateResult:
    return GateResult(
        gate="test",
        variant="3.12",
        status=GateStatus.PASSED,
        duration_s=12.5,
        summary="3 passed",
        artifacts=artifacts,
    )


def test_replay_restores_artifacts_and_marks_cached(demo: Path) -> None:
    junit = demo / "reports" / "junit-3.12.xml"
    junit.parent.mkdir()
    junit.write_text("<testsuite tests='3'/>")
    store = open_cache(demo)
    assert store.store("k" * 64, passed(("reports/junit-3.12.xml",)), {})
    junit.unlink()
    entry = store.lookup("k" * 64)
    assert entry is not None
    result = store.replay(entry)
    assert junit.read_text() == "<testsuite tests='3'/>"
    assert result.status is GateStatus.CACHED
    assert result.summary == "3 passed (cached, ran in 12.5 s)"
    assert bool(result)


def test_only_passing_results_are_stored(demo: Path) -> None:
    store = open_cache(demo)
    failed = dataclasses.replace(passed(), status=GateStatus.FAILED)
    assert not store.store("f" * 64, failed, {})
    assert store.lookup("f" * 64) is None


def test_corrupt_entry_is_a_miss(demo: Path) -> None:
    store = open_cache(demo)
    store.store("c" * 64, passed(), {})
    (store.entry_dir("c" * 64) / "result.json").write_text("{oops")
    assert store.lookup("c" * 64) is None


def test_lru_evicts_least_recently_used(demo: Path) -> None:
    store = open_cache(demo)
    keys = [str(i) * 64 for i in range(3)]
    for age, key in enumerate(keys):
        store.store(key, passed(), {})
        stamp = time.time() - 100 + age
        os.utime(store.entry_dir(key) / "result.json", (stamp, stamp))
    assert store.lookup(keys[0]) is not None  # now the most recently used
    one = store.entries()[0][2]
    removed = store.evict(max_bytes=one * 2)
    assert removed == [store.entry_dir(keys[1])]
    assert store.lookup(keys[1]) is None
    assert store.lookup(keys[0]) is not None
    assert store.lookup(keys[2]) is not None


def test_store_respects_max_mb(demo: Path) -> None:
    (demo / "pyproject.toml").write_text(PYPROJECT + "\n[tool.ci.cache]\nmax_mb = 0\n")
    store = open_cache(demo)
    store.store("a" * 64, passed(), {})
    assert store.entries() == []


# -- the gate command -----------------------------------------------------------------------


def test_gate_command_replays_on_a_hit(demo: Path, capsys) -> None:
    tools = fake_tools()
    runner = SessionRunner(base_env(), tools)
    app = App(cwd=demo, runner=runner, clock=FixedClock(), env=runner.env)
    assert main(["gate", "lint"], app) == 0
    tools.calls.clear()
    capsys.readouterr()
    assert main(["gate", "lint"], app) == 0
    assert "lint: cached" in capsys.readouterr().out
    assert tools.calls == []
    assert main(["gate", "--no-cache", "lint"], app) == 0
    assert tools.calls


def test_cache_commands(demo: Path, capsys) -> None:
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    app = App(cwd=demo, runner=runner, clock=FixedClock(), env=runner.env)
    capsys.readouterr()
    assert main(["cache", "info"], app) == 0
    assert "2 result(s)" in capsys.readouterr().out
    assert main(["cache", "key", "lint"], app) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["key"] == cache.digest(shown["inputs"])
    assert main(["cache", "key", "nope"], app) == 2
    capsys.readouterr()
    assert main(["cache", "clear", "--dry-run"], app) == 0
    assert "would delete 2" in capsys.readouterr().out
    assert main(["cache", "clear"], app) == 0
    runner.sessions.clear()
    pipeline_run(demo, runner)
    assert runner.sessions == ["lint", "test-3.12"]


def test_gate_that_refuses_args_is_not_cached_with_them(demo: Path, monkeypatch) -> None:
    with_inputs(monkeypatch, args=False)
    store = open_cache(demo)
    assert store.key("lint", "3.12") is not None
    assert store.key("lint", "3.12", ["--history"]) is None


def test_external_folder_listing_is_part_of_the_key(
    demo: Path, tmp_path: Path, monkeypatch
) -> None:
    with_inputs(monkeypatch, folder_from=("DEMO_DB", "advisory_db"))
    db = tmp_path / "db"
    db.mkdir()
    (db / "PYSEC-1.json").write_text("{}")
    store = open_cache(demo, {"DEMO_DB": str(db)})
    before = store.key("lint", "3.12")
    (db / "PYSEC-2.json").write_text("{}")
    assert open_cache(demo, {"DEMO_DB": str(db)}).key("lint", "3.12") != before
    # without the env var the [tool.ci] field is used; unset both and no folder is read
    assert open_cache(demo).inputs("lint", "3.12")["folder"] is None


@pytest.mark.parametrize(
    "env",
    [{"GITHUB_REF_TYPE": "tag"}, {"GITHUB_REF": "refs/tags/v1.0.0"}, {"CI_NO_CACHE": "1"}],
)
def test_tags_never_replay(env: dict[str, str]) -> None:
    assert cache.enabled({})
    assert not cache.enabled(env)


def test_nox_envdir_matches_nox() -> None:
    from nox.sessions import _normalize_path  # the private function nox_envdir mirrors

    root = Path("/project")
    for session in ("lint", "test-3.12", "security", "Fancy Name!", "x" * 120, "\u00e9\u00e8"):
        assert cache.nox_envdir(root, session) == root / _normalize_path(".nox", session)


def fake_venv(prefix: Path) -> Path:
    site = prefix / "lib" / "python3.12" / "site-packages"
    (site / "pkg-1.0.dist-info").mkdir(parents=True)
    (prefix / "pyvenv.cfg").write_text("version = 3.12.1\n")
    return site


def test_venv_fingerprint_sees_pth_files_and_installed_versions(tmp_path: Path) -> None:
    site = fake_venv(tmp_path / "venv")
    index = cache.HashIndex(tmp_path / "files.json", tmp_path)
    before = cache.venv_fingerprint(tmp_path / "venv", index)
    (site / "__pycache__").mkdir()  # made by imports: not an install
    assert cache.venv_fingerprint(tmp_path / "venv", index) == before
    (site / "zz_local.pth").write_text("/somewhere\n")
    with_pth = cache.venv_fingerprint(tmp_path / "venv", index)
    assert with_pth != before
    (site / "zz_local.pth").write_text("import os\n")
    assert cache.venv_fingerprint(tmp_path / "venv", index) != with_pth
    (site / "pkg-1.0.dist-info").rename(site / "pkg-1.1.dist-info")
    assert cache.venv_fingerprint(tmp_path / "venv", index) != with_pth


def test_a_pth_in_the_session_venv_reruns_the_gate(demo: Path) -> None:
    site = fake_venv(cache.nox_envdir(demo, "test-3.12"))
    runner = SessionRunner(base_env())
    pipeline_run(demo, runner)
    runner.sessions.clear()
    (site / "evil.pth").write_text("import os; os.environ['APP_MODE'] = 'broken'\n")
    pipeline_run(demo, runner)
    assert runner.sessions == ["test-3.12"]


def test_gate_environment_passes_through_and_keys_only_what_is_declared() -> None:
    env = {
        "PATH": "/bin",
        "HOME": "/home/me",
        "APP_MODE": "broken",
        "PYTEST_ADDOPTS": "-W error",
        "PYTHONPATH": "/elsewhere",
        "LC_ALL": "C.UTF-8",
        "CI_INJECT_FAULT": "lint",
    }
    config = Config(root=Path("/nowhere"), path=None)
    spec = testgate.GATE.inputs
    assert spec is not None
    patterns = cache.declared_env(spec, config, "test")
    seen = cache.gate_environment(env, patterns)
    assert seen == {
        "PATH": "/bin",
        "HOME": "/home/me",
        "LC_ALL": "C.UTF-8",
        "CI_INJECT_FAULT": "lint",
    }
    keyed = cache.keyed_env(env, patterns)
    assert set(keyed) >= {"LC_ALL", "CI_INJECT_FAULT", "PYTHONPATH", "GITHUB_REF"}
    assert "PATH" not in keyed
    assert "APP_MODE" not in keyed
    assert keyed["GITHUB_REF"] is None  # declared and unset: setting it changes the key
    widened = cache.gate_environment(env, (*patterns, "APP_*"))
    assert widened["APP_MODE"] == "broken"


def test_confined_runner_starts_tools_with_the_filtered_environment(tmp_path: Path) -> None:
    runner = confined(ProcessRunner(), {"PATH": os.environ["PATH"], "KEEP": "1"})
    done = runner.run(
        [
            PY,
            "-c",
            "import os; print(sorted(k for k in os.environ if k in {'KEEP', 'CI_STATE_DIR'}))",
        ]
    )
    assert done.stdout.strip() == "['KEEP']"  # CI_STATE_DIR is set in this process, not there


@pytest.mark.parametrize(
    ("args", "config_file", "text", "flag"),
    [
        (["--lf"], None, "", "--lf"),
        (["-q", "--stepwise"], None, "", "--stepwise"),
        (["--randomly-seed=last"], None, "", "--randomly-seed=last"),
        ([], "pyproject.toml", '[tool.pytest.ini_options]\naddopts = "-ra --ff"\n', "--ff"),
        ([], "pyproject.toml", '[tool.pytest]\naddopts = ["-ra", "--sw"]\n', "--sw"),
        ([], "pytest.ini", "[pytest]\naddopts = --nf -q\n", "--nf"),
        ([], "setup.cfg", "[tool:pytest]\naddopts =\n    --last-failed\n", "--last-failed"),
    ],
)
def test_the_test_gate_is_not_cached_when_pytest_reads_its_cache_folder(
    demo: Path, args: list[str], config_file: str | None, text: str, flag: str
) -> None:
    """--lf, --ff, --sw, --nf pick tests from .pytest_cache, which no key covers."""
    if config_file == "pyproject.toml":
        (demo / config_file).write_text(PYPROJECT + text)
    elif config_file:
        (demo / config_file).write_text(text)
    key = open_cache(demo).resolve("test", "3.12", args)
    assert key.inputs is None
    assert flag in key.reason
    assert ".pytest_cache" in key.reason
    if not args:  # other gates never read it
        assert open_cache(demo).resolve("lint", "3.12").inputs is not None


def test_the_test_gate_stays_cached_without_those_flags(demo: Path) -> None:
    (demo / "pytest.ini").write_text("[pytest]\naddopts = -ra --strict-markers\n")
    assert open_cache(demo).resolve("test", "3.12", ["-q", "-k", "lf"]).inputs is not None


def test_an_entry_whose_artifact_is_missing_is_a_miss_and_removed(demo: Path) -> None:
    """It was a hit whose replay failed (exit 2) on every run until the cache was cleared."""
    junit = demo / "reports" / "junit-3.12.xml"
    junit.parent.mkdir()
    junit.write_text("<testsuite tests='3'/>")
    store = open_cache(demo)
    assert store.store("m" * 64, passed(("reports/junit-3.12.xml",)), {})
    (store.entry_dir("m" * 64) / "artifact-0").unlink()
    assert store.lookup("m" * 64) is None
    assert not store.entry_dir("m" * 64).exists()  # the rerun stores a whole one in its place
    assert store.store("m" * 64, passed(("reports/junit-3.12.xml",)), {})
    junit.unlink()
    entry = store.lookup("m" * 64)
    assert entry is not None
    assert store.replay(entry).status is GateStatus.CACHED
    assert junit.read_text() == "<testsuite tests='3'/>"


def test_the_gate_command_reruns_a_gate_whose_cached_artifact_is_missing(
    demo: Path, capsys
) -> None:
    runner = SessionRunner(base_env())
    app = App(cwd=demo, runner=runner, clock=FixedClock(), env=runner.env)
    assert main(["gate", "test"], app) == 0
    entries = Path(os.environ["CI_STATE_DIR"]) / "cache" / "entries"
    stored = list(entries.glob("*/*/artifact-*"))
    assert stored  # the test gate keeps its junit and coverage reports
    stored[0].unlink()
    runner.tools.calls.clear()
    capsys.readouterr()
    assert main(["gate", "test"], app) == 0
    assert ": passed (required)" in capsys.readouterr().out
    assert runner.tools.calls  # run again
    runner.tools.calls.clear()
    assert main(["gate", "test"], app) == 0
    assert ": cached (required)" in capsys.readouterr().out  # and its new entry replays
    assert runner.tools.calls == []


# -- a cached verdict is a fresh run's: inputs moving under the run, private home, git ------


def probe_project(root: Path, command: Sequence[str], inputs: Sequence[str] = ("*.txt",)) -> Path:
    """A project declaring gate ``probe`` (cached: it has inputs) that runs ``command``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f"{PYPROJECT}\n[tool.ci.gates.probe]\ncommand = {json.dumps(list(command))}\n"
        f"inputs = {json.dumps(list(inputs))}\n",
        encoding="utf-8",
    )
    return root


def probe(root: Path, env: Mapping[str, str], *flags: str) -> int:
    """``python -m ci gate [flags] probe`` in ``root``, with real processes."""
    app = App(cwd=root, runner=ProcessRunner(), clock=FixedClock(), env=dict(env))
    return main(["gate", *flags, "probe"], app)


def real_env(home: Path) -> dict[str, str]:
    return {**base_env(), "HOME": str(home)}


# Fixes app.txt the first time only (as someone fixing, then reverting, a file mid-run would),
# then passes when app.txt holds the fix.
FIX_ONCE = """\
import pathlib, sys
once, app = pathlib.Path(sys.argv[1]), pathlib.Path("app.txt")
if not once.exists():
    once.touch()
    app.write_text("fixed\\n")
sys.exit(0 if app.read_text() == "fixed\\n" else 1)
"""


def test_a_pass_for_inputs_edited_during_the_run_is_not_cached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = probe_project(tmp_path / "demo", [PY, "-c", FIX_ONCE, str(tmp_path / "once")])
    (root / "app.txt").write_text("broken\n")
    env = real_env(tmp_path / "home")
    assert probe(root, env) == 0  # the content it passed on was there only mid-run
    err = capsys.readouterr().err
    assert "probe: the inputs changed during the run; verdict not cached" in err
    (root / "app.txt").write_text("broken\n")  # back to what the run started from
    assert probe(root, env) == 1  # a fresh run's verdict, not the pass stored for "broken"
    assert "cached" not in capsys.readouterr().out
    assert probe(root, env) == 1


def test_a_pass_whose_inputs_stayed_is_cached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = probe_project(tmp_path / "demo", [PY, "-c", "pass"])
    (root / "app.txt").write_text("fine\n")
    env = real_env(tmp_path / "home")
    assert probe(root, env) == 0
    assert "verdict not cached" not in capsys.readouterr().err
    assert probe(root, env) == 0
    assert "probe: cached" in capsys.readouterr().out


# Passes when ~/.probe.cfg says ok (a test reading the user's home).
READS_HOME = """\
import pathlib, sys
cfg = pathlib.Path.home() / ".probe.cfg"
sys.exit(0 if cfg.is_file() and cfg.read_text() == "ok\\n" else 1)
"""


def test_a_cached_gate_cannot_read_the_users_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".probe.cfg").write_text("ok\n")
    root = probe_project(tmp_path / "demo", [PY, "-c", READS_HOME])
    assert probe(root, real_env(home)) == 1  # not named in inputs: not there for the gate


def test_home_files_named_in_inputs_are_keyed_and_copied_in(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".probe.cfg").write_text("ok\n")
    root = probe_project(tmp_path / "demo", [PY, "-c", READS_HOME], ["*.txt", "~/.probe.cfg"])
    env = real_env(home)
    assert probe(root, env) == 0
    (home / ".probe.cfg").write_text("changed\n")
    assert probe(root, env) == 1  # a new key, and the gate reads the new content
    (home / ".probe.cfg").write_text("ok\n")
    assert probe(root, env) == 0


# Records the environment the gate runs with, and the user config files it can read.
RECORDS_ENV = """\
import json, os, pathlib, sys
env = dict(os.environ)
config = pathlib.Path(env["XDG_CONFIG_HOME"])
env["ruff.toml"] = (config / "ruff" / "ruff.toml").read_text()
env["listing"] = sorted(
    str(p.relative_to(env["HOME"])) for p in pathlib.Path(env["HOME"]).rglob("*") if p.is_file()
)
pathlib.Path(sys.argv[1]).write_text(json.dumps(env))
"""


def test_a_cached_gate_runs_in_a_private_home_removed_after(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "ruff").mkdir(parents=True)
    (home / ".config" / "ruff" / "ruff.toml").write_text("line-length = 90\n")
    (home / ".netrc").write_text("machine example.invalid password hidden\n")
    (home / ".pypirc").write_text("[pypi]\npassword = hidden\n")  # keyed, never copied
    (home / ".cache" / "uv").mkdir(parents=True)
    seen_file = tmp_path / "seen.json"
    root = probe_project(tmp_path / "demo", [PY, "-c", RECORDS_ENV, str(seen_file)])
    assert probe(root, real_env(home), "--no-cache") == 0  # --no-cache: the same confinement
    seen = json.loads(seen_file.read_text())
    private = Path(seen["HOME"])
    assert private != home
    assert not private.exists()  # removed after the run
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        assert Path(seen[name]).is_relative_to(private)
    for name in ("RUFF_CACHE_DIR", "MYPY_CACHE_DIR"):
        assert Path(seen[name]).is_relative_to(private)
    assert f"-o cache_dir={private}/" in seen["PYTEST_ADDOPTS"]
    assert seen["UV_CACHE_DIR"] == str(home / ".cache" / "uv")  # the machine's download cache
    assert seen["ruff.toml"] == "line-length = 90\n"  # a user config the key covers: copied
    assert seen["listing"] == [".config/ruff/ruff.toml"]  # nothing else: no .netrc, no .pypirc


GIT_TAGS = """\
import subprocess, sys
tags = subprocess.run(["git", "tag", "--list"], capture_output=True, text=True, check=True)
sys.exit(1 if tags.stdout.strip() else 0)
"""


def test_a_new_tag_reruns_the_gate(make_repo, tmp_path: Path) -> None:
    root = make_repo({"app.txt": "fine\n"})
    probe_project(root, [PY, "-c", GIT_TAGS])
    env = real_env(tmp_path / "home")
    assert probe(root, env) == 0
    git(root, "tag", "v1.0")
    assert probe(root, env) == 1  # git state is keyed: a fresh run sees the tag


def test_the_key_names_head_refs_index_and_git_config(make_repo) -> None:
    root = make_repo({"app.txt": "fine\n", "pyproject.toml": PYPROJECT})
    state = open_cache(root).inputs("lint", "3.12")["git_state"]
    assert set(state) == {"head", "refs", "index", "config"}
    assert all(state.values())
    git(root, "branch", "other")  # a ref nothing in the tree shows
    assert open_cache(root).inputs("lint", "3.12")["git_state"]["refs"] != state["refs"]
    git(root, "config", "remote.origin.url", "https://example.invalid/demo.git")
    assert open_cache(root).inputs("lint", "3.12")["git_state"]["config"] != state["config"]


# A test that trusts what pytest's cache folder holds from an earlier run.
CACHE_TEST = """\
def test_first_run(cache):
    assert cache.get("probe/seen", None) is None
    cache.set("probe/seen", True)
"""


def test_pytest_answers_from_no_cache_folder_of_earlier_runs(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "demo", [PY, "-m", "pytest", "-q", "tests"], ["tests/**"])
    (root / "tests").mkdir()
    (root / "tests" / "test_probe.py").write_text(CACHE_TEST)
    env = real_env(tmp_path / "home")
    assert probe(root, env, "--no-cache") == 0
    assert probe(root, env, "--no-cache") == 0  # the first run's cache is gone with its home
    assert not (root / ".pytest_cache").exists()


def test_the_lint_gate_keeps_no_ruff_cache_in_the_project(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    (root / "demo").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "demo" / "__init__.py").write_text('"""Demo."""\n')
    app = App(cwd=root, runner=ProcessRunner(), clock=FixedClock(), env=real_env(tmp_path / "h"))
    assert main(["gate", "--no-cache", "lint"], app) == 0
    assert not (root / ".ruff_cache").exists()  # ruff's cache went with the private home
