"""Deploy state on the project's git remote: the files of the store as commits on one ref.

Every update fetches the ref, applies the change to a fresh copy of its files, commits the
result on top of the commit it read and pushes it with ``--force-with-lease=<ref>:<that
commit>``: the remote takes it only if the ref still points where it did (an exact
compare-and-swap, done by the remote under its ref lock). When another writer won, the
change is redone on the new state, a bounded number of times with jittered backoff.

The ref is ``refs/noxgate/state``: outside ``refs/heads`` and ``refs/tags`` it is no branch
or tag (no pull requests, no workflow runs, no branch protection), and neither the default
fetch refspec nor ``actions/checkout`` fetches it, so clones never drag it along.

Failures are never a silent fallback to local state: a remote that cannot be read is
exit 6, a push the remote refuses is exit 3, each naming the remote and the fix.
"""

from __future__ import annotations

import base64
import contextlib
import random
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ci.core.errors import CIError, ConfigError, PreflightError, ToolError
from ci.core.runner import Completed, Runner
from ci.deploy.store import Change
from ci.github.client import token_from

T = TypeVar("T")

REF = "refs/noxgate/state"
TRACKING = "refs/noxgate/remotes/{remote}/state"  # where this clone keeps what it fetched
ATTEMPTS = 10
MAX_BACKOFF_S = 2.0
IDENTITY = {"GIT_AUTHOR_EMAIL": "noxgate@localhost", "GIT_COMMITTER_EMAIL": "noxgate@localhost"}


class RemoteUnreachableError(ToolError):
    """The git remote could not be read (exit 6)."""


