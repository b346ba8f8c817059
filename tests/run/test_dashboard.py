"""The dashboard page, its charts and tables, the step summary trends, and the command."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from ci.cli import main as cli
from ci.cli.app import App
from ci.core.config import Config, Waiver, load
from ci.run import dashboard, history
from ci.run.history import Facts, GateRun, History, PipelineRun, Point
from ci.testing.fakes import FakeRunner, FixedClock
from tests.support import history_sample


def gate(gate_id: str = "lint", day: int = 1, **fields: object) -> GateRun:
    facts = Facts(time=f"2026-01-{day:02d}T00:00:00+00:00")
    values: dict[str, object] = {"status": "passed", "duration_s": 1.0, **fields}
    return GateRun(facts=facts, gate=gate_id.split("-", maxsplit=1)[0], id=gate_id, **values)  # type: ignore[arg-type]


def page(records: History, waivers: tuple[Waiver, ...] = ()) -> str:
    config = Config(root=Path("/x/proj"), path=None, waivers=waivers)
    facts = dashboard.page_from(
        config, records, [], today=dt.date(2026, 1, 10), generated="2026-01-10T00:00:00+00:00"
    )
    return dashboard.render(facts)


@pytest.mark.parametrize(
    ("count", "limit", "expected"),
    [
        (0, 60, 0),
        (5, 60, 5),
        (60, 60, 60),
        (61, 60, 31),  # two runs a point
        (10_000, 60, 60),
    ],
)
def test_downsample_keeps_at_most_the_limit(count: int, limit: int, expected: int) -> None:
    points = [Point(time=f"t{n}", value=float(n)) for n in range(count)]
    drawn = dashboard.downsample(points, limit)
    assert len(drawn) == expected
    if count > limit:
        assert drawn[0].value == pytest.approx(statistics_median(points, -(-count // limit)))
        assert drawn[-1].time == f"t{count - 1}"


def statistics_median(points: list[Point], size: int) -> float:
    values = sorted(p.value for p in points[:size])
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def test_an_empty_history_is_a_page_that_says_so() -> None:
    text = page(History())
    assert "No run history yet" in text
    assert "<svg" not in text
    assert "invoke ci" in text


def test_a_page_has_charts_tables_and_text_alternatives() -> None:
    records = History(
        gates=(
            gate("lint", 1, duration_s=3.0, budget_s=2.0),
            gate("lint", 2, status="cached", cached=True, duration_s=0.1),
            gate(
                "test-3.12",
                2,
                coverage=90.5,
                coverage_min=85.0,
                flaky=("tests/t.py::test_<odd>",),
                slowest=(("tests/t.py::test_slow", 2.0),),
            ),
        ),
        runs=(
            PipelineRun(
                facts=Facts(time="2026-01-02T00:00:00+00:00"), status="passed", duration_s=9.0
            ),
        ),
    )
    text = page(records)
    svgs = re.findall(r"<svg [^>]*>", text)
    assert len(svgs) == 6  # pass rate, durations, p50/p95, coverage, slow tests, cache
    assert all('role="img"' in s and "aria-label=" in s for s in svgs)
    assert "<script" not in text
    assert not re.search(r'(?:src|href)="(?:https?:)?//', text)  # loads nothing
    assert "tests/t.py::test_&lt;odd&gt;" in text  # names are escaped
    assert "test_<odd>" not in text
    assert "prefers-color-scheme: dark" in text
    assert text.count("<table>") >= 5


@pytest.mark.parametrize(
    ("expires", "shown", "red"),
    [
        (dt.date(2026, 1, 9), "expired 1 day(s) ago", True),
        (dt.date(2026, 1, 10), "0 day(s)", False),
        (dt.date(2026, 3, 1), "50 day(s)", False),
    ],
)
def test_waivers_show_days_to_expiry_and_expired_ones_in_red(
    expires: dt.date, shown: str, red: bool
) -> None:
    text = page(History(), (Waiver(id="PYSEC-9", reason="why", expires=expires),))
    assert shown in text
    assert ('<code class="bad">PYSEC-9</code>' in text) is red


def test_trends_markdown_is_compact_with_a_mermaid_chart() -> None:
    runs = tuple(
        PipelineRun(
            facts=Facts(time=f"2026-01-0{n}T00:00:00+00:00"), status="passed", duration_s=10.0 + n
        )
        for n in range(1, 4)
    )
    records = History(
        gates=(gate("test-3.12", flaky=("tests/t.py::test_wobbly",)), gate("test-3.12")),
        runs=runs,
    )
    text = dashboard.trends_markdown(records)
    assert "| `test-3.12` | 2 | 100 % |" in text
    assert "```mermaid\nxychart-beta" in text
    assert "bar [11.0, 12.0, 13.0]" in text
    assert "`tests/t.py::test_wobbly` (1 runs)" in text
    assert "**over**" in text  # 1 in 2 runs is over the 5 % target
    assert dashboard.trends_markdown(History()) == "## Run history\n\nNo run history yet.\n"


def test_the_command_draws_what_the_hooks_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = history_sample.recorded_project(tmp_path / "proj")
    monkeypatch.setenv("CI_STATE_DIR", str(state))
    summary = tmp_path / "summary.md"
    app = App(
        cwd=tmp_path / "proj",
        runner=FakeRunner(),
        clock=FixedClock(dt.datetime(2026, 11, 26, tzinfo=dt.UTC)),
        env={"CI_STATE_DIR": str(state), "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert cli.main(["dashboard", "--summary"], app) == 0
    out = capsys.readouterr().out
    assert "8 pipeline run(s), 24 gate run(s)" in out
    text = (tmp_path / "proj" / "reports" / "dashboard.html").read_text()
    assert history_sample.FLAKY_TEST in text
    assert f'<code class="bad">{history_sample.EXPIRED_WAIVER}</code>' in text
    assert "release-manager" in text and "CAB-42 approved" in text  # the approval
    assert "holder process is gone" in text  # the takeover
    assert "other-maintainer" in text  # the lock contention
    assert "Run history" in summary.read_text()
    config = load(tmp_path / "proj" / "pyproject.toml")
    assert config.history.keep == 2000


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["dashboard", "--summary"], {}, "--summary needs GITHUB_STEP_SUMMARY"),
        (["dashboard", "--output", "."], {}, "is a folder; name the file"),
        (["dashboard"], {"CI_STATE_BACKEND": "cloud"}, "CI_STATE_BACKEND='cloud' is not one of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "1"\n')
    app = App(cwd=tmp_path, runner=FakeRunner(), env={"CI_STATE_DIR": str(tmp_path / "s"), **env})
    assert cli.main(argv, app) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_an_empty_project_gets_the_empty_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "1"\n')
    out = tmp_path / "site" / "index.html"
    app = App(cwd=tmp_path, runner=FakeRunner(), env={"CI_STATE_DIR": str(tmp_path / "s")})
    assert cli.main(["dashboard", "--output", str(out)], app) == 0
    assert "no run history yet" in capsys.readouterr().out
    assert "No run history yet" in out.read_text()


def test_a_broken_ledger_is_named_on_the_page_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "1"\n')
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "ledger.jsonl").write_text("not json\n")
    app = App(cwd=tmp_path, runner=FakeRunner(), env={"CI_STATE_DIR": str(tmp_path / "s")})
    assert cli.main(["dashboard"], app) == 0
    assert "failed verification at entry 1" in capsys.readouterr().out
    assert "The ledger cannot be read" in (tmp_path / "reports" / "dashboard.html").read_text()


def test_history_record_of_the_sample_is_read_back(tmp_path: Path) -> None:
    state = history_sample.recorded_project(tmp_path / "proj", runs=3)
    from ci.deploy.backend import StateBackend
    from ci.deploy.store import LocalStore

    records = history.read(StateBackend(LocalStore(state)))
    assert [r.id for r in records.gates[:3]] == ["lint", "test-3.12", "audit"]
    assert records.gates[1].slowest[0][0] == "tests.test_db::test_migrations_apply_in_order"
    assert len(records.runs) == 3


def test_the_main_job_summary_ends_with_the_trends_on_github(tmp_path: Path) -> None:
    from ci.cli import core as core_commands

    state = history_sample.recorded_project(tmp_path / "proj", runs=3)
    summary = tmp_path / "summary.md"
    summary.write_text("## gates\n")
    env = {"CI_STATE_DIR": str(state), "GITHUB_STEP_SUMMARY": str(summary)}
    core_commands.summary_trends(App(cwd=tmp_path / "proj", runner=FakeRunner(), env=env))
    text = summary.read_text()
    assert text.startswith("## gates\n")
    assert "| `test-3.12` | 3 | 100 % |" in text
    assert "xychart-beta" in text
    core_commands.summary_trends(App(cwd=tmp_path / "proj", runner=FakeRunner(), env={}))
    assert summary.read_text() == text  # off GitHub: nothing


@pytest.mark.parametrize(
    ("stamps", "shape"),
    [
        ([], "%Y-%m-%d"),
        (["2026-01-01T10:00:00+00:00"], "%d %b %H:%M"),
        (["2026-01-01T10:00:00+00:00", "2026-01-02T09:00:00Z"], "%d %b %H:%M"),  # runs of a day
        (["2026-01-01T10:00:00+00:00", "2026-01-03T10:00:00+00:00"], "%Y-%m-%d"),
    ],
)
def test_the_time_axis_names_hours_for_a_short_history(stamps: list[str], shape: str) -> None:
    assert dashboard.time_format(stamps) == shape
