"""Real projects' release shapes: hatch-vcs with plain tags, setuptools-scm, flit's dynamic
``__version__``, a calendar version, a lock that forks a dependency by Python version.

Each sample is adopted (``init --vendor``), tagged, then released for real: ``preflight
--release``, ``invoke release --dry-run`` and ``invoke release`` with real uv, nox, build
backends (from uv's cache or the index) and pypiserver on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import invoke
from tests.support.pypiserver import PypiServer
from tests.support.release_samples import FORKED, SAMPLES, Sample, adopt

pytestmark = pytest.mark.integration

ADVISORIES = Path(__file__).resolve().parents[1] / "fixtures" / "advisories"


def release_env(index: PypiServer, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    return {
        **env,
        **index.twine_env(),
        "CI_PUBLISH_REPOSITORY_URL": index.url,
        "CI_STATE_DIR": str(state),
        "CI_ADVISORY_DB": str(ADVISORIES),  # real OSV records, offline
        "PYENV_VERSION": "3.11.7:3.12.1:3.13.0",
        "UV_PYTHON_DOWNLOADS": "never",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_a_tagged_sample_releases_the_version_its_backend_makes(
    sample: Sample, tmp_path: Path, pypiserver: PypiServer
) -> None:
    repo = adopt(sample, tmp_path / sample.name)
    env = release_env(pypiserver, tmp_path / "state")

    pre = subprocess.run(
        [sys.executable, "-m", "ci", "preflight", "--release"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert pre.returncode == 0, pre.stdout + pre.stderr
    assert f"release version        {sample.version} ({sample.source})" in pre.stdout
    assert f"{sample.tag} matches version {sample.version} (tag format {sample.tag_format}, " in (
        pre.stdout
    )

    dry = invoke(repo, "release", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"release {sample.version} plan (dry run" in dry.stdout
    assert f"  version {sample.version} from the {sample.source}\n" in dry.stdout
    assert f"  tag {sample.tag} (tag format {sample.tag_format}, " in dry.stdout
    assert f"release-record --tag {sample.tag} --dist dist" in dry.stdout
    assert pypiserver.files() == {}

    done = invoke(repo, "release", env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert f"released {sample.version}" in output
    served = sorted(pypiserver.files())
    assert len(served) == 2, served
    assert all(f"-{sample.version}" in name for name in served), served

    # the notes start at the previous release tag, in the project's own format
    notes = (repo / "dist-assets" / "RELEASE_NOTES.md").read_text(encoding="utf-8")
    assert notes.startswith(f"## {sample.tag}\n\nChanges {sample.previous_tag}..{sample.tag}.")

    if sample is FORKED:  # both pins of urllib3 audited, each with the Pythons it is for
        old = r'urllib3 1\.26\.16 \(Python 3\.11: python(_full)?_version < "3\.12"\): PYSEC'
        new = r'urllib3 2\.0\.5 \(Python 3\.12: python(_full)?_version >= "3\.12"\): PYSEC'
        assert re.search(old, output), output[-6000:]
        assert re.search(new, output), output[-6000:]
