"""What the gate hook costs: records only, records + publishing to a loopback API, big summaries.

Run: uv run python bench/status_publish.py
"""

from __future__ import annotations

import io
import statistics
import tempfile
import threading
import time
from contextlib import redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ci.core.clock import SystemClock
from ci.core.config import Config
from ci.core.gate import Finding, GateContext, GateResult, GateStatus
from ci.run import report
from ci.testing.fakes import FakeRunner

RUNS = 50


class Statuses(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def median_ms(action, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Statuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_port}"
    result = GateResult(
        gate="lint",
        status=GateStatus.FAILED,
        summary="3 finding(s)",
        findings=tuple(
            Finding(rule="F401", message="unused", file=f"m{i}.py", line=i) for i in range(3)
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = Config(root=root, path=None, pythons=("3.12",))
        base = {"CI_STATE_DIR": str(root / "state")}
        github = {
            **base,
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": api,
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_SHA": "a" * 40,
            "GITHUB_RUN_ID": "1",
            "GITHUB_TOKEN": "ghs_bench",
            "GITHUB_STEP_SUMMARY": str(root / "summary.md"),
        }

        def ctx(env: dict[str, str]) -> GateContext:
            return GateContext(
                config=config, runner=FakeRunner(), clock=SystemClock(), env=env, python="3.12"
            )

        local = median_ms(lambda: report.record(result, ctx(base)))

        def on_github() -> None:
            (root / "summary.md").unlink(missing_ok=True)
            with redirect_stdout(io.StringIO()):
                report.record(result, ctx(github))

        published = median_ms(on_github)
    many = GateResult(
        gate="lint",
        status=GateStatus.FAILED,
        findings=tuple(
            Finding(rule="E501", message="line too long " + "x" * 80, file=f"pkg/m{i}.py", line=i)
            for i in range(10_000)
        ),
    )
    big = median_ms(
        lambda: report.fit(report.render_summary([many], title="t"), report.SUMMARY_LIMIT), 10
    )
    server.shutdown()
    print(f"record, files only (reports, run.json, durations): {local:.2f} ms (median of {RUNS})")
    print(f"record on GitHub (+ annotations, summary, 1 status POST): {published:.2f} ms")
    print(f"ratio on GitHub / files only: {published / local:.1f}x")
    print(f"summary of 10,000 findings, rendered and fitted to 1 MiB: {big:.2f} ms (median of 10)")


if __name__ == "__main__":
    main()
