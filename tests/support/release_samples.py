"""Sample projects released the way real ones are: dynamic versions, their own tag scheme.

Each sample is a committed git repository with an earlier release tag on its first commit;
``adopt`` copies the bundle in (``init --vendor``), commits, and tags HEAD as the release.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT, git


def _d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


MODULE = '''\
"""{name}: adds numbers."""
{version_line}

def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b
'''

TEST = '''\
"""The one function works."""

from {package} import add


def test_add() -> None:
    assert add(2, 3) == 5
'''


@dataclass(frozen=True)
class Sample:
    """A sample project: its files, its tags, and what its release must look like."""

    name: str  # the distribution, and (normalized) the import package under src/
    package: str
    pyproject: str
    previous_tag: str  # on the first commit
    tag: str  # on the release commit
    version: str  # what the release carries
    tag_format: str  # what preflight detects
    source: str  # the version source preflight names
    version_line: str = ""  # in the package's __init__.py
    files: dict[str, str] = field(default_factory=dict)

    def write(self, root: Path) -> Path:
        """Create and commit the project in ``root`` with its earlier tag; returns ``root``."""
        files = {
            "pyproject.toml": self.pyproject,
            "README.md": f"# {self.name}\n\nAdds numbers.\n",
            f"src/{self.package}/__init__.py": MODULE.format(
                name=self.name, version_line=self.version_line
            ),
            "tests/test_add.py": TEST.format(package=self.package),
            ".gitignore": "*.egg-info/\n_version.py\n",
            **self.files,
        }
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "feat: add numbers")
        git(root, "tag", self.previous_tag)
        return root


TOOL_CI = _d("""
    [tool.ci]
    pythons = ["3.12"]

    [tool.ci.gates.test]
    coverage_min = 100
    """)

HATCH_VCS = Sample(
    name="hvsample",
    package="hvsample",
    pyproject=_d("""
        [build-system]
        requires = ["hatchling>=1.27", "hatch-vcs>=0.4"]
        build-backend = "hatchling.build"

        [project]
        name = "hvsample"
        dynamic = ["version"]
        description = "Adds numbers."
        readme = "README.md"
        requires-python = ">=3.11"

        [tool.hatch.version]
        source = "vcs"

        [tool.hatch.build.targets.wheel]
        packages = ["src/hvsample"]
        """)
    + TOOL_CI,
    previous_tag="1.2.2",
    tag="1.2.3",
    version="1.2.3",
    tag_format="{version}",
    source="build backend hatchling.build (dynamic version)",
)

SETUPTOOLS_SCM = Sample(
    name="scmsample",
    package="scmsample",
    pyproject=_d("""
        [build-system]
        requires = ["setuptools>=77", "setuptools-scm>=8"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "scmsample"
        dynamic = ["version"]
        description = "Adds numbers."
        readme = "README.md"
        requires-python = ">=3.11"

        [tool.setuptools_scm]
        """)
    + TOOL_CI,
    previous_tag="v2.0.0",
    tag="v2.1.0",
    version="2.1.0",
    tag_format="v{version}",
    source="build backend setuptools.build_meta (dynamic version)",
)

FLIT_DYNAMIC = Sample(
    name="flitdyn",
    package="flitdyn",
    pyproject=_d("""
        [build-system]
        requires = ["flit_core>=3.4,<4"]
        build-backend = "flit_core.buildapi"

        [project]
        name = "flitdyn"
        dynamic = ["version", "description"]
        readme = "README.md"
        requires-python = ">=3.11"
        """)
    + TOOL_CI,
    previous_tag="v0.3.0",
    tag="v0.4.0",
    version="0.4.0",
    tag_format="v{version}",
    source="build backend flit_core.buildapi (dynamic version)",
    version_line='\n__version__ = "0.4.0"\n',
)

CALVER = Sample(
    name="calsample",
    package="calsample",
    pyproject=_d("""
        [build-system]
        requires = ["hatchling>=1.27"]
        build-backend = "hatchling.build"

        [project]
        name = "calsample"
        version = "26.4"
        description = "Adds numbers."
        readme = "README.md"
        requires-python = ">=3.11"

        [tool.hatch.build.targets.wheel]
        packages = ["src/calsample"]
        """)
    + TOOL_CI,
    previous_tag="26.3",
    tag="26.4",
    version="26.4",
    tag_format="{version}",
    source="static [project] version",
)

# A lock that pins urllib3 twice, by Python version: 1.26.16 below 3.12, 2.0.5 from 3.12.
# Both have advisories in tests/fixtures/advisories; fail_on = critical lets the release
# through while the audit reports each version with the Pythons it applies to.
FORKED = Sample(
    name="forksample",
    package="forksample",
    pyproject=_d("""
        [build-system]
        requires = ["hatchling>=1.27"]
        build-backend = "hatchling.build"

        [project]
        name = "forksample"
        version = "1.0.0"
        description = "Adds numbers."
        readme = "README.md"
        requires-python = ">=3.11"
        dependencies = [
            "urllib3==1.26.16; python_version < '3.12'",
            "urllib3==2.0.5; python_version >= '3.12'",
        ]

        [tool.hatch.build.targets.wheel]
        packages = ["src/forksample"]
        """)
    + _d("""
        [tool.ci]
        pythons = ["3.12", "3.11"]

        [tool.ci.gates.test]
        coverage_min = 100

        [tool.ci.gates.audit]
        fail_on = "critical"
        """),
    previous_tag="v0.9.0",
    tag="v1.0.0",
    version="1.0.0",
    tag_format="v{version}",
    source="static [project] version",
)

SAMPLES = (HATCH_VCS, SETUPTOOLS_SCM, FLIT_DYNAMIC, CALVER, FORKED)


def adopt(sample: Sample, root: Path) -> Path:
    """Write ``sample``, copy the bundle in, commit, and tag HEAD as the release."""
    sample.write(root)
    done = subprocess.run(
        [sys.executable, "-m", "ci", "init", str(root), "--vendor"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fix: adopt noxgate")
    git(root, "tag", sample.tag)
    return root
