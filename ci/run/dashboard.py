"""The dashboard: one self-contained HTML page of the run history, the ledger and the waivers.

Charts are drawn here, server-side, as inline SVG by pygal; the page loads nothing (no
script, no font, no stylesheet from anywhere) and reads the same from disk or as a CI
artifact. Every chart has a title, a text alternative and a table under it with its numbers;
colours follow the reader's light or dark mode. ``trends_markdown`` is the compact form the
step summary of a GitHub job carries.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ci.core.config import Config
from ci.deploy.ledger import Entry
from ci.run import history
from ci.run.history import DeployStats, GateStats, History, Point, WaiverDue

MAX_POINTS = 60  # points per chart line: a long history is drawn as medians of runs in a row
TOP_SLOW = 10
# pygal writes a script of tooltip settings into every chart; the page runs no script
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)
_COLORS = ("#2f81f7", "#d29922", "#8957e5", "#1f883d", "#cf222e", "#0a9396", "#bf3989", "#6e7781")


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """What the page shows, gathered: the history, the ledger (or why not), the waivers."""

    project: str
    generated: str
    history: History
    entries: tuple[Entry, ...] = ()
    ledger_problem: str = ""
    waivers: tuple[WaiverDue, ...] = ()
    floor: float | None = None


def page_from(
    config: Config,
    records: History,
    entries: Sequence[Entry],
    *,
    today: dt.date,
    generated: str,
    ledger_problem: str = "",
) -> Page:
    """The page's facts for ``config``'s project."""
    test = config.gate("test")
    return Page(
        project=config.project_name or config.root.name,
        generated=generated,
        history=records,
        entries=tuple(entries),
        ledger_problem=ledger_problem,
        waivers=tuple(history.waivers_due(config.waivers, today)),
        floor=test.coverage_min,
    )


# ---- series --------------------------------------------------------------------------------


def downsample(points: Sequence[Point], limit: int = MAX_POINTS) -> list[Point]:
    """At most ``limit`` points: runs in a row merged into their median, labelled by the last."""
    if len(points) <= limit:
        return list(points)
    size = -(-len(points) // limit)
    merged = []
    for start in range(0, len(points), size):
        chunk = points[start : start + size]
        merged.append(
            Point(
                time=chunk[-1].time,
                value=statistics.median(p.value for p in chunk),
                label=f"median of {len(chunk)}",
            )
        )
    return merged


def _day(stamp: str) -> str:
    return stamp[:10]


def _pct(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f} %"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


# ---- charts --------------------------------------------------------------------------------


def _style() -> Any:  # noqa: ANN401 - a pygal Style
    from pygal.style import Style  # noqa: PLC0415 - imported when a page is drawn

    return Style(
        background="transparent",
        plot_background="transparent",
        foreground="currentColor",
        foreground_strong="currentColor",
        foreground_subtle="#8c959f",
        guide_stroke_color="#8c959f",
        major_guide_stroke_color="#8c959f",
        opacity=".85",
        opacity_hover="1",
        colors=_COLORS,
        font_family="system-ui, sans-serif",
        title_font_family="system-ui, sans-serif",
        label_font_family="system-ui, sans-serif",
        major_label_font_family="system-ui, sans-serif",
        legend_font_family="system-ui, sans-serif",
        value_font_family="system-ui, sans-serif",
        tooltip_font_family="system-ui, sans-serif",
        no_data_font_family="system-ui, sans-serif",
        title_font_size=15,
        legend_font_size=12,
        no_data_font_size=20,
    )


def _chart(kind: str, title: str, **options: Any) -> Any:  # noqa: ANN401 - a pygal chart
    import pygal  # noqa: PLC0415 - imported when a page is drawn

    settings: dict[str, Any] = {
        "title": title,
        "style": _style(),
        "js": [],
        "disable_xml_declaration": True,
        "width": 820,
        "height": 340,
        "explicit_size": False,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 4,
        "truncate_legend": 40,
        "x_label_rotation": 0,
        "truncate_label": 48,
        "show_minor_x_labels": False,
        "dots_size": 2,
        "margin": 12,
        "margin_bottom": 28,  # room under the legend (its text sits on the edge otherwise)
        "no_data_text": "no data",
        **options,
    }
    chart: Any = getattr(pygal, kind)(**settings)
    return chart


def _svg(chart: Any, alt: str) -> str:  # noqa: ANN401 - a pygal chart
    """The chart as inline SVG with a text alternative, without pygal's script."""
    text = _SCRIPT.sub("", chart.render(is_unicode=True))
    label = html.escape(alt, quote=True)
    return text.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


