"""Release notes from commit history: Conventional Commits in, grouped notes and a next version out.

Pure: every function here takes commit records and returns records or text. Reading git is
done by ``ci.release.commits`` through the runner.

Version proposal (semantic rules):

- from 1.0.0 on: a breaking change bumps the major, a ``feat`` the minor, anything else the
  patch;
- below 1.0.0 (the 0.x convention): the minor is the compatibility line, as Cargo and npm's
  caret ranges treat ``0.y.z``, so a breaking change bumps the minor and everything else
  (``feat`` included) the patch. Leaving 0.x is a human decision: 1.0.0 is never proposed;
- with no previous release tag the first release proposed is 0.1.0.

Tags are read in the project's tag format (``v{version}`` unless told otherwise).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from ci.release.version import DEFAULT_FORMAT, TagFormat


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """One commit as git reports it."""

    sha: str
    parents: tuple[str, ...] = ()
    author: str
    email: str = ""
    message: str

    @property
    def subject(self) -> str:
        """The first line of the message."""
        return self.message.strip().split("\n", 1)[0].strip()

    @property
    def body(self) -> str:
        """The message after the subject line."""
        parts = self.message.strip().split("\n", 1)
        return parts[1].strip() if len(parts) > 1 else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A commit that goes into the notes, parsed as a Conventional Commit where it is one."""

    sha: str
    type: str
    scope: str | None
    description: str
    breaking: bool
    breaking_note: str | None
    author: str
    email: str
    co_authors: tuple[tuple[str, str], ...] = ()

    @property
    def short(self) -> str:
        """The abbreviated sha (7 characters)."""
        return self.sha[:7]


class Bump(enum.StrEnum):
    """How far the version moves."""

    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """The next version the changes call for, and why."""

    previous: str | None
    bump: Bump
    version: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """One heading of the notes with its changes."""

    key: str
    title: str
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Contributor:
    """Someone who authored (or co-authored) at least one change."""

    name: str
    email: str
    commits: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Notes:
    """The release notes for one range of history."""

    title: str
    since: str | None
    until: str
    sections: tuple[Section, ...]
    contributors: tuple[Contributor, ...]
    excluded: int
    proposal: Proposal
    link_base: str | None = None
    changes: tuple[Change, ...] = field(default=())

    def __bool__(self) -> bool:
        """True when there is at least one change to report."""
        return bool(self.changes)


# The sections in the order they are printed; a breaking change goes only to the first.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("breaking", "Breaking changes"),
    ("security", "Security"),
    ("feat", "Features"),
    ("fix", "Fixes"),
    ("perf", "Performance"),
    ("docs", "Documentation"),
    ("other", "Other changes"),
)
TYPE_ALIASES = {"feature": "feat", "bugfix": "fix", "sec": "security", "doc": "docs"}

_HEADER = re.compile(r"^(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?:\s+(?P<desc>.+)$")
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:\s*(?P<note>.*)$", re.MULTILINE)
_CO_AUTHOR = re.compile(
    r"^Co-authored-by:\s*(?P<name>[^<]+?)\s*<(?P<email>[^>]*)>\s*$", re.I | re.M
)
_MERGE_SUBJECT = re.compile(
    r"^Merge (pull request #\d+|branch |remote-tracking branch |tag |commit )", re.I
)
_VERSION_WORD = r"v?\d+(?:\.\d+){1,2}\S*"
_RELEASE_SUBJECTS = (
    re.compile(r"^chore\(release\)!?:", re.I),
    re.compile(r"^release(\(.*\))?!?:", re.I),
    re.compile(rf"^(chore:\s*)?release\s+{_VERSION_WORD}\s*$", re.I),
    # "bump version", "chore: bump version to 1.2.0", "bump to v1.2.0"; not dependency bumps
    re.compile(r"^(chore(\((release|version)\))?:\s*)?bump(ed)? (the )?(version\b|to v?\d)", re.I),
    re.compile(rf"^{_VERSION_WORD}$", re.I),
)


def is_merge(commit: Commit) -> bool:
    """True for merge commits (two or more parents, or git's own merge subject)."""
    return len(commit.parents) > 1 or bool(_MERGE_SUBJECT.match(commit.subject))


def is_release(commit: Commit) -> bool:
    """True for release bookkeeping: ``chore(release): ...``, ``Release v1.2.0``, version bumps."""
    return any(p.match(commit.subject) for p in _RELEASE_SUBJECTS)


