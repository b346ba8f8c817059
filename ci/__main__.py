"""Entry point for ``python -m ci``."""

import os
import sys

# `python -m` puts the working folder first on sys.path: once ci itself is imported, drop it,
# so that a file in the project named like a dependency (detect_secrets.py, yaml/) is never
# imported by a gate instead of the installed package.
if sys.path and os.path.realpath(sys.path[0] or os.curdir) == os.path.realpath(os.getcwd()):
    del sys.path[0]

from ci.cli.main import run

run()
