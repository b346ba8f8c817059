"""``sign`` then ``verify``: real ssh-keygen keys, signatures and checks, offline."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core import redact
from ci.release import package, provenance
from tests.support import signed_release
from tests.support.deploy_project import write_wheel
from tests.support.signed_release import SIGNER


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A project with a built dist/, signed with the key its [tool.ci.release] names."""
    root = tmp_path / "project"
    key, public = signed_release.keypair(tmp_path / "keys")
    (root / ".github").mkdir(parents=True)
    (root / ".github" / "allowed_signers").write_text(f"{SIGNER} {public}\n", encoding="utf-8")
    signed_release.project(
        root,
        f'signer = "{SIGNER}"\nallowed_signers = ".github/allowed_signers"\n'
        f'signing_key = "{key}"\n',
    )
    signed_release.build(root)
    return root


def ci(root: Path, *args: str) -> int:
    return main(["--config", str(root / "pyproject.toml"), *args])


def test_a_signed_release_verifies_with_ci_and_with_ssh_keygen_alone(
    release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ci(release, "sign") == 0
    assets = release / "dist-assets"
    for name in ("SHA256SUMS.sig", "provenance.intoto.json", "provenance.intoto.json.sig"):
        assert (assets / name).is_file(), name
    capsys.readouterr()
    assert ci(release, "verify") == 0
    out = capsys.readouterr().out
    assert f"SHA256SUMS: signed by {SIGNER}" in out
    assert "provenance.intoto.json: 2 subjects, each a distribution in dist/" in out
    assert "verified: checksums, signatures and provenance hold" in out
    # what a user runs, with OpenSSH alone
    allowed = release / ".github" / "allowed_signers"
    for name in ("SHA256SUMS", "provenance.intoto.json"):
        with (assets / name).open("rb") as message:
            sig = str(assets / f"{name}.sig")
            done = subprocess.run(
                [
                    "ssh-keygen",
                    "-Y",
                    "verify",
                    "-f",
                    str(allowed),
                    "-I",
                    SIGNER,
                    "-n",
                    "file",
                    "-s",
                    sig,
                ],
                stdin=message,
                capture_output=True,
                text=True,
                check=False,
            )
        assert done.returncode == 0, done.stderr
        assert f'Good "file" signature for {SIGNER}' in done.stdout


def test_a_changed_byte_in_a_wheel_fails_naming_the_wheel(
    release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ci(release, "sign") == 0
    wheel = next((release / "dist").glob("*.whl"))
    data = bytearray(wheel.read_bytes())
    data[-1] ^= 0x01
    wheel.write_bytes(bytes(data))
    capsys.readouterr()
    assert ci(release, "verify") == 1
    out = capsys.readouterr().out
    assert f"FAIL  {wheel.name} has sha256" in out
    assert "the file changed after it was built" in out
    assert f"{wheel.name} does not have the sha256 its provenance subject names" in out
    assert "verified:" not in out


def test_a_signature_by_another_key_fails(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other, _ = signed_release.keypair(tmp_path / "other", "other")
    pyproject = release / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    signing_line = next(ln for ln in text.splitlines() if ln.startswith("signing_key"))
    pyproject.write_text(text.replace(signing_line, f'signing_key = "{other}"'), encoding="utf-8")
    assert ci(release, "sign") == 0
    capsys.readouterr()
    assert ci(release, "verify") == 1
    out = capsys.readouterr().out
    assert f"FAIL  SHA256SUMS.sig is not a good signature of SHA256SUMS by {SIGNER}" in out
    assert "FAIL  provenance.intoto.json.sig is not a good signature" in out


def test_a_wrong_signer_identity_fails(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ci(release, "sign") == 0
    allowed = str(release / ".github" / "allowed_signers")
    capsys.readouterr()
    code = ci(release, "verify", "--allowed-signers", allowed, "--signer", "mallory@example.org")
    assert code == 1
    assert "by mallory@example.org" in capsys.readouterr().out


def test_a_subject_missing_from_dist_and_a_file_not_in_the_subjects_fail(
    release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ci(release, "sign") == 0
    sdist = next((release / "dist").glob("*.tar.gz"))
    sdist.unlink()
    capsys.readouterr()
    assert ci(release, "verify") == 1
    out = capsys.readouterr().out
    assert f"FAIL  provenance subject {sdist.name} is not in dist/" in out
    assert f"FAIL  {sdist.name} is listed in SHA256SUMS but missing" in out

    signed_release.build(release)  # the same files again, signed again: clean
    assert ci(release, "sign") == 0
    extra = write_wheel(release / "dist", "demo-app", "1.0.1", "demo_app")
    capsys.readouterr()
    assert ci(release, "verify") == 1
    out = capsys.readouterr().out
    assert f"FAIL  {extra.name} is in dist/ but not a subject of provenance.intoto.json" in out
    assert f"FAIL  {extra.name} is in dist/ but not in SHA256SUMS" in out


def test_an_unsigned_release_does_not_verify(
    release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert ci(release, "verify") == 1
    out = capsys.readouterr().out
    assert "FAIL  SHA256SUMS.sig is missing" in out
    assert "FAIL  provenance.intoto.json is missing" in out


def test_a_flat_folder_of_downloaded_assets_verifies(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ci(release, "sign") == 0
    download = tmp_path / "download"
    download.mkdir()
    for folder in ("dist", "dist-assets"):
        for path in (release / folder).iterdir():
            if path.is_file():
                (download / path.name).write_bytes(path.read_bytes())
    allowed = str(release / ".github" / "allowed_signers")
    capsys.readouterr()
    assert main(["verify", str(download), "--allowed-signers", allowed, "--signer", SIGNER]) == 0
    assert "verified:" in capsys.readouterr().out
    # and the checksums with coreutils alone
    done = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=download, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout


def test_the_key_from_an_env_var_signs_and_never_shows(
    release: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    key, _ = signed_release.keypair(tmp_path / "env-key", "env")
    allowed = release / ".github" / "allowed_signers"
    public = key.with_suffix(".pub").read_text(encoding="utf-8").strip()
    allowed.write_text(f"{SIGNER} {public}\n", encoding="utf-8")
    signed_release.project(
        release,
        f'signer = "{SIGNER}"\nallowed_signers = ".github/allowed_signers"\n'
        'signing_key_env = "RELEASE_SIGNING"\n',
    )
    assert ci(release, "sign") == 3  # not set: a missing secret, before anything is signed
    assert "RELEASE_SIGNING is not set" in capfd.readouterr().err
    secret = key.read_text(encoding="utf-8")
    monkeypatch.setenv("RELEASE_SIGNING", secret)
    assert ci(release, "sign") == 0
    # masked though its name matches no mask_env pattern: it is the release's signing key
    assert redact.current()(secret.splitlines()[1]) != secret.splitlines()[1]
    assert ci(release, "verify") == 0
    printed = "".join(capfd.readouterr())
    written = b"".join(p.read_bytes() for p in (release / "dist-assets").iterdir() if p.is_file())
    body = "".join(secret.splitlines()[1:-1])
    for form in (secret.strip(), body, base64.b64encode(secret.encode()).decode()):
        assert form not in printed
        assert form.encode() not in written


def test_the_provenance_is_an_in_toto_slsa_v1_statement(
    release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/demo",
        "GITHUB_WORKFLOW_REF": "acme/demo/.github/workflows/release.yml@refs/tags/v1.0.0",
        "GITHUB_RUN_ID": "42",
    }.items():
        monkeypatch.setenv(name, value)
    assert ci(release, "sign") == 0
    document = json.loads((release / "dist-assets" / provenance.PROVENANCE).read_text())
    assert document["_type"] == "https://in-toto.io/Statement/v1"
    assert document["predicateType"] == "https://slsa.dev/provenance/v1"
    names = sorted(s["name"] for s in document["subject"])
    assert names == sorted(p.name for p in (release / "dist").iterdir())  # no bundle
    predicate = document["predicate"]
    definition = predicate["buildDefinition"]
    assert definition["externalParameters"]["command"] == list(provenance.BUILD_COMMAND)
    dependencies = definition["resolvedDependencies"]
    assert dependencies[0]["digest"] == {"gitCommit": signed_release.COMMIT}
    assert dependencies[0]["uri"] == "git+https://github.com/acme/demo"
    assert {"uri": "uv.lock", "digest": {"sha256": signed_release.LOCK_SHA}} in dependencies
    builder = predicate["runDetails"]["builder"]["id"]
    assert builder == "https://github.com/acme/demo/.github/workflows/release.yml@refs/tags/v1.0.0"


def test_a_local_remote_loses_its_credentials_in_the_provenance() -> None:
    facts = provenance.builder_facts({}, "https://user:s3cret@git.example.org/acme/demo.git")
    assert facts.source_uri == "git+https://git.example.org/acme/demo.git"
    assert facts.builder_id == provenance.LOCAL_BUILDER
    assert provenance.builder_facts({}, "git@github.com:acme/demo.git").source_uri == (
        "git+ssh://github.com/acme/demo.git"
    )


@pytest.mark.parametrize(
    ("table", "named"),
    [
        (f'signer = "{SIGNER}"\n', "tool.ci.release.allowed_signers is missing"),
        ('allowed_signers = "a"\n', "tool.ci.release.signer is missing"),
        ('signer = "two words"\nallowed_signers = "a"\n', "tool.ci.release.signer = 'two words'"),
        (
            f'signer = "{SIGNER}"\nallowed_signers = "a"\nsigning_key = "k"\n'
            'signing_key_env = "K"\n',
            "set signing_key (a file) or signing_key_env, not both",
        ),
        (
            f'signer = "{SIGNER}"\nallowed_signers = "a"\nsigning_key_env = "not a name"\n',
            "signing_key_env = 'not a name' is not an environment variable name",
        ),
        (f'signer = "{SIGNER}"\nallowed_signers = "../x"\n', "allowed_signers = '../x'"),
        ("signing_keys = 1\n", "unknown key 'signing_keys' in [tool.ci.release]"),
        ("signer = 1\n", "tool.ci.release.signer must be a string"),
    ],
)
def test_bad_signing_config_is_exit_2_naming_the_key(
    tmp_path: Path, table: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "p"
    signed_release.project(root, table)
    assert ci(root, "sign") == 2
    err = capsys.readouterr().err
    assert named in err
    assert len(err.strip().splitlines()) == 1


def test_verify_without_whom_to_trust_or_a_folder_is_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "p"
    signed_release.build(root)
    signed_release.project(root, "")
    assert ci(root, "verify") == 2
    assert "verify needs whom to trust" in capsys.readouterr().err
    allowed = tmp_path / "allowed"
    allowed.write_text("", encoding="utf-8")
    args = ["--allowed-signers", str(allowed), "--signer", SIGNER]
    assert ci(root, "verify", str(tmp_path / "nowhere"), *args) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_new_build_drops_the_last_builds_provenance_and_signatures(release: Path) -> None:
    assert ci(release, "sign") == 0
    assets = release / "dist-assets"
    signed = {"SHA256SUMS.sig", provenance.PROVENANCE, f"{provenance.PROVENANCE}.sig"}
    assert set(package.SIGNED) == signed
    assert all((assets / name).is_file() for name in signed)
    manifest = package.read_manifest(release / "dist")
    build_dir = release / "next-build"
    build_dir.mkdir()
    for artifact in manifest.artifacts:
        source = package.artifact_path(release / "dist", artifact)
        (build_dir / artifact.name).write_bytes(source.read_bytes())
    (build_dir / package.SUMS).write_bytes((assets / package.SUMS).read_bytes())
    package._promote(release / "dist", build_dir, manifest)  # the swap a new build makes
    assert not any((assets / name).exists() for name in signed)