def parse(commit: Commit) -> Change:
    """Parse one commit; a subject that is not a Conventional Commit becomes type ``other``."""
    match = _HEADER.match(commit.subject)
    footer = _BREAKING_FOOTER.search(commit.body)
    breaking_note = footer.group("note").strip() or None if footer else None
    co_authors = tuple(
        (m.group("name").strip(), m.group("email").strip().lower())
        for m in _CO_AUTHOR.finditer(commit.body)
    )
    common: dict[str, Any] = {
        "sha": commit.sha,
        "author": commit.author,
        "email": commit.email.lower(),
        "co_authors": co_authors,
        "breaking_note": breaking_note,
    }
    if match is None:
        return Change(
            type="other", scope=None, description=commit.subject, breaking=bool(footer), **common
        )
    kind = match.group("type").lower()
    scope = (match.group("scope") or "").strip() or None
    return Change(
        type=TYPE_ALIASES.get(kind, kind),
        scope=scope,
        description=match.group("desc").strip(),
        breaking=bool(match.group("bang") or footer),
        **common,
    )


def section_of(change: Change) -> str:
    """The key of the section a change is listed under."""
    if change.breaking:
        return "breaking"
    known = {key for key, _ in SECTIONS}
    return change.type if change.type in known - {"breaking", "other"} else "other"


def select(commits: Iterable[Commit]) -> tuple[list[Change], int]:
    """The changes worth reporting, and how many commits (merges, releases) were left out."""
    changes: list[Change] = []
    excluded = 0
    for commit in commits:
        if is_merge(commit) or is_release(commit):
            excluded += 1
        else:
            changes.append(parse(commit))
    return changes, excluded


def group(changes: Sequence[Change]) -> tuple[Section, ...]:
    """The non-empty sections, in print order, each keeping the commits' order."""
    sections = []
    for key, title in SECTIONS:
        members = tuple(c for c in changes if section_of(c) == key)
        if members:
            sections.append(Section(key=key, title=title, changes=members))
    return tuple(sections)


def contributors(changes: Sequence[Change]) -> tuple[Contributor, ...]:
    """Authors and co-authors, one per email (or name), most changes first, then by name."""
    counts: dict[str, int] = {}
    names: dict[str, tuple[str, str]] = {}
    for change in changes:
        people = {(change.author, change.email), *change.co_authors}
        for name, email in people:
            key = email or name.casefold()
            counts[key] = counts.get(key, 0) + 1
            names.setdefault(key, (name, email))
    ordered = sorted(counts, key=lambda k: (-counts[k], names[k][0].casefold()))
    return tuple(
        Contributor(name=names[k][0], email=names[k][1], commits=counts[k]) for k in ordered
    )


def parse_tag(tag: str, tag_format: TagFormat | None = None) -> Version | None:
    """The version a release tag names, or None when it is not one.

    With ``tag_format`` the tag must have that format; without, ``v1.2.3`` and ``1.2.3``
    both read as 1.2.3.
    """
    if tag_format is not None:
        return tag_format.version_of(tag)
    text = tag[1:] if tag[:1] in {"v", "V"} else tag
    try:
        return Version(text)
    except InvalidVersion:
        return None


def bump_of(changes: Sequence[Change]) -> Bump:
    """The semantic weight of the changes: breaking > feat > anything else > nothing."""
    if any(c.breaking for c in changes):
        return Bump.MAJOR
    if any(c.type == "feat" for c in changes):
        return Bump.MINOR
    return Bump.PATCH if changes else Bump.NONE


FIRST_VERSION = "0.1.0"


def propose(
    previous: str | None, changes: Sequence[Change], tag_format: TagFormat | None = None
) -> Proposal:
    """The next version after tag ``previous`` for these changes (see the module docstring)."""
    bump = bump_of(changes)
    base = parse_tag(previous, tag_format) if previous else None
    if base is None:
        return Proposal(
            previous=previous,
            bump=bump,
            version=FIRST_VERSION,
            reason="no previous release tag: the first release",
        )
    major, minor, patch = (*base.release, 0, 0)[:3]
    effective = bump
    if major == 0 and bump is Bump.MAJOR:
        effective = Bump.MINOR  # 0.x: breaking moves the minor
    elif major == 0 and bump is Bump.MINOR:
        effective = Bump.PATCH  # 0.x: features stay compatible within the minor
    if effective is Bump.MAJOR:
        version = f"{major + 1}.0.0"
    elif effective is Bump.MINOR:
        version = f"{major}.{minor + 1}.0"
    elif effective is Bump.PATCH:
        version = f"{major}.{minor}.{patch + 1}"
    else:
        version = f"{major}.{minor}.{patch}"
    reason = _reason(bump, effective, major)
    return Proposal(previous=previous, bump=effective, version=version, reason=reason)


def _reason(bump: Bump, effective: Bump, major: int) -> str:
    what = {
        Bump.MAJOR: "breaking changes",
        Bump.MINOR: "new features",
        Bump.PATCH: "fixes and other changes only",
        Bump.NONE: "no changes",
    }[bump]
    if major == 0 and effective is not bump:
        return f"{what}: {effective.value} bump (0.x: the minor is the compatibility line)"
    return f"{what}: {effective.value} bump"


