"""`invoke release` end to end: a tagged tmp clone, real nox, uv, twine and pypiserver."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import git, invoke, trim_tests
from tests.support.fake_github import REPO, TOKEN, FakeGitHub
from tests.support.pypiserver import PypiServer
from tests.support.signed_release import SIGNER, keypair

ROOT = Path(__file__).resolve().parents[2]
KEEP_TESTS = {
    "__init__.py",
    "conftest.py",
    "support",
    "deploy/__init__.py",
    "deploy/test_ledger.py",
}
ADVISORY = ROOT / "tests" / "fixtures" / "advisories" / "requests" / "PYSEC-2018-28.yaml"

pytestmark = pytest.mark.integration


def clone_for_release(tmp_path: Path, index: PypiServer, public_key: str) -> Path:
    """A clone of this repository with a small test suite, an index, staging and a signer."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--no-hardlinks", str(ROOT), str(clone))
    trim_tests(clone / "tests", KEEP_TESTS)
    (clone / ".github" / "allowed_signers").write_text(f"{SIGNER} {public_key}\n")
    pyproject = clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    # the trimmed suite covers little of ci/: the floor is for the real suite, not this one
    text = text.replace("coverage_min = 85", "coverage_min = 0")
    text += (
        "\n[tool.ci.publish]\n"
        f'repository_url = "{index.url}"\n'
        # a gate of the project's own, declared only here: the release runs it like the others
        "\n[tool.ci.gates.docs]\n"
        'command = ["python", "-c", "print(\'docs checked\')"]\n'
        "\n[tool.ci.environments.staging]\n"
        "\n[tool.ci.environments.production]\n"
        'after = "staging"\n'
        "\n[tool.ci.release]\n"
        f'signer = "{SIGNER}"\n'
        'allowed_signers = ".github/allowed_signers"\n'
        'signing_key_env = "RELEASE_SIGNING_KEY"\n'
    )
    pyproject.write_text(text, encoding="utf-8")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "release rehearsal: small suite, local index, staging")
    return clone


