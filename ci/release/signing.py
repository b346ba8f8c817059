"""Sign the release's SHA256SUMS and provenance with an SSH key; check such signatures.

Signatures are ``ssh-keygen -Y sign`` ones (namespace ``file``), so anyone checks them
offline with OpenSSH alone::

    ssh-keygen -Y verify -f allowed_signers -I SIGNER -n file -s SHA256SUMS.sig < SHA256SUMS

The private key is a file (``signing_key``) or the value of an environment variable
(``signing_key_env``, e.g. a CI secret), which is written to a private temporary file only
for the time ``ssh-keygen`` runs and never printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ci.core.config import SigningConfig, missing_secret_message
from ci.core.errors import CIError, PreflightError, ToolError, UsageError
from ci.core.files import atomic_write_bytes
from ci.core.runner import Runner
from ci.release import provenance
from ci.release.package import SUMS, assets_dir, read_manifest

NAMESPACE = "file"
SIG_SUFFIX = ".sig"


@dataclass(frozen=True, slots=True, kw_only=True)
class Trust:
    """Whom a signature must come from: an allowed_signers file and the signer's identity."""

    allowed_signers: Path
    signer: str


def trust_of(config: SigningConfig, root: Path) -> Trust:
    """The project's own trust: its ``allowed_signers`` file and ``signer``."""
    return Trust(allowed_signers=root / config.allowed_signers, signer=config.signer)


def signature_path(path: Path) -> Path:
    """Where the signature of ``path`` lives: beside it, ``.sig`` appended."""
    return path.with_name(path.name + SIG_SUFFIX)


@contextmanager
def _private_key(config: SigningConfig, root: Path, env: Mapping[str, str]) -> Iterator[Path]:
    """The private key as a file ssh-keygen can read (a 0600 temp copy of an env value)."""
    if config.key_env is not None:
        value = env.get(config.key_env, "")
        if not value.strip():
            raise PreflightError(missing_secret_message(config.key_env))
        folder = Path(tempfile.mkdtemp(prefix="ci-sign-"))  # 0700: only this user
        try:
            key = folder / "key"
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value.replace("\r\n", "\n").strip() + "\n")
            yield key
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if config.key_file is None:
        msg = (
            "[tool.ci.release] names no signing key: set signing_key (a private key file) or "
            "signing_key_env (an environment variable holding it)"
        )
        raise PreflightError(msg)
    key = Path(os.path.expanduser(config.key_file))
    key = key if key.is_absolute() else root / key
    if not key.is_file():
        msg = f"signing_key {key} does not exist: create it (ssh-keygen -t ed25519) or fix the path"
        raise PreflightError(msg)
    yield key


def sign(
    files: Sequence[Path],
    config: SigningConfig,
    *,
    root: Path,
    env: Mapping[str, str],
    runner: Runner,
) -> list[Path]:
    """Write ``<file>.sig`` beside each file (atomically); the signatures' paths."""
    if runner.which("ssh-keygen") is None:
        msg = "ssh-keygen (OpenSSH) is not on PATH: install openssh-client to sign releases"
        raise ToolError(msg)
    written = []
    with _private_key(config, root, env) as key, tempfile.TemporaryDirectory() as work:
        for path in files:
            copy = Path(work) / path.name
            shutil.copyfile(path, copy)
            done = runner.run(
                ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(copy)],
                env={"SSH_AUTH_SOCK": ""},  # the key named, never one an agent offers
            )
            sig = signature_path(copy)
            if not done or not sig.is_file():
                # ssh-keygen's words only: they name the key file, never its contents
                said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                msg = f"ssh-keygen could not sign {path.name} with the signing key: {said[0]}"
                raise PreflightError(msg)
            target = signature_path(path)
            atomic_write_bytes(target, sig.read_bytes())
            target.chmod(0o644)
            written.append(target)
    return written


def check(path: Path, trust: Trust, runner: Runner) -> str | None:
    """None when ``<path>.sig`` is a good signature of ``path`` by the trusted signer, else why."""
    sig = signature_path(path)
    if not sig.is_file():
        return f"{sig.name} is missing: the release is not signed (or the file was not downloaded)"
    if not trust.allowed_signers.is_file():
        msg = f"allowed signers file {trust.allowed_signers} does not exist"
        raise UsageError(msg)
    # ssh-keygen reads the signed message on stdin
    script = 'exec ssh-keygen -Y verify -f "$1" -I "$2" -n "$3" -s "$4" < "$5"'
    argv = [
        "/bin/sh",
        "-c",
        script,
        "sh",
        str(trust.allowed_signers),
        trust.signer,
        NAMESPACE,
        str(sig),
        str(path),
    ]
    done = runner.run(argv)
    if done:
        return None
    said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return (
        f"{sig.name} is not a good signature of {path.name} by {trust.signer} in "
        f"{trust.allowed_signers.name} (ssh-keygen: {said[0]})"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Signed:
    """What ``sign_release`` wrote: the provenance, and the signatures (none when unsigned)."""

    provenance: Path
    signatures: tuple[Path, ...]


def sign_release(
    dist: Path,
    config: SigningConfig | None,
    *,
    root: Path,
    env: Mapping[str, str],
    runner: Runner,
) -> Signed:
    """Write the provenance of the build in ``dist`` beside SHA256SUMS, then sign both."""
    manifest = read_manifest(dist)
    assets = assets_dir(dist)
    try:
        done = runner.run(["git", "remote", "get-url", "origin"], cwd=root)
        remote = done.stdout.strip() if done else None
    except CIError:
        remote = None
    facts = provenance.builder_facts(env, remote)
    path = assets / provenance.PROVENANCE
    atomic_write_bytes(path, provenance.to_bytes(provenance.statement(manifest, facts)))
    path.chmod(0o644)
    if config is None:
        return Signed(provenance=path, signatures=())
    signatures = sign([assets / SUMS, path], config, root=root, env=env, runner=runner)
    return Signed(provenance=path, signatures=tuple(signatures))
