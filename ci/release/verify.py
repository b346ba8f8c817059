"""Check a release offline: checksums, the signature over them, and the build provenance.

``verify`` takes the folder of distributions (``dist/``, with ``dist-assets/`` beside it as
``package`` writes them, or one flat folder of downloaded release assets) and says what
does not hold: a file whose bytes changed, a signature that is not the trusted signer's, a
provenance subject that is not in the folder, a distribution the provenance does not name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ci.core.errors import CIError, UsageError
from ci.core.runner import Runner
from ci.release import provenance, signing
from ci.release.package import SUMS, assets_dir, parse_sums, sha256_file
from ci.release.signing import Trust

BUNDLE_SUFFIX = "-bundle.tar.gz"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What held and what did not; ``bool`` is True only when nothing failed."""

    held: tuple[str, ...]
    problems: tuple[str, ...]

    def __bool__(self) -> bool:
        """True when every check held."""
        return not self.problems


def meta_folder(dist: Path) -> Path:
    """Where SHA256SUMS and the provenance are: ``<dist>-assets`` if it has them, else ``dist``."""
    assets = assets_dir(dist)
    return assets if (assets / SUMS).is_file() else dist


def distributions(dist: Path) -> list[str]:
    """The wheels and sdists in ``dist`` (the asset bundle is not a distribution)."""
    return sorted(
        p.name
        for p in dist.iterdir()
        if p.is_file()
        and (p.name.endswith(".whl") or p.name.endswith(".tar.gz"))
        and not p.name.endswith(BUNDLE_SUFFIX)
    )


def _find(name: str, dist: Path, meta: Path) -> Path | None:
    for folder in (dist, meta):
        if (folder / name).is_file() and "/" not in name:
            return folder / name
    return None


def verify(dist: Path, trust: Trust, runner: Runner) -> Verdict:
    """Every check of ``dist``: checksums, signatures (by ``trust``), provenance subjects."""
    if not dist.is_dir():
        msg = f"{dist} is not a folder: pass the folder of the release's distributions"
        raise UsageError(msg)
    meta = meta_folder(dist)
    held: list[str] = []
    problems: list[str] = []
    sums_path = meta / SUMS
    if not sums_path.is_file():
        return Verdict(held=(), problems=(f"{SUMS} is missing in {dist} and beside it",))
    try:
        sums = parse_sums(sums_path.read_text(encoding="utf-8", errors="replace"))
    except CIError as exc:
        return Verdict(held=(), problems=(str(exc),))
    problems.extend(_check_sums(sums, dist, meta))
    found = distributions(dist)
    problems.extend(
        f"{name} is in {dist.name}/ but not in {SUMS}: it is not part of this release"
        for name in found
        if name not in sums
    )
    if not problems:
        held.append(f"{SUMS}: {len(sums)} files, every sha256 matches")
    for path in (sums_path, meta / provenance.PROVENANCE):
        if not path.is_file():
            continue  # a missing provenance is reported below
        why = signing.check(path, trust, runner)
        if why is None:
            held.append(f"{path.name}: signed by {trust.signer}")
        else:
            problems.append(why)
    problems.extend(_check_provenance(meta / provenance.PROVENANCE, dist, sums, found, held))
    return Verdict(held=tuple(held), problems=tuple(problems))


def _check_sums(sums: dict[str, str], dist: Path, meta: Path) -> list[str]:
    problems = []
    for name, expected in sums.items():
        path = _find(name, dist, meta)
        if path is None:
            problems.append(f"{name} is listed in {SUMS} but missing")
            continue
        actual = sha256_file(path)
        if actual != expected:
            problems.append(
                f"{name} has sha256 {actual[:16]}..., {SUMS} says {expected[:16]}...: "
                "the file changed after it was built"
            )
    return problems


def _check_provenance(
    path: Path, dist: Path, sums: dict[str, str], found: list[str], held: list[str]
) -> list[str]:
    if not path.is_file():
        return [f"{path.name} is missing: the release carries no build provenance"]
    try:
        subjects = provenance.read_subjects(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as exc:
        return [f"{path.name} is not an in-toto SLSA provenance statement ({exc})"]
    problems = []
    for name, digest in sorted(subjects.items()):
        if name not in found:
            problems.append(f"provenance subject {name} is not in {dist.name}/")
        elif sha256_file(dist / name) != digest:
            problems.append(f"{name} does not have the sha256 its provenance subject names")
        elif sums.get(name) != digest:
            problems.append(f"{name}: the provenance and {SUMS} name different sha256 digests")
    problems.extend(
        f"{name} is in {dist.name}/ but not a subject of {path.name}: its build is unaccounted for"
        for name in found
        if name not in subjects
    )
    if not problems:
        held.append(f"{path.name}: {len(subjects)} subjects, each a distribution in {dist.name}/")
    return problems


def render(dist: Path, verdict: Verdict) -> str:
    """The lines ``python -m ci verify`` prints."""
    lines = [f"verify {dist}:"]
    lines.extend(f"  ok    {line}" for line in verdict.held)
    lines.extend(f"  FAIL  {line}" for line in verdict.problems)
    if verdict:
        lines.append("verified: checksums, signatures and provenance hold")
    return "\n".join(lines)