def _major_every(count: int) -> int:
    return max(1, -(-count // 6))


def _when(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def time_format(stamps: Sequence[str]) -> str:
    """How the time axis names its moments: dates, or hours when the runs span a day or two."""
    if not stamps:
        return "%Y-%m-%d"
    span = _when(max(stamps)) - _when(min(stamps))
    return "%d %b %H:%M" if span < dt.timedelta(days=2) else "%Y-%m-%d"


def _time_chart(
    title: str,
    series: dict[str, list[Point]],
    **options: Any,  # noqa: ANN401 - pygal's options
) -> Any:  # noqa: ANN401 - a pygal chart
    """A chart whose x axis is time: each series' runs at their own moments."""
    shape = time_format([p.time for points in series.values() for p in points])
    return _chart(
        "DateTimeLine",
        title,
        x_value_formatter=lambda when: when.strftime(shape),
        show_minor_x_labels=True,
        x_label_rotation=20,
        **options,
    )


def _flat(chart: Any, title: str, value: float, points: Sequence[Point]) -> None:  # noqa: ANN401
    """A dashed horizontal line (a budget, a floor) across ``points``' time span."""
    span = [_when(points[0].time), _when(points[-1].time)]
    chart.add(
        title,
        [(when, value) for when in span],
        show_dots=False,
        stroke_style={"dasharray": "6,4", "width": 2},
    )


def duration_chart(series: dict[str, list[Point]], budgets: dict[str, float]) -> str:
    """Fresh-run duration of each gate over time, each budget a dashed line."""
    chart = _time_chart("Gate duration per run against its budget (s)", series)
    parts = []
    for gate_id, points in series.items():
        drawn = downsample(points)
        chart.add(
            gate_id,
            [{"value": (_when(p.time), p.value), "label": f"{p.time} {p.label}"} for p in drawn],
        )
        parts.append(f"{gate_id} last {_secs(drawn[-1].value)}")
        if gate_id in budgets:
            _flat(chart, f"{gate_id} budget", budgets[gate_id], points)
    alt = "Line chart of gate durations over time: " + "; ".join(parts) + "."
    return _svg(chart, alt)


def pass_rate_chart(days: Sequence[tuple[str, float, int]]) -> str:
    """The share of gate runs that passed, per day."""
    chart = _chart("Line", "Gate runs that passed, per day (%)", range=(0, 100), fill=True)
    chart.x_labels = [d for d, _, _ in days]
    chart.x_labels_major_every = _major_every(len(days))
    chart.add("passed", [{"value": round(r * 100, 1), "label": f"{n} runs"} for _, r, n in days])
    last = f"{days[-1][1] * 100:.0f} % on {days[-1][0]}" if days else "no runs"
    return _svg(chart, f"Line chart of the daily pass rate of gate runs; last {last}.")


def percentile_chart(stats: Sequence[GateStats]) -> str:
    """p50 and p95 of fresh-run durations per gate."""
    chart = _chart(
        "Bar", "Duration per gate: p50 and p95 of fresh runs (s)", show_minor_x_labels=True
    )
    shown = [s for s in stats if s.p50_s is not None]
    chart.x_labels = [s.id for s in shown]
    chart.add("p50", [round(s.p50_s or 0, 2) for s in shown])
    chart.add("p95", [round(s.p95_s or 0, 2) for s in shown])
    alt = "; ".join(f"{s.id} p50 {_secs(s.p50_s)}, p95 {_secs(s.p95_s)}" for s in shown)
    return _svg(chart, f"Bar chart of duration percentiles per gate: {alt or 'no fresh runs'}.")


def coverage_chart(series: dict[str, list[Point]], floor: float | None) -> str:
    """Total coverage per test gate over time, and the floor."""
    values = [p.value for points in series.values() for p in points]
    values += [floor] if floor is not None else []
    low, high = (min(values), max(values)) if values else (0.0, 100.0)
    bounds = (max(0.0, low - 2), min(100.0, high + 2))
    chart = _time_chart("Coverage per run against the floor (%)", series, range=bounds)
    parts = []
    everything: list[Point] = []
    for gate_id, points in series.items():
        drawn = downsample(points)
        chart.add(gate_id, [(_when(p.time), round(p.value, 2)) for p in drawn])
        parts.append(f"{gate_id} last {drawn[-1].value:.1f} %")
        everything += points
    if floor is not None and everything:
        everything.sort(key=lambda p: p.time)
        _flat(chart, f"floor {floor:g} %", floor, everything)
    alt = "Line chart of coverage over time: " + ("; ".join(parts) or "no coverage measured")
    return _svg(chart, alt + (f"; floor {floor:g} %." if floor is not None else "."))


def slow_tests_chart(slow: Sequence[history.SlowTest]) -> str:
    """The slowest tests by median time."""
    chart = _chart("HorizontalBar", "Top 10 slow tests (median s)", show_legend=False)
    shown = list(reversed(slow))
    chart.x_labels = [_short(t.name) for t in shown]
    chart.add("median", [{"value": round(t.median_s, 3), "label": t.name} for t in shown])
    alt = "; ".join(f"{t.name} {t.median_s:.2f} s" for t in slow)
    return _svg(chart, f"Bar chart of the slowest tests: {alt or 'none recorded'}.")


def cache_chart(stats: Sequence[GateStats]) -> str:
    """The share of each gate's runs replayed from the cache."""
    chart = _chart("HorizontalBar", "Cache hits per gate (%)", range=(0, 100), show_legend=False)
    shown = list(reversed(stats))
    chart.x_labels = [s.id for s in shown]
    chart.add("cache hits", [round((s.cache_hit_rate or 0) * 100, 1) for s in shown])
    alt = "; ".join(f"{s.id} {_pct(s.cache_hit_rate)}" for s in stats)
    return _svg(chart, f"Bar chart of cache hit rate per gate: {alt}.")


def deploys_chart(stats: DeployStats) -> str:
    """Deploys and rollbacks per week."""
    chart = _chart("Bar", "Deploys and rollbacks per week", show_minor_x_labels=True)
    chart.x_labels = [w for w, _, _ in stats.per_week]
    chart.add("deploys", [d for _, d, _ in stats.per_week])
    chart.add("rollbacks", [r for _, _, r in stats.per_week])
    alt = "; ".join(f"{w}: {d} deploys, {r} rollbacks" for w, d, r in stats.per_week)
    return _svg(chart, f"Bar chart of deploys and rollbacks per week: {alt}.")


def _short(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


# ---- the page ------------------------------------------------------------------------------


CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --bg: #ffffff; --muted: #59636e;
  --card: #f6f8fa; --line: #d1d9e0; --bad: #cf222e; --ok: #1a7f37; --warn: #9a6700; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --card: #151b23; --line: #3d444d;
    --bad: #ff7b72; --ok: #3fb950; --warn: #d29922; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 70rem; padding: 1.5rem; color: var(--fg);
  background: var(--bg); font: 15px/1.5 system-ui, sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; border-bottom: 1px solid var(--line); }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; padding: 0; }
.cards li { list-style: none; background: var(--card); border: 1px solid var(--line);
  border-radius: 6px; padding: .6rem .9rem; min-width: 10rem; }
.cards b { display: block; font-size: 1.35rem; }
figure { margin: 0 0 .75rem; }
figure svg { width: 100%; height: auto; color: var(--fg); }
figcaption { color: var(--muted); font-size: .9rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left;
  vertical-align: top; }
th { background: var(--card); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: var(--bad); font-weight: 600; }
.ok { color: var(--ok); }
.warn { color: var(--warn); }
code { font-size: .88em; overflow-wrap: anywhere; }
.empty { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
  padding: 1rem; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(
    caption: str, header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()
) -> str:
    """An HTML table; cells are already escaped HTML."""
    nums = set(numeric)
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in nums else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(header)}" class="muted">none</td></tr>'
    return (
        f'<table><caption class="muted">{_e(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


def _section(key: str, title: str, *parts: str) -> str:
    return (
        f'<section id="{key}" aria-labelledby="{key}-h"><h2 id="{key}-h">{_e(title)}</h2>'
        + "".join(parts)
        + "</section>"
    )


def _trend_word(trend: str) -> str:
    return {"up": "↑ rising", "down": "↓ falling", "flat": "→ steady"}[trend]


def render(page: Page) -> str:
    """The whole HTML page."""
    records = page.history
    title = f"noxgate dashboard: {page.project}"
    head = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1>"
        f'<p class="muted">Generated {_e(page.generated)}. {_span(records)}</p></header><main>'
    )
    parts: list[str] = []
    if records.empty:
        parts.append(
            '<section id="empty" class="empty" aria-labelledby="empty-h">'
            '<h2 id="empty-h">No run history yet</h2><p>Nothing has been recorded: run '
            "<code>invoke ci</code> (or <code>python -m ci gate NAME</code>) a few times, then "
            "<code>python -m ci dashboard</code> again. Each gate run and each pipeline run "
            "adds a record to the state backend's history.</p></section>"
        )
    else:
        parts += _history_sections(records, page.floor)
    parts.append(_deploy_section(page))
    parts.append(_waiver_section(page.waivers))
    if records.skipped:
        parts.append(
            f'<p class="warn">{records.skipped} history line(s) could not be read (damaged or '
            "written by a newer noxgate) and are left out.</p>"
        )
    return head + "".join(parts) + "</main></body></html>\n"


def _span(records: History) -> str:
    times = [r.facts.time for r in records.gates] + [r.facts.time for r in records.runs]
    if not times:
        return "No runs recorded."
    return (
        f"{len(records.runs)} pipeline run(s) and {len(records.gates)} gate run(s), "
        f"{_day(min(times))} to {_day(max(times))}."
    )


def _history_sections(records: History, floor: float | None) -> list[str]:
    stats = history.gate_stats(records.gates)
    flaky = history.flaky_stats(records.gates)
    runs = records.runs
    pipeline_rate = history.rate(sum(r.passed for r in runs), len(runs))
    flaky_class = "ok" if flaky.within_target else "bad"
    cards = [
        ("pipeline runs passed", _pct(pipeline_rate), ""),
        ("gate runs", str(len(records.gates)), ""),
        ("cache hit rate", _pct(history.cache_hit_rate(records.gates)), ""),
        (f"flaky rate (target < {flaky.target * 100:g} %)", _pct(flaky.rate, 1), flaky_class),
    ]
    summary = (
        '<ul class="cards">'
        + "".join(
            f'<li><b class="{cls}">{_e(value)}</b>{_e(label)}</li>' for label, value, cls in cards
        )
        + "</ul>"
    )
    budgets = {s.id: s.budget_s for s in stats if s.budget_s is not None}
    gate_rows = [
        [
            f"<code>{_e(s.id)}</code>",
            str(s.runs),
            _pct(s.pass_rate),
            _e(_trend_word(s.pass_trend)),
            _secs(s.p50_s),
            _secs(s.p95_s),
            _secs(s.budget_s),
            f'<span class="bad">{s.over_budget}</span>' if s.over_budget else "0",
            _pct(s.cache_hit_rate),
        ]
        for s in stats
    ]
    gates_table = _table(
        "Per gate: runs, pass rate and its trend (last 10 runs against the 10 before), "
        "p50/p95 of fresh runs, budget, runs over budget, cache hits",
        ["gate", "runs", "passed", "trend", "p50", "p95", "budget", "over budget", "cached"],
        gate_rows,
        numeric=(1, 2, 4, 5, 6, 7, 8),
    )
    days = history.daily_pass_rate(records.gates)
    sections = [
        summary,
        _section(
            "pass-rate",
            "Gate pass rate",
            _figure(pass_rate_chart(days), "Share of gate runs that passed, per day."),
            gates_table,
        ),
        _section(
            "durations",
            "Duration against budget",
            _figure(
                duration_chart(history.duration_series(records.gates), budgets),
                f"Fresh runs only; more than {MAX_POINTS} runs are drawn as medians of runs "
                "in a row. Dashed: the gate's budget_s.",
            ),
            _figure(percentile_chart(stats), "p50 and p95 of each gate's fresh runs."),
        ),
    ]
    coverage = history.coverage_series(records.gates)
    cov_rows = [
        [
            f"<code>{_e(g)}</code>",
            f"{p[-1].value:.1f} %",
            f"{min(x.value for x in p):.1f} %",
            _e(_trend_word(history.trend([x.value for x in p]))),
        ]
        for g, p in coverage.items()
    ]
    sections.append(
        _section(
            "coverage",
            "Coverage",
            _figure(coverage_chart(coverage, floor), "Total coverage of each test run."),
            _table(
                f"Coverage per test gate (floor {floor:g} %)" if floor is not None else "Coverage",
                ["gate", "last", "lowest", "trend"],
                cov_rows,
                numeric=(1, 2),
            ),
        )
    )
    slow = history.slow_tests(records.gates, TOP_SLOW)
    sections.append(
        _section(
            "slow-tests",
            "Top 10 slow tests",
            _figure(slow_tests_chart(slow), "Median time over the last 50 fresh test runs."),
            _table(
                "Slowest tests",
                ["test", "median", "runs seen"],
                [[f"<code>{_e(t.name)}</code>", f"{t.median_s:.2f} s", str(t.seen)] for t in slow],
                numeric=(1, 2),
            ),
        )
    )
    verdict = (
        f'<p>Flaky rate: <b class="{flaky_class}">{_pct(flaky.rate, 1)}</b> of '
        f"{flaky.test_runs} fresh test run(s) had a test that failed, then passed on rerun "
        f"(target: under {flaky.target * 100:g} %).</p>"
    )
    sections.append(
        _section(
            "flaky",
            "Flaky tests",
            verdict,
            _table(
                "Tests that failed, then passed on rerun",
                ["test", "runs flaky", "last seen"],
                [[f"<code>{_e(n)}</code>", str(c), _e(last)] for n, c, last in flaky.tests],
                numeric=(1,),
            ),
        )
    )
    sections.append(
        _section(
            "cache",
            "Cache hit rate",
            _figure(cache_chart(stats), "Share of each gate's runs replayed from the cache."),
        )
    )
    return sections


def _deploy_section(page: Page) -> str:
    if page.ledger_problem:
        return _section(
            "deploys",
            "Deploys",
            f'<p class="bad">The ledger cannot be read: {_e(page.ledger_problem)}</p>',
        )
    stats = history.deploy_stats(page.entries)
    locks = page.history.locks
    if not page.entries and not locks:
        return _section("deploys", "Deploys", '<p class="muted">No deploys recorded.</p>')
    envs = sorted(set(stats.deploys) | set(stats.rollbacks))
    none: Counter[str] = Counter()
    env_rows = [
        [
            _e(env),
            str(stats.deploys.get(env, none)["succeeded"]),
            _bad_count(stats.deploys.get(env, none)["failed"]),
            str(stats.rollbacks.get(env, none)["succeeded"]),
            _bad_count(stats.rollbacks.get(env, none)["failed"]),
        ]
        for env in envs
    ]
    weeks = len(stats.per_week) or 1
    frequency = (
        f"<p>{stats.total_deploys} deploy(s) and {stats.total_rollbacks} rollback(s) in "
        f"{len(stats.per_week)} week(s) with deploys: {stats.total_deploys / weeks:.1f} deploys "
        f"a week; {stats.interrupted} interrupted.</p>"
    )
    lock_rows = [
        [_e(w.time), _e(w.env), _e(w.operation), _e(w.outcome), f"{w.waited_s:.1f} s", _e(w.actor)]
        for w in locks
    ]
    takeover_rows = [
        [_e(e.time), _e(e.env), _e(e.action), _e(e.outcome), _e(_reason(e))]
        for e in (*stats.takeovers, *stats.unlocks)
    ]
    approval_rows = [
        [_e(e.time), _e(e.env), _e(e.version), _e(by), _e(why)] for e, by, why in stats.approvals
    ]
    return _section(
        "deploys",
        "Deploys and rollbacks",
        _figure(deploys_chart(stats), "Finished deploys and rollbacks per ISO week."),
        frequency,
        _table(
            "Per environment",
            ["environment", "deploys", "failed", "rollbacks", "rollbacks failed"],
            env_rows,
            numeric=(1, 2, 3, 4),
        ),
        "<h3>Lock contention</h3>",
        _table(
            "Deploys and rollbacks that found the lock held (refused: exit 4)",
            ["time", "environment", "operation", "outcome", "waited", "by"],
            lock_rows,
            numeric=(4,),
        ),
        "<h3>Takeovers and unlocks</h3>",
        _table(
            "Locks taken over from a dead or expired holder, or removed by hand",
            ["time", "environment", "action", "outcome", "why"],
            takeover_rows,
        ),
        "<h3>Approvals</h3>",
        _table(
            "Deploys to protected environments and who approved them",
            ["time", "environment", "version", "approved by", "reason"],
            approval_rows,
        ),
    )


def _bad_count(count: int) -> str:
    return f'<span class="bad">{count}</span>' if count else "0"


def _reason(entry: Entry) -> str:
    for key in ("reason", "by"):
        value = entry.details.get(key)
        if value:
            return str(value)
    return ""


def _waiver_section(waivers: Sequence[WaiverDue]) -> str:
    rows = []
    for due in waivers:
        if due.expired:
            left = f'<span class="bad">expired {-due.days_left} day(s) ago</span>'
        elif due.days_left <= 30:
            left = f'<span class="warn">{due.days_left} day(s)</span>'
        else:
            left = f"{due.days_left} day(s)"
        rows.append(
            [
                f'<code class="{"bad" if due.expired else ""}">{_e(due.waiver.id)}</code>',
                _e(due.waiver.reason),
                _e(due.waiver.approved_by or ""),
                _e(due.waiver.expires.isoformat()),
                left,
            ]
        )
    return _section(
        "waivers",
        "Waivers",
        _table(
            "[[tool.ci.waivers]] with days to expiry; an expired waiver fails its gate",
            ["id", "reason", "approved by", "expires", "days left"],
            rows,
        ),
    )


# ---- the step summary ----------------------------------------------------------------------


def trends_markdown(records: History, last: int = 20) -> str:
    """Compact trends for a GitHub step summary: a table per gate and a Mermaid chart."""
    if records.empty:
        return "## Run history\n\nNo run history yet.\n"
    stats = history.gate_stats(records.gates)
    flaky = history.flaky_stats(records.gates)
    lines = [
        "## Run history",
        "",
        f"{_span(records)} Cache hit rate {_pct(history.cache_hit_rate(records.gates))}; "
        f"flaky rate {_pct(flaky.rate, 1)} (target < {flaky.target * 100:g} %"
        f"{'' if flaky.within_target else ', **over**'}).",
        "",
        "| gate | runs | passed | trend | p50 | p95 | budget | over budget |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in stats:
        lines.append(
            f"| `{s.id}` | {s.runs} | {_pct(s.pass_rate)} | {_trend_word(s.pass_trend)} | "
            f"{_secs(s.p50_s)} | {_secs(s.p95_s)} | {_secs(s.budget_s)} | {s.over_budget} |"
        )
    recent = [r for r in records.runs if r.kind == "pipeline"][-last:]
    if len(recent) >= 2:
        values = ", ".join(f"{r.duration_s:.1f}" for r in recent)
        labels = ", ".join(f'"{i}"' for i in range(1, len(recent) + 1))
        lines += [
            "",
            "```mermaid",
            "xychart-beta",
            f'    title "Pipeline duration, last {len(recent)} runs (s)"',
            f"    x-axis [{labels}]",
            '    y-axis "seconds"',
            f"    bar [{values}]",
            "```",
        ]
    if flaky.tests:
        lines += [
            "",
            "Flaky tests: " + ", ".join(f"`{n}` ({c} runs)" for n, c, _ in flaky.tests[:5]),
        ]
    return "\n".join(lines) + "\n"
