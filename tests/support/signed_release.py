"""A built release folder (dist/ and dist-assets/ as ``package`` writes them) and SSH keys.

Distributions are small but real files; keys are made by the real ``ssh-keygen``, so
signing and verifying run the very tool a user runs.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from ci.release import package
from ci.release.package import Artifact, BuildInfo, Manifest
from tests.support.deploy_project import write_wheel

SIGNER = "release@example.org"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LOCK_SHA = "ab" * 32


def keypair(folder: Path, name: str = "signing") -> tuple[Path, str]:
    """A fresh ed25519 key without passphrase: its private key file and public key line."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    public = key.with_suffix(".pub").read_text(encoding="utf-8").strip()
    return key, public


def _sdist(dist: Path, stem: str) -> Path:
    path = dist / f"{stem}.tar.gz"
    data = b"print('hello')\n"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(f"{stem}/setup.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def build(root: Path, name: str = "demo-app", version: str = "1.0.0") -> Path:
    """``root/dist`` with a wheel and an sdist, ``root/dist-assets`` with bundle, sums, manifest."""
    dist = root / "dist"
    assets = package.assets_dir(dist)
    assets.mkdir(parents=True, exist_ok=True)
    wheel = write_wheel(dist, name, version, name.replace("-", "_"))
    sdist = _sdist(dist, f"{name.replace('-', '_')}-{version}")
    bundle = assets / f"{name}-{version}-bundle.tar.gz"
    bundle.write_bytes(b"bundle bytes")
    artifacts = tuple(
        Artifact(name=p.name, kind=kind, size=p.stat().st_size, sha256=package.sha256_file(p))
        for p, kind in ((wheel, "wheel"), (sdist, "sdist"), (bundle, "bundle"))
    )
    info = BuildInfo(
        name=name,
        version=version,
        commit=COMMIT,
        branch="main",
        tag=f"v{version}",
        dirty=False,
        uv_lock_sha256=LOCK_SHA,
        python="3.12.1",
        source_date_epoch=1700000000,
        build_time="2023-11-14T22:13:20Z",
    )
    manifest = Manifest(
        name=name, version=version, build_id="0001", build=info, artifacts=artifacts
    )
    (assets / package.SUMS).write_text(package.render_sums(artifacts), encoding="utf-8")
    package.write_manifest(assets, manifest)
    return dist


def project(root: Path, release_table: str) -> Path:
    """``root/pyproject.toml`` with ``[tool.ci.release]`` holding ``release_table``."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "pyproject.toml"
    path.write_text(
        '[project]\nname = "demo-app"\nversion = "1.0.0"\n\n[tool.ci]\npythons = ["3.12"]\n\n'
        f"[tool.ci.release]\n{release_table}\n",
        encoding="utf-8",
    )
    return path
