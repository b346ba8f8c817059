"""The dashboard in a real browser: headless Chromium opens the page `python -m ci dashboard`
wrote from a recorded history, and what a person sees is checked.

Chromium is Debian's ``chromium`` (``.ci/run`` installs it when missing). It runs with every
host name unresolvable, so a page that reached for the network would log a console error.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support import history_sample

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1280, 6400
CONSOLE = re.compile(r":CONSOLE[:(]")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run does)")
    return found


def open_in_browser(page: Path, screenshot: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM Chromium built from ``page`` and its console lines; a screenshot on the way."""
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace for the sandbox
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: a fetch would be an error
            "--enable-logging=stderr",
            "--v=0",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if CONSOLE.search(line)]


class Seen(HTMLParser):
    """The charts (SVG with their data marks) and the visible text of a DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict[str, object]] = []
        self.text: list[str] = []
        self.red: list[str] = []
        self._depth = 0
        self._red_depth = 0
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "svg" and found.get("role") == "img":
            self.charts.append({"label": found.get("aria-label") or "", "marks": 0})
        if self.charts and "tooltip-trigger" in classes:
            self.charts[-1]["marks"] = int(self.charts[-1]["marks"]) + 1  # type: ignore[call-overload]
        if tag in {"style", "script", "title", "desc"}:
            self._skip += 1
        if "bad" in classes:
            self._red_depth += 1
            self.red.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "script", "title", "desc"}:
            self._skip -= 1
        if tag in {"code", "span", "b", "p"} and self._red_depth:
            self._red_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._red_depth:
            self.red[-1] += data


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str], Path]:
    base = tmp_path_factory.mktemp("dashboard")
    project = base / "sample-app"
    state = history_sample.recorded_project(project)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CI_", "GITHUB_"))},
        "CI_STATE_DIR": str(state),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ci", "dashboard"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "8 pipeline run(s), 24 gate run(s)" in done.stdout
    shots = ROOT / "reports"
    shots.mkdir(exist_ok=True)
    screenshot = shots / "dashboard-screenshot.png"
    dom, console = open_in_browser(
        project / "reports" / "dashboard.html", screenshot, base / "profile"
    )
    return dom, console, screenshot


def test_the_charts_render_with_data(dashboard: tuple[str, list[str], Path]) -> None:
    dom, _, _ = dashboard
    seen = Seen()
    seen.feed(dom)
    labels = [str(c["label"]) for c in seen.charts]
    assert len(seen.charts) == 7, (
        labels
    )  # pass rate, durations, p50/p95, coverage, slow, cache, deploys
    empty = [str(c["label"]) for c in seen.charts if not c["marks"]]
    assert not empty, f"charts without data points: {empty}"
    assert any("test-3.12" in label and "budget" not in label for label in labels)


def test_the_flaky_test_and_the_expired_waiver_are_named(
    dashboard: tuple[str, list[str], Path],
) -> None:
    dom, _, _ = dashboard
    seen = Seen()
    seen.feed(dom)
    text = " ".join(" ".join(seen.text).split())
    assert history_sample.FLAKY_TEST in text
    assert history_sample.EXPIRED_WAIVER in text
    assert history_sample.VALID_WAIVER in text
    assert history_sample.EXPIRED_WAIVER in seen.red  # shown in red
    assert history_sample.VALID_WAIVER not in seen.red
    assert any(re.fullmatch(r"expired \d+ day\(s\) ago", r) for r in seen.red)
    assert "release-manager" in text  # the approval
    assert "No run history yet" not in text


def test_no_console_errors_and_a_screenshot_for_the_reviewer(
    dashboard: tuple[str, list[str], Path],
) -> None:
    _, console, screenshot = dashboard
    assert console == []
    assert png_size(screenshot) == (WIDTH, HEIGHT)
    assert screenshot.stat().st_size > 50_000  # charts and tables, not a blank page


def test_the_console_check_sees_an_error(tmp_path: Path) -> None:
    page = tmp_path / "planted.html"
    page.write_text('<!doctype html><p>x</p><script>console.error("planted")</script>')
    _, console = open_in_browser(page, tmp_path / "shot.png", tmp_path / "profile")
    assert any("planted" in line for line in console)
