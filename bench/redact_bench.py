"""The masking filter's cost: 100,000 lines of typical tool output, line by line and whole.

Run: uv run python bench/redact_bench.py [--lines N] [--runs R]
Prints medians of R runs for: each line masked on its own (``redact(line)``, as a file's
line is appended), one call on the whole text (how a file is written), and the lines written
through the redacting stream and flushed one by one (how the runner echoes a tool's output
and how ``print`` goes out). Five secrets of typical shapes are set; no line holds one.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci.core.redact import RedactingStream, Redactor  # noqa: E402

SECRETS = [
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ",
    "pypi-" + "AgEIcHlwaS5vcmcCJGYzZTk4ZWI2LTQ2",
    'pa"ss' + "\\word-123",
    "a b/c?d" + "=e&f",
    "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\n-----END KEY-----",
]


def sample(n: int) -> list[str]:
    """Lines shaped like pytest, ruff and pip output (no secret in them)."""
    shapes = [
        "tests/core/test_redact.py::test_every_form_is_masked[{i}] PASSED          [ {p}%]\n",
        "ci/core/files.py:{i}:5: F401 [*] `os` imported but unused\n",
        "Collecting requests==2.{i}.0 (from -r requirements.txt (line {p}))\n",
        '  File "/usr/lib/python3.12/site-packages/pkg/mod{i}.py", line {p}, in run\n',
        "2024-05-01T12:00:{p:02d}Z INFO deploy step {i} of 100 finished in 0.{p}s\n",
    ]
    return [shapes[i % len(shapes)].format(i=i, p=i % 100) for i in range(n)]


def median(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Time the filter three ways and print a table row each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    redactor = Redactor.of(SECRETS)
    lines = sample(args.lines)
    text = "".join(lines)

    def per_line() -> None:
        for line in lines:
            redactor(line)

    def stream() -> None:
        out = RedactingStream(io.StringIO(), redactor)
        for line in lines:
            out.write(line)  # as the runner echoes a tool's output, a line at a time
            out.flush()
        out.drain()

    print(f"{len(redactor.values)} forms of {len(SECRETS)} secrets, {args.lines:,} lines")
    works = (("per line", per_line), ("whole text", lambda: redactor(text)), ("stream", stream))
    for name, work in works:
        print(f"{name:>10}: {median(args.runs, work) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
