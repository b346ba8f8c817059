"""Release and deploy benchmarks: ledger verify on 10,000 entries; lock acquire/release.

Run: uv run python bench/deploy_bench.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ci.deploy import lock
from ci.deploy.ledger import GENESIS, Entry, Ledger, seal
from ci.deploy.store import LocalStore

ENTRIES = 10_000
APPENDS = 500
VERIFY_RUNS = 5
LOCK_RUNS = 2_000


def build_ledger(folder: Path) -> tuple[Ledger, list[float]]:
    """10,000 entries: the first ones written directly, the last APPENDS through append()."""
    ledger = Ledger(folder / "ledger.jsonl")
    lines, prev = [], GENESIS
    for index in range(ENTRIES - APPENDS):
        entry = seal(
            Entry(
                seq=index + 1,
                time="2026-01-01T00:00:00Z",
                actor="release-bot",
                action="deploy",
                env="staging" if index % 2 else "production",
                version=f"1.{index // 100}.{index % 100}",
                outcome="succeeded",
                details={"from": "1.0.0", "lock": "0f9b6c4e-5d2a-4c1b-9e8f-7a6d5c4b3a21"},
                prev=prev,
            )
        )
        prev = entry.hash
        lines.append(entry.line())
    ledger.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    times = []
    for index in range(APPENDS):
        start = time.perf_counter()
        ledger.append(
            time="2026-01-01T00:00:00Z",
            actor="release-bot",
            action="deploy",
            env="staging" if index % 2 else "production",
            version=f"1.{index // 100}.{index % 100}",
            outcome="succeeded",
            details={"from": "1.0.0", "lock": "0f9b6c4e-5d2a-4c1b-9e8f-7a6d5c4b3a21"},
        )
        times.append(time.perf_counter() - start)
    return ledger, times


def bench_verify(ledger: Ledger) -> list[float]:
    times = []
    for _ in range(VERIFY_RUNS):
        start = time.perf_counter()
        entries = ledger.verify()
        times.append(time.perf_counter() - start)
        assert len(entries) == ENTRIES
    return times


def bench_cli_verify(folder: Path) -> list[float]:
    env = {**os.environ, "CI_STATE_DIR": str(folder)}
    times = []
    for _ in range(VERIFY_RUNS):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ci", "ledger", "verify"],
            env=env,
            check=True,
            capture_output=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        times.append(time.perf_counter() - start)
    return times


def bench_lock(folder: Path) -> list[float]:
    store = LocalStore(folder)
    times = []
    for _ in range(LOCK_RUNS):
        info = lock.new_info(env="staging", operation="deploy", version="1.0.0", created="now")
        start = time.perf_counter()
        held = lock.acquire(store, info)
        lock.release(store, held)
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ledger, appends = build_ledger(folder)
        size_mb = ledger.path.stat().st_size / 1e6
        verify = bench_verify(ledger)
        cli = bench_cli_verify(folder)
        locks = bench_lock(folder)
    print(f"ledger: {ENTRIES} entries, {size_mb:.1f} MB")
    print(
        f"ledger append (flock + tail read + fsync): p50 {percentile(appends, 0.5) * 1e3:.3f} ms, "
        f"p99 {percentile(appends, 0.99) * 1e3:.3f} ms over {APPENDS} appends"
    )
    print(
        f"ledger verify: median {statistics.median(verify):.3f} s over {VERIFY_RUNS} runs "
        f"(min {min(verify):.3f}, max {max(verify):.3f}); goal <= 1 s"
    )
    print(f"python -m ci ledger verify (whole command): median {statistics.median(cli):.3f} s")
    print(
        f"lock acquire+release: p50 {percentile(locks, 0.50) * 1e3:.3f} ms, "
        f"p99 {percentile(locks, 0.99) * 1e3:.3f} ms over {LOCK_RUNS} runs"
    )


if __name__ == "__main__":
    main()