def version_warning(
    tag: str, proposal: Proposal, tag_format: TagFormat | None = None
) -> str | None:
    """A warning when the tagged version is lower than the proposed one, else None."""
    tagged = parse_tag(tag, tag_format)
    proposed = parse_tag(proposal.version)
    if tagged is None or proposed is None or proposal.bump is Bump.NONE:
        return None
    # A pre-release of the proposed version (1.3.0rc1 for 1.3.0) is not lower; 1.3 is 1.3.0.
    if Version(tagged.base_version) >= Version(proposed.base_version):
        return None
    since = proposal.previous or "the start of history"
    retag = (tag_format or DEFAULT_FORMAT).tag(proposal.version)
    return (
        f"tag {tag} is lower than the proposed {proposal.version} "
        f"({proposal.reason} since {since}); retag as {retag} "
        "if the changes are what the notes say"
    )


def link_base(env: Mapping[str, str]) -> str | None:
    """``<server>/<owner>/<repo>`` on GitHub (for commit links), else None."""
    server = env.get("GITHUB_SERVER_URL", "").rstrip("/")
    repository = env.get("GITHUB_REPOSITORY", "").strip("/")
    return f"{server}/{repository}" if server and repository else None


def build(
    commits: Iterable[Commit],
    *,
    since: str | None,
    until: str,
    title: str | None = None,
    link: str | None = None,
    tag_format: TagFormat | None = None,
) -> Notes:
    """Turn the commits of ``since..until`` into notes with a next-version proposal."""
    changes, excluded = select(commits)
    proposal = propose(since, changes, tag_format)
    return Notes(
        title=title or until,
        since=since,
        until=until,
        sections=group(changes),
        contributors=contributors(changes),
        excluded=excluded,
        proposal=proposal,
        link_base=link,
        changes=tuple(changes),
    )


def _md_escape(text: str) -> str:
    # Keep commit text literal: these would otherwise start markup in a list item.
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def _sha_ref(change: Change, link: str | None) -> str:
    if link:
        return f"[`{change.short}`]({link}/commit/{change.sha})"
    return f"`{change.short}`"


def render_markdown(notes: Notes, *, heading_level: int = 2) -> str:
    """The notes as Markdown: a heading, the sections, contributors and the proposal."""
    h = "#" * heading_level
    lines = [f"{h} {notes.title}", ""]
    if notes.since and notes.link_base:
        compare = f"{notes.link_base}/compare/{notes.since}...{notes.until}"
        span = f"[{notes.since}...{notes.until}]({compare})"
    else:
        span = f"{notes.since}..{notes.until}" if notes.since else f"up to {notes.until}"
    lines.append(f"Changes {span}.")
    lines.append("")
    if not notes.changes:
        lines += ["No changes.", ""]
    for section in notes.sections:
        lines += [f"{h}# {section.title}", ""]
        for change in section.changes:
            scope = f"**{_md_escape(change.scope)}:** " if change.scope else ""
            kind = f"{change.type}: " if section.key == "breaking" else ""
            desc = _md_escape(change.description)
            lines.append(f"- {kind}{scope}{desc} ({_sha_ref(change, notes.link_base)})")
            if section.key == "breaking" and change.breaking_note:
                lines.append(f"  {_md_escape(change.breaking_note)}")
        lines.append("")
    if notes.contributors:
        lines += [f"{h}# Contributors", ""]
        for person in notes.contributors:
            plural = "s" if person.commits != 1 else ""
            lines.append(f"- {_md_escape(person.name)} ({person.commits} change{plural})")
        lines.append("")
    proposal = notes.proposal
    lines.append(f"Proposed next version: **{proposal.version}** ({proposal.reason}).")
    return "\n".join(lines).rstrip() + "\n"


def to_json(notes: Notes) -> dict[str, Any]:
    """The notes as a JSON-ready dict (without the ``schema`` key, which the writer adds)."""

    def change(c: Change) -> dict[str, Any]:
        return {
            "sha": c.sha,
            "short": c.short,
            "type": c.type,
            "scope": c.scope,
            "description": c.description,
            "breaking": c.breaking,
            "breaking_note": c.breaking_note,
            "author": c.author,
            "url": f"{notes.link_base}/commit/{c.sha}" if notes.link_base else None,
        }

    return {
        "title": notes.title,
        "since": notes.since,
        "until": notes.until,
        "sections": [
            {"key": s.key, "title": s.title, "changes": [change(c) for c in s.changes]}
            for s in notes.sections
        ],
        "contributors": [
            {"name": p.name, "email": p.email, "commits": p.commits} for p in notes.contributors
        ],
        "excluded": notes.excluded,
        "proposal": {
            "previous": notes.proposal.previous,
            "bump": notes.proposal.bump.value,
            "version": notes.proposal.version,
            "reason": notes.proposal.reason,
        },
    }
