"""Run a command under ``strace -f`` and read back every path it touched, and how."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STRACE = "/usr/bin/strace"
_LINE = re.compile(r"^(?P<pid>\d+) +(?P<call>\w+)\((?P<args>.*)\) += (?P<ret>.*)$")
_FD = re.compile(r"^(?:AT_FDCWD|\d+)<(?P<path>[^>]*)>$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_CHILD = re.compile(r"^(\d+)")
# Calls that change the file system; their paths count as made by the run, not read by it.
_WRITES = frozenset(
    {
        "mkdir",
        "mkdirat",
        "unlink",
        "unlinkat",
        "rmdir",
        "rename",
        "renameat",
        "renameat2",
        "symlink",
        "symlinkat",
        "link",
        "linkat",
        "creat",
        "truncate",
        "chmod",
        "fchmodat",
        "utimensat",
        "utime",
        "utimes",
        "chown",
        "fchownat",
        "lchown",
    }
)
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")
_FORKS = frozenset({"clone", "clone3", "fork", "vfork"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """One path a traced process touched: the call, whether it wrote, and the program."""

    pid: int
    call: str
    path: str
    write: bool
    program: str  # the last program the process exec'd


def traced(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], out: Path) -> int:
    """Run ``argv`` under strace (file and process calls, fds shown as paths); its exit code."""
    command = [
        STRACE,
        "-f",
        "-qq",
        "-y",
        "--seccomp-bpf",
        "-s",
        "4096",
        "-e",
        "trace=%file,%process,chdir,fchdir",
        "-o",
        str(out),
        *argv,
    ]
    done = subprocess.run(command, cwd=cwd, env=dict(env), capture_output=True, check=False)
    return done.returncode


def joined(lines: Iterable[str]) -> Iterator[str]:
    """Whole call lines: ``<unfinished ...>`` halves joined with their ``resumed`` ends."""
    pending: dict[str, str] = {}
    for raw in lines:
        line = raw.rstrip("\n")
        pid, _, rest = line.partition(" ")
        rest = rest.lstrip()
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest.removesuffix("<unfinished ...>").rstrip()
        elif rest.startswith("<..."):
            head = pending.pop(pid, "")
            tail = rest.split("resumed>", 1)[1] if "resumed>" in rest else ""
            yield f"{pid} {head}{tail}"
        else:
            yield f"{pid} {rest}"


def accesses(trace: Path) -> list[Access]:
    """Every path in the trace, made absolute, in order."""
    programs: dict[int, str] = {}
    cwds: dict[int, str] = {}
    found: list[Access] = []
    with trace.open(encoding="utf-8", errors="replace") as handle:
        for line in joined(handle):
            match = _LINE.match(line)
            if match is None:
                continue
            pid, call, args, ret = int(match["pid"]), match["call"], match["args"], match["ret"]
            if call in _FORKS:
                child = _CHILD.match(ret)
                if child:  # a vfork child may have run (and exec'd) before this line
                    programs.setdefault(int(child[1]), programs.get(pid, ""))
                    cwds.setdefault(int(child[1]), cwds.get(pid, ""))
                continue
            parts = _split(args)
            base = cwds.get(pid, "")
            if parts and _FD.match(parts[0]):
                base = _FD.match(parts[0])["path"]  # type: ignore[index]
                if parts[0].startswith("AT_FDCWD"):
                    cwds[pid] = base
            strings = [m.group(1) for m in (_STRING.fullmatch(p) for p in parts) if m]
            if call in {"execve", "execveat"} and strings and ret.startswith("0"):
                programs[pid] = os.path.basename(strings[0])
            if call == "chdir" and strings and ret.startswith("0"):
                cwds[pid] = os.path.normpath(os.path.join(base, _unescape(strings[0])))
            two = call in {"rename", "renameat", "renameat2", "link", "linkat"}
            paths = strings[:2] if two else strings[:1]
            if not paths and parts and _FD.match(parts[0]) and not parts[0].startswith("AT_FDCWD"):
                paths = [""]  # a call on an open fd (fstatat with AT_EMPTY_PATH): the fd's path
            write = call in _WRITES or (
                call in {"open", "openat", "openat2"} and any(f in args for f in _WRITE_FLAGS)
            )
            for raw in paths:
                text = _unescape(raw)
                path = os.path.normpath(os.path.join(base, text)) if base or text else ""
                if path:
                    program = programs.get(pid, "")
                    found.append(
                        Access(pid=pid, call=call, path=path, write=write, program=program)
                    )
    return found


def _split(args: str) -> list[str]:
    """Top-level comma-separated arguments of a call (brackets and strings kept whole)."""
    parts: list[str] = []
    depth, start, quoted, escaped = 0, 0, False, False
    for index, char in enumerate(args):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "[{(<":
            depth += 1
        elif char in "]})>":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(args[start:index].strip())
            start = index + 1
    parts.append(args[start:].strip())
    return parts


def _unescape(text: str) -> str:
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape", "replace")
