"""Entry point for ``python -m ci``."""

from ci.cli import run

run()
