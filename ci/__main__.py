"""Entry point for ``python -m ci``."""

from ci.cli.main import run

run()
