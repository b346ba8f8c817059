"""Reading the commit history and the release tags through the runner, and the notes they make."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ci.core.errors import PreflightError, UsageError
from ci.core.runner import Runner
from ci.release.notes import Commit, Notes, build, link_base, version_warning
from ci.release.version import DEFAULT_FORMAT, TagFormat

FIELDS = 5  # sha, parents, author name, author email, raw message
# NUL separates the fields and (with -z) the commits: a commit message cannot contain NUL.
LOG_FORMAT = "%H%x00%P%x00%an%x00%ae%x00%B"


def _git(runner: Runner, repo: Path, *args: str) -> str:
    done = runner.run(["git", *args], cwd=repo, env={"GIT_PAGER": "cat", "LC_ALL": "C"})
    if not done:
        detail = (done.stderr or done.stdout).strip().splitlines()
        msg = f"git {' '.join(args[:2])} failed: {detail[0] if detail else 'no output'}"
        raise UsageError(msg)
    return done.stdout


def resolve(runner: Runner, repo: Path, ref: str) -> str:
    """The commit sha ``ref`` names; UsageError naming the ref when git does not know it."""
    done = runner.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=repo)
    if not done or not done.stdout.strip():
        msg = f"{ref!r} is not a commit, tag or branch in {repo}; check the name (git tag --list)"
        raise UsageError(msg)
    return done.stdout.strip()


def ensure_repo(runner: Runner, repo: Path) -> None:
    """Exit 3 with the fix when ``repo`` is not inside a git work tree."""
    done = runner.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=repo)
    if not done or done.stdout.strip() != "true":
        msg = f"{repo} is not a git repository: run this from the project's clone"
        raise PreflightError(msg)


def ensure_full_history(runner: Runner, repo: Path) -> None:
    """Exit 3 in a shallow clone: its notes would miss commits and tags."""
    done = runner.run(["git", "rev-parse", "--is-shallow-repository"], cwd=repo)
    if done and done.stdout.strip() == "true":
        msg = (
            f"{repo} is a shallow clone, so the notes would miss commits and tags: "
            "use `fetch-depth: 0` with actions/checkout (or run `git fetch --unshallow --tags`)"
        )
        raise PreflightError(msg)


def version_tags(
    runner: Runner, repo: Path, *, merged: str | None = None, tag_format: TagFormat | None = None
) -> list[str]:
    """The release tags (of ``tag_format``), highest first (only ancestors of ``merged``)."""
    fmt = tag_format or DEFAULT_FORMAT
    args = ["tag", "--list", fmt.git_pattern()]
    if merged:
        args += ["--merged", merged]
    return _by_version(_git(runner, repo, *args).split(), fmt)


def _by_version(tags: list[str], fmt: TagFormat) -> list[str]:
    versions = {t: fmt.version_of(t) for t in tags}
    return sorted(
        (t for t, v in versions.items() if v is not None),
        key=lambda t: (versions[t], t),
        reverse=True,
    )


def tags_at(
    runner: Runner, repo: Path, ref: str, *, tag_format: TagFormat | None = None
) -> list[str]:
    """The release tags (of ``tag_format``) pointing at ``ref``, highest version first."""
    fmt = tag_format or DEFAULT_FORMAT
    out = _git(runner, repo, "tag", "--list", fmt.git_pattern(), "--points-at", ref)
    return _by_version(out.split(), fmt)


def previous_tag(
    runner: Runner, repo: Path, until: str, *, tag_format: TagFormat | None = None
) -> str | None:
    """The highest release tag reachable from ``until`` that is not on ``until`` itself."""
    target = resolve(runner, repo, until)
    for tag in version_tags(runner, repo, merged=target, tag_format=tag_format):
        if resolve(runner, repo, tag) != target:
            return tag
    return None


def commits(runner: Runner, repo: Path, since: str | None, until: str) -> list[Commit]:
    """The commits of ``since..until`` (all up to ``until`` without ``since``), oldest first."""
    span = f"{since}..{until}" if since else until
    out = _git(runner, repo, "log", "-z", "--reverse", f"--format={LOG_FORMAT}", span, "--")
    return parse_log(out)


def parse_log(out: str) -> list[Commit]:
    """Parse ``git log -z --format=LOG_FORMAT`` output into commits."""
    parts = out.split("\0")
    if parts and parts[-1].strip() == "":
        parts = parts[:-1]
    if len(parts) % FIELDS:
        msg = "git log printed output in an unexpected shape; is git older than 2.0?"
        raise UsageError(msg)
    found = []
    for i in range(0, len(parts), FIELDS):
        sha, parents, author, email, message = parts[i : i + FIELDS]
        found.append(
            Commit(
                sha=sha.strip(),
                parents=tuple(parents.split()),
                author=author,
                email=email,
                message=message,
            )
        )
    return found


def gather_notes(
    runner: Runner,
    repo: Path,
    env: Mapping[str, str],
    *,
    since: str | None = None,
    until: str = "HEAD",
    tag_format: TagFormat | None = None,
) -> Notes:
    """Notes for ``since..until`` (since defaults to the previous release tag)."""
    ensure_repo(runner, repo)
    ensure_full_history(runner, repo)
    resolve(runner, repo, until)
    if since is not None:
        resolve(runner, repo, since)
    else:
        since = previous_tag(runner, repo, until, tag_format=tag_format)
    at = tags_at(runner, repo, until, tag_format=tag_format)
    title = at[0] if at else ("Unreleased" if until == "HEAD" else until)
    return build(
        commits(runner, repo, since, until),
        since=since,
        until=until,
        title=title,
        link=link_base(env),
        tag_format=tag_format,
    )


def tag_warning(
    runner: Runner,
    repo: Path,
    tag: str,
    env: Mapping[str, str],
    tag_format: TagFormat | None = None,
) -> str | None:
    """For ``preflight --release``: a warning when ``tag`` is lower than the notes propose."""
    found = gather_notes(runner, repo, env, until=tag, tag_format=tag_format)
    return version_warning(tag, found.proposal, tag_format)