class PushRefusedError(PreflightError):
    """The git remote refused the push: no permission, a hook or a rule (exit 3)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pushed:
    """How one push attempt ended."""

    landed: bool  # the ref now points at our commit
    stale: bool = False  # another writer moved the ref first: redo the change


@dataclass(slots=True, kw_only=True)
class GitStore:
    """The state files as commits on ``refs/noxgate/state`` of the project's remote."""

    runner: Runner
    repo: Path  # the project's git repository: objects and the tracking ref live in it
    remote: str = "origin"
    lease: float = 300.0
    env: Mapping[str, str] = field(default_factory=dict)
    author: str = "noxgate"
    attempts: int = ATTEMPTS
    sleep: Callable[[float], None] = time.sleep
    _git_dir: Path | None = field(default=None, init=False)
    _url: str | None = field(default=None, init=False)
    # the commit this process last read or pushed, and its files: an update starts from it
    # (the push's compare-and-swap catches a stale start), a read reuses it if still current
    _known: tuple[str, dict[str, bytes]] | None = field(default=None, init=False)
    # the lease keeper's thread and the main thread update the same ref of the same clone
    _busy: threading.RLock = field(default_factory=threading.RLock, init=False)

    # ---- the Store interface -------------------------------------------------------------

    @property
    def label(self) -> str:
        """The remote and the ref."""
        return f"git remote {self.remote} ({self.url_shown()}) {REF}"

    @property
    def lease_s(self) -> float | None:
        """How long a lock lasts unless its holder renews it."""
        return self.lease

    def shown(self, relative: str) -> str:
        """``relative`` on the ref of the remote."""
        return f"{relative} in {REF} of git remote {self.remote}"

    @contextlib.contextmanager
    def view(self) -> Iterator[Path]:
        """A temporary folder holding the files of the remote's ref as it is now."""
        with self._busy:
            _, files = self._current()
        with tempfile.TemporaryDirectory(prefix="noxgate-state-") as tmp:
            tree = Path(tmp) / "tree"
            _write_files(tree, files)
            yield tree

    def update(self, change: Callable[[Path], Change[T]]) -> T:
        """Apply ``change`` on the remote's current files and push it (compare-and-swap)."""
        with self._busy:
            return self._update(change)

    def _update(self, change: Callable[[Path], Change[T]]) -> T:
        delay = 0.05
        for attempt in range(1, self.attempts + 1):
            # Start from what this process last saw; a stale start loses the compare-and-swap
            # below and is redone from the remote's current state.
            fresh = self._known is None
            base, files = self._current() if self._known is None else self._known
            with tempfile.TemporaryDirectory(prefix="noxgate-state-") as tmp:
                tree, index = Path(tmp) / "tree", Path(tmp) / "index"
                _write_files(tree, files)
                done = change(tree)
                after = _files(tree)
                if not done.changed or after == files:  # nothing to commit
                    if not fresh:  # a verdict on what may be stale: judge the current state
                        self._known = None
                        continue
                    return done.result
                commit = self._commit(tree, index, base or None, done.message or "update")
            if self._push(commit, base or None).landed:
                self._git("update-ref", self._tracking(), commit, check=False)  # for gc
                self._known = (commit, after)
                return done.result
            self._known = None
            if attempt < self.attempts:
                self.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, MAX_BACKOFF_S)
        msg = (
            f"{REF} on git remote {self.remote} kept changing: {self.attempts} attempts to "
            "update it lost to other writers; retry (many deploys or renewals at once?)"
        )
        raise ToolError(msg)

    def _current(self) -> tuple[str, dict[str, bytes]]:
        """The remote's head ("" when the ref does not exist yet) and its files."""
        head = self._fetch()
        if head is None:
            self._known = ("", {})
        elif self._known is None or self._known[0] != head:
            with tempfile.TemporaryDirectory(prefix="noxgate-state-") as tmp:
                tree = Path(tmp) / "tree"
                self._checkout(head, tree, Path(tmp) / "index")
                self._known = (head, _files(tree))
        return self._known

    # ---- git ---------------------------------------------------------------------------

    def url(self) -> str:
        """The remote's URL (ConfigError naming the key when there is no such remote)."""
        if self._url is None:
            done = self._git("remote", "get-url", self.remote, check=False)
            if not done:
                msg = (
                    f"[tool.ci.state] remote = {self.remote!r} is not a remote of the git "
                    f"repository {self.repo}: add it (git remote add {self.remote} URL) or "
                    "name another one"
                )
                raise ConfigError(msg)
            self._url = done.stdout.strip()
        return self._url

    def url_shown(self) -> str:
        """The remote's URL without any credentials in it."""
        try:
            raw = self.url()
        except CIError:
            return "?"
        parts = urllib.parse.urlsplit(raw)
        if parts.scheme and parts.hostname and (parts.username or parts.password):
            host = parts.hostname + (f":{parts.port}" if parts.port else "")
            return urllib.parse.urlunsplit(parts._replace(netloc=host))
        return raw

    def remote_head(self) -> str | None:
        """The commit the remote's ref points at (None: the ref does not exist yet)."""
        self.url()
        done = self._git("ls-remote", "--exit-code", self.remote, REF, check=False, remote=True)
        if done.returncode == 2:  # documented: no matching ref
            return None
        if not done:
            raise RemoteUnreachableError(self._unreachable(done))
        for line in done.stdout.splitlines():
            sha, _, name = line.partition("\t")
            if name.strip() == REF:
                return sha.strip()
        return None

    def _fetch(self) -> str | None:
        head = self.remote_head()
        if head is None or (self._known is not None and self._known[0] == head):
            return head
        if self._git("cat-file", "-e", f"{head}^{{commit}}", check=False):
            return head
        done = self._git(
            *("fetch", "--no-tags", "--quiet", "--no-write-fetch-head", self.remote),
            f"+{REF}:{self._tracking()}",
            check=False,
            remote=True,
        )
        if not done:
            raise RemoteUnreachableError(self._unreachable(done))
        return self._git("rev-parse", "--verify", "--quiet", self._tracking()).stdout.strip()

    def _checkout(self, base: str | None, tree: Path, index: Path) -> None:
        tree.mkdir(parents=True)
        if base is None:
            return
        env = {"GIT_INDEX_FILE": str(index), "GIT_WORK_TREE": str(tree)}
        self._git("read-tree", "--reset", "-u", base, env=env, cwd=tree)

    def _commit(self, tree: Path, index: Path, base: str | None, message: str) -> str:
        env = {"GIT_INDEX_FILE": str(index), "GIT_WORK_TREE": str(tree)}
        self._git("-c", "core.autocrlf=false", "add", "--all", "--force", ".", env=env, cwd=tree)
        written = self._git("write-tree", env=env).stdout.strip()
        parents = ("-p", base) if base is not None else ()
        names = {"GIT_AUTHOR_NAME": self.author, "GIT_COMMITTER_NAME": self.author, **IDENTITY}
        # A nonce: two writers making the same change in the same second must not make the
        # same commit, or the second push would find the ref "up to date": one update lost.
        nonce = f"update {uuid.uuid4()}"
        argv = ("commit-tree", "--no-gpg-sign", written, *parents, "-m", message, "-m", nonce)
        return self._git(*argv, env=names).stdout.strip()

    def _push(self, commit: str, base: str | None) -> Pushed:
        lease = f"--force-with-lease={REF}:{base or ''}"
        done = self._git(
            *("push", "--porcelain", "--no-verify", lease, self.remote, f"{commit}:{REF}"),
            check=False,
            remote=True,
        )
        if done:  # exit 0: every ref we named was updated
            return Pushed(landed=True)
        # Refused. If the ref moved meanwhile another writer won the race (stale info, or
        # the remote's own ref lock lost to a concurrent push): redo the change on top of it.
        # If it still points where we read it, the remote refused us: rights, hook or rule.
        if self.remote_head() != base:
            return Pushed(landed=False, stale=True)
        raise PushRefusedError(self._refused(_push_problem(done)))

    def _refused(self, why: str) -> str:
        self._url = None  # name the URL git used just now
        return (
            f"git remote {self.remote} ({self.url_shown()}) refused the push to {REF}: {why}; "
            "the deploy needs push access there (on GitHub Actions: `permissions: contents: "
            "write` for the job and GITHUB_TOKEN in its environment); nothing was recorded"
        )

    def _unreachable(self, done: Completed) -> str:
        self._url = None  # name the URL git used just now
        return (
            f"git remote {self.remote} ({self.url_shown()}) could not be reached to read "
            f"{REF}: {_remote_reason(done)}; check the network, the remote's URL "
            f"(`git remote get-url {self.remote}`) and access to it, or set [tool.ci.state] "
            'backend = "local" to keep state on this machine only'
        )

    def _tracking(self) -> str:
        return TRACKING.format(remote=self.remote)

    def _git(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        check: bool = True,
        remote: bool = False,
    ) -> Completed:
        extra = {"GIT_DIR": str(self.git_dir()), "GIT_TERMINAL_PROMPT": "0", **(env or {})}
        if remote:
            extra.update(self._auth())
        done = self.runner.run(["git", *args], cwd=cwd or self.repo, env=extra, timeout=120)
        if check and not done:
            msg = f"git {args[0]} failed in {self.repo}: {_last_line(done)}"
            raise ToolError(msg)
        return done

    def git_dir(self) -> Path:
        """The repository's git folder (worktrees included); ConfigError outside a repository."""
        if self._git_dir is None:
            done = self.runner.run(
                ["git", "rev-parse", "--absolute-git-dir"], cwd=self.repo, timeout=60
            )
            if not done:
                msg = (
                    f'[tool.ci.state] backend = "git" needs a git repository, and {self.repo} '
                    "is not in one: clone the project, or use the local backend"
                )
                raise ConfigError(msg)
            self._git_dir = Path(done.stdout.strip())
        return self._git_dir

    def _auth(self) -> dict[str, str]:
        """An HTTP auth header for a GitHub remote, from GITHUB_TOKEN or GH_TOKEN.

        Passed as ``GIT_CONFIG_*`` variables (never on the command line, never written to
        .git/config), the way actions/checkout sets its header.
        """
        token = token_from(self.env)  # the one token rule of every GitHub caller
        server = (self.env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
        if not token or not self.url().startswith(f"{server}/"):
            return {}
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        count = int(self.env.get("GIT_CONFIG_COUNT", "0") or 0)
        return {
            "GIT_CONFIG_COUNT": str(count + 1),
            f"GIT_CONFIG_KEY_{count}": f"http.{server}/.extraheader",
            f"GIT_CONFIG_VALUE_{count}": f"AUTHORIZATION: basic {basic}",
        }


def _write_files(tree: Path, files: Mapping[str, bytes]) -> None:
    """Lay ``files`` out under ``tree`` (a new folder)."""
    tree.mkdir(parents=True)
    for relative, data in files.items():
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _files(tree: Path) -> dict[str, bytes]:
    """Every file under ``tree`` with its bytes (the state is a few small files)."""
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in tree.rglob("*") if p.is_file()}


def _push_problem(done: Completed) -> str:
    """The remote's reason from ``push --porcelain`` (``[remote rejected] (why)``), or git's."""
    for line in done.stdout.splitlines():
        flag, _, rest = line.partition("\t")
        if flag == "!" and rest.partition("\t")[0].endswith(f":{REF}"):
            return rest.partition("\t")[2].strip()
    return _last_line(done)


# what git adds after every failed remote read, whatever the cause: it says nothing of it
_GIT_BOILERPLATE = (
    "fatal: could not read from remote repository.",
    "please make sure you have the correct access rights",
    "and the repository exists.",
)


def _remote_reason(done: Completed) -> str:
    """Why git could not read the remote: its first line that is not its usual boilerplate."""
    for line in (done.stderr + done.stdout).splitlines():
        text = line.strip()
        if text and text.lower() not in _GIT_BOILERPLATE:
            return text.removeprefix("fatal: ")
    return f"git exited {done.returncode} without saying why"


def _last_line(done: Completed) -> str:
    lines = (done.stderr + done.stdout).strip().splitlines()
    return lines[-1].strip() if lines else f"exit status {done.returncode}"
