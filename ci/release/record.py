"""The release record: notes, the artifact table and the ledger anchor, written and published.

Reads what packaging and deploy leave behind, each optional:

- ``dist-assets/manifest.json``: ``{"artifacts": [{"name": str, "sha256": str?, "size": int?,
  "published": str | [str] | {"url": str}?}]}`` (``files`` is accepted for ``artifacts``,
  and ``url``/``urls``/``published_to`` for ``published``); nothing else is read.
- ``dist-assets/SHA256SUMS``: ``<sha256>  <name>`` lines (``sha256sum`` format).
- the deploy ledger: its verified head hash is the audit anchor (a ledger that fails
  verification stops the record, exit 3: a tampered ledger never yields an anchor).

The wheel and sdist live in ``dist/``, every other asset in ``dist-assets/`` beside it
(``ci.release.package`` writes both). Without a manifest or SHA256SUMS the wheels and
sdists found in ``dist/`` are the assets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core import files
from ci.core.errors import DeployError, UsageError
from ci.core.http import HttpClient, Retry
from ci.core.redact import redact
from ci.core.runner import Runner
from ci.github import releases as ghrelease
from ci.github import summary
from ci.github.client import GitHubClient, api_url_from, token_from
from ci.release import commits as history
from ci.release import notes
from ci.release.package import assets_dir
from ci.release.version import DEFAULT_FORMAT, TagFormat

NOTES_FILE = "RELEASE_NOTES.md"
# what sits beside the distributions on the GitHub release: checksums, manifest, and (when
# `python -m ci sign` ran) the provenance and the signatures users verify offline
META_FILES = (
    "SHA256SUMS",
    "manifest.json",
    "SHA256SUMS.sig",
    "provenance.intoto.json",
    "provenance.intoto.json.sig",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """One file of the release with where it was published."""

    name: str
    path: Path
    size: int
    sha256: str
    published: tuple[str, ...] = ()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sums(path: Path) -> dict[str, str]:
    """``name -> sha256`` from a SHA256SUMS file ({} when absent)."""
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and len(parts[0]) == 64:
            sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def _locations(entry: Mapping[str, Any]) -> tuple[str, ...]:
    for key in ("published", "published_to", "urls", "url", "locations"):
        value = entry.get(key)
        items = value if isinstance(value, list) else [value]
        found = []
        for item in items:
            if isinstance(item, str) and item:
                found.append(item)
            elif isinstance(item, Mapping) and isinstance(item.get("url"), str):
                found.append(item["url"])
        if found:
            return tuple(found)
    return ()


def read_manifest(path: Path) -> dict[str, Mapping[str, Any]]:
    """``name -> entry`` for the artifacts listed in manifest.json ({} when absent)."""
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path} is not valid JSON ({exc}); rebuild it with `python -m ci package`"
        raise UsageError(msg) from None
    raw = doc.get("artifacts", doc.get("files")) if isinstance(doc, dict) else None
    entries: list[Any] = raw if isinstance(raw, list) else []
    if isinstance(raw, Mapping):  # {"name": {...}} is a shape some writers use
        entries = [{"name": k, **v} for k, v in raw.items() if isinstance(v, Mapping)]
    return {
        str(e["name"]).rsplit("/", 1)[-1]: e
        for e in entries
        if isinstance(e, Mapping) and isinstance(e.get("name"), str)
    }


def artifacts(dist: Path) -> list[Artifact]:
    """The release's files in ``dist`` and beside it, checked against SHA256SUMS (exit 5 if not)."""
    assets = assets_dir(dist)
    manifest = read_manifest(assets / "manifest.json")
    sums = read_sums(assets / "SHA256SUMS")
    names = list(dict.fromkeys([*manifest, *sums]))
    if not names and dist.is_dir():
        names = sorted(p.name for p in dist.iterdir() if p.name.endswith((".whl", ".tar.gz")))
    names += [m for m in META_FILES if (assets / m).is_file() and m not in names]
    found = []
    for name in names:
        path = dist / name if (dist / name).is_file() else assets / name
        if not path.is_file():
            msg = f"{path} is listed in manifest.json or SHA256SUMS but missing; rebuild dist"
            raise DeployError(msg)
        sha = _sha256(path)
        expected = sums.get(name) or manifest.get(name, {}).get("sha256")
        if isinstance(expected, str) and expected.lower() != sha:
            msg = f"{path} does not match its recorded sha256; rebuild with `python -m ci package`"
            raise DeployError(msg)
        found.append(
            Artifact(
                name=name,
                path=path,
                size=path.stat().st_size,
                sha256=sha,
                published=_locations(manifest.get(name, {})),
            )
        )
    return found