def release_env(index: PypiServer, state: Path, advisories: Path) -> dict[str, str]:
    (advisories / "requests").mkdir(parents=True, exist_ok=True)
    # one real OSV record (CC-BY-4.0, see its ATTRIBUTION.md): an empty folder is rejected
    shutil.copy(ADVISORY, advisories / "requests" / ADVISORY.name)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    return {
        **env,
        **index.twine_env(),
        "CI_STATE_DIR": str(state),
        # a local advisory database: the audit gate runs offline (no OSV service here)
        "CI_ADVISORY_DB": str(advisories),
        "PYENV_VERSION": "3.11.7:3.12.1:3.13.0",
        "UV_PYTHON_DOWNLOADS": "never",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """GitHub's release API as a real HTTP server on 127.0.0.1."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield FakeGitHub(server=server, token=TOKEN).install()
    server.clear()
    server.stop()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (none when it does not exist) with its bytes."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_invoke_release_dry_run_then_release_from_a_tagged_clone(
    tmp_path: Path, pypiserver: PypiServer, github: FakeGitHub
) -> None:
    key, public = keypair(tmp_path / "keys")
    clone = clone_for_release(tmp_path, pypiserver, public)
    state = tmp_path / "release-state"
    env = release_env(pypiserver, state, tmp_path / "advisories")
    env |= {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": github.api_url}
    env["RELEASE_SIGNING_KEY"] = key.read_text(encoding="utf-8")

    untagged = invoke(clone, "release", env=env)
    assert untagged.returncode == 3, untagged.stdout + untagged.stderr
    assert "HEAD has no release tag" in untagged.stdout + untagged.stderr
    assert pypiserver.files() == {}

    git(clone, "tag", "v0.1.0")
    before = snapshot(state)  # the refused release is in the run history; nothing else
    dry = invoke(clone, "release", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "release 0.1.0 plan (dry run" in dry.stdout
    assert "version 0.1.0 from the static [project] version" in dry.stdout
    assert f"to {pypiserver.url}" in dry.stdout
    assert "deploy --env staging --version 0.1.0" in dry.stdout
    assert "release-record --tag v0.1.0" in dry.stdout
    assert "gate docs: nox session" in dry.stdout
    assert pypiserver.files() == {}
    assert github.requests() == []
    assert not (clone / "dist").exists()
    assert snapshot(state) == before  # a dry run writes nothing

    done = invoke(clone, "release", env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "released 0.1.0" in output
    assert "docs checked" in output
    assert "docs: passed (required)" in output

    assets = clone / "dist-assets"
    manifest = json.loads((assets / "manifest.json").read_text(encoding="utf-8"))
    wheel = next(a for a in manifest["artifacts"] if a["kind"] == "wheel")
    served = pypiserver.files()
    assert wheel["name"] in served
    assert hashlib.sha256(served[wheel["name"]]).hexdigest() == wheel["sha256"]

    lines = (state / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    last = json.loads(lines[-1])
    assert (last["action"], last["env"], last["version"], last["outcome"]) == (
        "deploy",
        "staging",
        "0.1.0",
        "succeeded",
    )

    # the GitHub release: created last, its assets the dist files byte for byte, anchored
    (gh_release,) = github.releases.values()
    assert gh_release["tag_name"] == "v0.1.0"
    names = [a["name"] for a in manifest["artifacts"]] + ["SHA256SUMS", "manifest.json"]
    names += ["SHA256SUMS.sig", "provenance.intoto.json", "provenance.intoto.json.sig"]
    assert {name for name, _ in github.uploads()} == set(names)
    for name, body in github.uploads():
        where = (
            clone / "dist"
            if name.endswith((".whl", ".tar.gz")) and "-bundle" not in name
            else assets
        )
        assert body == (where / name).read_bytes()
    assert f"Ledger head: `{last['hash']}`" in gh_release["body"]
    assert gh_release["body"] == (assets / "RELEASE_NOTES.md").read_text(encoding="utf-8")
    assert TOKEN not in output
    assert "] sign: " in output and "] verify: " in output
    assert f"SHA256SUMS: signed by {SIGNER}" in output  # the release's own verify step
    assert "".join(env["RELEASE_SIGNING_KEY"].splitlines()[1:-1]) not in output

    # what a user runs on the release's files: it holds, and fails on one changed byte
    verify = [sys.executable, "-m", "ci", "verify", "dist"]
    checked = subprocess.run(verify, cwd=clone, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    wheel_path = clone / "dist" / wheel["name"]
    pristine = wheel_path.read_bytes()
    wheel_path.write_bytes(pristine[:-1] + bytes([pristine[-1] ^ 1]))
    tampered = subprocess.run(verify, cwd=clone, capture_output=True, text=True, check=False)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert f"FAIL  {wheel['name']} has sha256" in tampered.stdout
    wheel_path.write_bytes(pristine)

    # running the whole release again changes nothing: not on the index, not on GitHub
    github.server.clear_log()
    rerun = invoke(clone, "release", env=env)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-6000:]
    assert github.changes() == []
    assert "GitHub release unchanged" in rerun.stdout
    assert (state / "ledger.jsonl").read_text(encoding="utf-8").splitlines() == lines

    smoke = subprocess.run(
        [
            str(state / "envs" / "staging" / "bin" / "python"),
            "-c",
            "import ci; print(ci.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert smoke.stdout.strip() == "0.1.0"

    # promotion: production only after staging, and the same version again is a no-op
    promote = invoke(clone, "deploy", "--env", "production", "--version", "0.1.0", env=env)
    assert promote.returncode == 0, promote.stdout + promote.stderr
    again = invoke(clone, "deploy", "--env", "staging", "--version", "0.1.0", env=env)
    assert again.returncode == 0
    assert "nothing to do" in again.stdout
