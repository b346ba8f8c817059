"""The step summary file of a GitHub Actions job: appended to, masked, kept under 1 MiB."""

from __future__ import annotations

from pathlib import Path

from ci.core.files import atomic_write_text
from ci.core.redact import redact

SUMMARY_LIMIT = 1024 * 1024  # GitHub refuses step summaries over 1 MiB


def fit(text: str, room: int) -> str:
    """``text`` cut at a line so its UTF-8 size stays within ``room`` bytes, with a note."""
    if len(text.encode()) <= room:
        return text
    lines = text.splitlines()
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        note = (
            f"\n_… summary truncated to stay under GitHub's 1 MiB limit: {len(lines) - index} "
            "more line(s); the full records are in reports/run.json_\n"
        )
        size = len(line.encode()) + 1
        if used + size + len(note.encode()) > room:
            return "\n".join(kept) + "\n" + note
        kept.append(line)
        used += size
    return "\n".join(kept) + "\n"  # pragma: no cover - only reached when everything fits


def append_step_summary(path: Path, text: str, limit: int = SUMMARY_LIMIT) -> bool:
    """Append ``text`` (masked, cut to fit ``limit``) to the step summary; False if no room."""
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    room = limit - len(existing.encode())
    if room < 512:
        return False
    atomic_write_text(path, existing + fit(redact(text), room))
    return True