def human_size(n: int) -> str:
    """``n`` bytes as B, KiB or MiB with one decimal."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


NOTES_LIMIT = 100_000  # GitHub refuses release bodies over 125,000 characters


def clip(notes_md: str, limit: int = NOTES_LIMIT) -> str:
    """``notes_md`` cut at a line boundary to fit in ``limit`` characters, saying so."""
    if len(notes_md) <= limit:
        return notes_md
    kept = notes_md[:limit].rsplit("\n", 1)[0]
    dropped = notes_md[len(kept) :].count("\n- ")
    return f"{kept}\n\n... {dropped} more lines: run `python -m ci notes` for all of them.\n"


def body(notes_md: str, found: Sequence[Artifact], anchor: str | None) -> str:
    """The release body: the notes, the artifact table and the ledger anchor."""
    lines = [clip(notes_md).rstrip(), "", "### Artifacts", ""]
    # SHA256SUMS and manifest.json describe the artifacts; the table lists the artifacts
    # (manifest.json changes with every publish attempt, the body must not).
    rows = [a for a in found if a.name not in META_FILES]
    if rows:
        lines += ["| name | size | sha256 | published |", "|---|---|---|---|"]
        for a in rows:
            where = ", ".join(a.published) if a.published else "release assets"
            lines.append(
                f"| `{a.name}` | {human_size(a.size)} ({a.size} B) | `{a.sha256}` | {where} |"
            )
    else:
        lines.append("No artifacts were found in dist/ or dist-assets/.")
    lines += ["", "### Audit anchor", ""]
    if anchor:
        lines.append(f"Ledger head: `{anchor}`")
        lines.append("")
        lines.append(f"Check it with `python -m ci ledger verify --anchor {anchor}`.")
    else:
        lines.append("No deploy ledger yet: nothing to anchor.")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """Everything the release record is made of, worked out before anything is written."""

    tag: str
    notes: notes.Notes
    artifacts: tuple[Artifact, ...]
    anchor: str | None
    body: str
    warning: str | None
    tag_format: TagFormat = DEFAULT_FORMAT


def head_tag(runner: Runner, repo: Path, tag_format: TagFormat | None = None) -> str:
    """The release tag on HEAD; UsageError saying to pass ``--tag`` when there is none."""
    fmt = tag_format or DEFAULT_FORMAT
    tags = history.tags_at(runner, repo, "HEAD", tag_format=fmt)
    if not tags:
        msg = (
            f"HEAD carries no release tag ({fmt.describe()}): tag the release "
            f"(git tag {fmt.tag('X.Y.Z')}) or pass --tag"
        )
        raise UsageError(msg)
    return tags[0]


def build(
    runner: Runner,
    repo: Path,
    env: Mapping[str, str],
    *,
    tag: str,
    dist: Path,
    ledger_head: Callable[[], str | None],
    tag_format: TagFormat | None = None,
) -> Record:
    """Work out the whole record for ``tag`` (reads git, dist and the ledger; writes nothing).

    ``ledger_head`` is the state backend's verifying reader of the ledger head: a ledger
    that fails verification stops the record (exit 3) instead of yielding an anchor.
    """
    fmt = tag_format or DEFAULT_FORMAT
    found_notes = history.gather_notes(runner, repo, env, until=tag, tag_format=fmt)
    found = tuple(artifacts(dist))
    anchor = ledger_head()
    return Record(
        tag=tag,
        notes=found_notes,
        artifacts=found,
        anchor=anchor,
        body=redact(body(notes.render_markdown(found_notes), found, anchor)),  # sent as is
        warning=notes.version_warning(tag, found_notes.proposal, fmt),
        tag_format=fmt,
    )


def write_notes(record: Record, dist: Path) -> Path:
    """Write the release body to ``dist-assets/RELEASE_NOTES.md`` (atomic, masked)."""
    path = assets_dir(dist) / NOTES_FILE
    files.atomic_write_text(path, record.body)
    return path


def append_summary(text: str, env: Mapping[str, str]) -> Path | None:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` when set and it has room left."""
    raw = env.get("GITHUB_STEP_SUMMARY", "")
    if not raw:
        return None
    path = Path(raw)
    before = path.read_text(encoding="utf-8") if path.is_file() else ""
    sep = "\n" if before and not before.endswith("\n") else ""
    return path if summary.append_step_summary(path, sep + text) else None


def github_target(env: Mapping[str, str]) -> tuple[str, str] | str:
    """``(repository, token)`` when a release can be made, else the one-line reason why not."""
    repository = env.get("GITHUB_REPOSITORY", "").strip()
    token = token_from(env)
    if not token:
        return (
            "no GITHUB_TOKEN (or GH_TOKEN): skipping the GitHub release "
            "(the notes are in dist-assets/)"
        )
    if not repository:
        return "GITHUB_REPOSITORY is not set: skipping the GitHub release"
    return repository, token


def spec(record: Record) -> ghrelease.ReleaseSpec:
    """The GitHub release the record calls for."""
    version = notes.parse_tag(record.tag, record.tag_format)
    return ghrelease.ReleaseSpec(
        tag=record.tag,
        name=record.tag,
        body=record.body,
        prerelease=bool(version and version.is_prerelease),
        assets=tuple(
            ghrelease.Asset(
                name=a.name,
                path=a.path,
                size=a.size,
                sha256=a.sha256,
                volatile=a.name == "manifest.json",
            )
            for a in record.artifacts
        ),
    )


def publish(
    record: Record, env: Mapping[str, str], client: HttpClient, retry: Retry | None = None
) -> ghrelease.SyncResult | str:
    """Create or update the GitHub release; the skip reason instead when there is no token."""
    target = github_target(env)
    if isinstance(target, str):
        return target
    repository, token = target
    api = GitHubClient(
        client,
        api_url=api_url_from(env),
        repository=repository,
        token=token,
        retry=retry,
        timeout=ghrelease.TIMEOUT_S,
    )
    return ghrelease.sync(api, spec(record))
