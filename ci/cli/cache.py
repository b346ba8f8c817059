"""``cache``: look into and clear the gate result cache."""

from __future__ import annotations

import argparse
import json

from ci.cli.app import App
from ci.core.errors import ExitCode, UsageError
from ci.gates import cache, registry
from ci.gates.cache import GateCache


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cache`` command and its actions to the parser."""
    p = sub.add_parser(
        "cache",
        help="show, explain or clear the gate result cache (CI_STATE_DIR/cache)",
        description=(
            "Gate results that passed are kept under CI_STATE_DIR/cache, keyed by the sha256 "
            "of everything the gate can read: every file of the project tree (or exactly the "
            "files it scans), config files above the project and the user's tool configs, its "
            "virtualenv's packages, Python, its config and the env vars it may see (by value "
            "hash). `info` shows the size and limit (cache.max_mb), `key GATE` prints a "
            "gate's key and inputs, `clear` deletes everything."
        ),
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="entries, size and limit")
    info.set_defaults(handler=_info)
    key = actions.add_parser("key", help="the key of a gate and the inputs behind it (JSON)")
    key.add_argument("gate", help="the gate, e.g. lint or test")
    key.add_argument("--python", help="the gate's Python (default: the first of pythons)")
    key.add_argument(
        "--venv",
        metavar="DIR",
        help="the virtualenv the gate runs in (default: its nox session's, under .nox)",
    )
    key.set_defaults(handler=_key)
    clear = actions.add_parser("clear", help="delete every cached result and the file index")
    clear.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    clear.set_defaults(handler=_clear)


def _store(app: App) -> GateCache:
    return GateCache(app.config, app.runner, app.clock, app.env)


def _info(args: argparse.Namespace, app: App) -> int:
    del args
    store = _store(app)
    entries = store.entries()
    size = sum(s for _, _, s in entries) / (1024 * 1024)
    print(f"cache: {store.dir}")
    print(
        f"  {len(entries)} result(s), {size:.2f} MB of {app.config.cache.max_mb} MB (cache.max_mb)"
    )
    declared = ", ".join(g.name for g in registry.gates(app.config) if g.inputs is not None)
    print(f"  cacheable gates: {declared}")
    return ExitCode.OK


def _key(args: argparse.Namespace, app: App) -> int:
    if registry.get(app.config, args.gate).inputs is None:
        known = ", ".join(g.name for g in registry.gates(app.config) if g.inputs is not None)
        msg = f"gate {args.gate!r} has no cache declaration (cacheable: {known})"
        raise UsageError(msg)
    store = _store(app)
    python = args.python or app.config.default_python
    venv = app.cwd / args.venv if args.venv else cache.session_venv(args.gate, python, app.config)
    resolved = store.resolve(args.gate, python, venv=venv)
    inputs = resolved.inputs
    if inputs is None:
        msg = f"gate {args.gate} is not cached here: {resolved.reason}"
        raise UsageError(msg)
    store.save()
    print(json.dumps({"key": cache.digest(inputs), "inputs": inputs}, indent=2, sort_keys=True))
    return ExitCode.OK


def _clear(args: argparse.Namespace, app: App) -> int:
    store = _store(app)
    if args.dry_run:
        print(f"would delete {len(store.entries())} cached result(s) under {store.dir}")
        return ExitCode.OK
    print(f"deleted {store.clear()} cached result(s) under {store.dir}")
    return ExitCode.OK
