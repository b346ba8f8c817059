"""The prefiltered tree scan of this repository equals `detect-secrets scan` of its files.

An end-to-end check (plain detect-secrets needs about 50 ms a file); the planted corpus and
generated trees in tests/security/test_prefilter.py cover every plugin in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from detect_secrets.core.secrets_collection import SecretsCollection

from ci.core.runner import ProcessRunner
from ci.security import secrets

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_this_repository_matches_detect_secrets_scan() -> None:
    """The tracked files, under this repository's baseline settings, as `detect-secrets scan`."""
    names = secrets.tree_files(REPO, ProcessRunner())
    baseline = secrets.load_baseline(REPO / secrets.BASELINE)
    with secrets._settings(baseline, files_exist=True):
        collection = SecretsCollection(root=str(REPO))
        collection.scan_files(*names, num_processors=2)
        expected = {
            (name, s.type, s.secret_hash): s.line_number
            for name, found in collection.data.items()
            for s in found
        }
        _, findings = secrets.scan_files(REPO, names)
    got: dict[tuple[str, str, str], int] = {}
    for f in findings:
        got.setdefault((f.file, f.type, f.baseline_hash), f.line)
    assert got == expected
    assert expected  # the repository's own test data holds audited findings
