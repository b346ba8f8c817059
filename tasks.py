"""Maintainer tasks (run with ``uv run invoke``), defined in ci/run/tasks.py."""

from ci.run.tasks import *  # noqa: F403
