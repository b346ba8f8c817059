"""Commit statuses, required checks, run notifications and branch protection on GitHub."""

from __future__ import annotations

import enum
import json
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci.core.config import Mode
from ci.core.errors import UsageError
from ci.core.gate import GateResult, GateStatus, context_name
from ci.core.http import ApiError, Failure, HttpClient, Retry
from ci.github.client import DEFAULT_API_URL, GitHubClient, api_url_from, token_from

DESCRIPTION_MAX = 140  # GitHub rejects longer status descriptions
NOTIFY_TEXT_MAX = 1900  # Discord refuses messages over 2000 characters
PER_PAGE = 100
DEFAULT_SERVER_URL = "https://github.com"


@dataclass(frozen=True, slots=True, kw_only=True)
class GitHubEnv:
    """Where the run happens, read from the ``GITHUB_*`` variables Actions sets."""

    api_url: str = DEFAULT_API_URL
    server_url: str = DEFAULT_SERVER_URL
    repository: str = ""
    sha: str = ""
    run_id: str = ""
    actions: bool = False
    step_summary: str = ""
    token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubEnv:
        """Read the variables (defaults for github.com when unset)."""
        return cls(
            api_url=api_url_from(env),
            server_url=(env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/"),
            repository=env.get("GITHUB_REPOSITORY", ""),
            sha=_head_sha(env) or env.get("GITHUB_SHA", ""),
            run_id=env.get("GITHUB_RUN_ID", ""),
            actions=env.get("GITHUB_ACTIONS") == "true",
            step_summary=env.get("GITHUB_STEP_SUMMARY", ""),
            token=token_from(env),
        )

    @property
    def run_url(self) -> str | None:
        """The link to this workflow run, or None outside one."""
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"

    def missing_for_statuses(self, sha: str = "") -> str | None:
        """Why statuses cannot be posted (a one-line notice), or None when they can."""
        if not self.token:
            return "GITHUB_TOKEN (or GH_TOKEN) is not set; commit statuses are not posted"
        wanted = (("GITHUB_REPOSITORY", self.repository), ("GITHUB_SHA", sha or self.sha))
        absent = [name for name, value in wanted if not value]
        if absent:
            return f"{' and '.join(absent)} not set; commit statuses are not posted"
        return None


def _head_sha(env: Mapping[str, str]) -> str:
    """For pull requests, the head commit: GITHUB_SHA is a merge commit the PR never shows."""
    if env.get("GITHUB_EVENT_NAME") not in {"pull_request", "pull_request_target"}:
        return ""
    try:
        event = json.loads(Path(env.get("GITHUB_EVENT_PATH", "")).read_text(encoding="utf-8"))
        return str(event["pull_request"]["head"]["sha"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""  # fall back to GITHUB_SHA


def state_of(status: GateStatus) -> str:
    """The commit status state for a gate's outcome."""
    if status is GateStatus.FAILED:
        return "failure"
    if status is GateStatus.ERROR:
        return "error"
    return "success"


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """One commit status to post."""

    context: str
    state: str
    description: str
    target_url: str | None = None

    def payload(self) -> dict[str, str]:
        """The JSON body of ``POST /repos/{repo}/statuses/{sha}``."""
        body = {"state": self.state, "context": self.context, "description": self.description}
        if self.target_url:
            body["target_url"] = self.target_url
        return body


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def update_for(result: GateResult, default_python: str, run_url: str | None) -> StatusUpdate:
    """The final status of one gate result."""
    words = [result.status.value]
    if result.mode is Mode.ADVISORY:
        words.insert(0, "advisory:")
    text = " ".join(words) + (f": {result.summary}" if result.summary else "")
    text += f" ({result.duration_s:.1f} s)"
    return StatusUpdate(
        context=context_name(result.gate, result.variant, default_python),
        state=state_of(result.status),
        description=shorten(text, DESCRIPTION_MAX),
        target_url=run_url,
    )


class GitHub:
    """The status and protection endpoints, through the one GitHub client."""

    def __init__(self, env: GitHubEnv, client: HttpClient, retry: Retry | None = None) -> None:
        """Talk to ``env.api_url`` about ``env.repository`` through ``client``."""
        self.env = env
        self.api = GitHubClient(
            client,
            api_url=env.api_url,
            repository=env.repository,
            token=env.token,
            retry=retry,
        )

    def post_status(self, sha: str, update: StatusUpdate) -> None:
        """Create a commit status (repeated on server trouble: a duplicate is harmless)."""
        url = self.api.repo_url("statuses", sha)
        what = f"posting status {update.context}"
        self.api.json("POST", url, payload=update.payload(), what=what, repeat=True)

    def _listing(self, sha: str, endpoint: str, key: str, what: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, 11):
            url = self.api.repo_url("commits", sha, endpoint, per_page=PER_PAGE, page=page)
            data = self.api.json("GET", url, what=what) or {}
            if not isinstance(data, dict):
                msg = f"{what}: GitHub answered with {type(data).__name__}, not an object"
                raise ApiError(msg, kind=Failure.MALFORMED)
            batch = [item for item in data.get(key, []) if isinstance(item, dict)]
            items += batch
            if len(batch) < PER_PAGE:
                break
        return items

    def combined_status(self, sha: str) -> list[dict[str, Any]]:
        """Every status of the commit (latest per context), across pages."""
        return self._listing(sha, "status", "statuses", "reading the combined status")

    def check_runs(self, sha: str) -> list[dict[str, Any]]:
        """Every check run of the commit, across pages."""
        return self._listing(sha, "check-runs", "check_runs", "reading the check runs")

    def put_protection(self, branch: str, payload: Mapping[str, Any]) -> None:
        """Replace the protection of ``branch``."""
        url = self.api.repo_url("branches", urllib.parse.quote(branch, safe=""), "protection")
        self.api.json("PUT", url, payload=dict(payload), what=f"protecting branch {branch}")


def post_updates(
    env: GitHubEnv,
    updates: Sequence[StatusUpdate],
    client: HttpClient,
    *,
    retry: Retry | None = None,
    sha: str = "",
    say: Callable[[str], None] = print,
) -> int:
    """Post ``updates`` best-effort: a notice without a token, a warning on API errors."""
    reason = env.missing_for_statuses(sha)
    if reason is not None:
        say(f"notice: {reason}")
        return 0
    try:
        github = GitHub(env, client, retry)
    except UsageError as exc:
        say(f"notice: {exc}; commit statuses are not posted")
        return 0
    posted = 0
    for index, update in enumerate(updates):
        try:
            github.post_status(sha or env.sha, update)
        except ApiError as exc:
            say(f"warning: {exc}; the gate's result is unchanged")
            if exc.exhausted and index + 1 < len(updates):
                say(f"warning: {len(updates) - index - 1} more status(es) not posted")
                break  # the API is down: each further status would only wait through retries
        else:
            posted += 1
    return posted


class CheckState(enum.StrEnum):
    """Where a required context stands."""

    SUCCESS = "success"
    PENDING = "pending"
    FAILURE = "failure"
    MISSING = "missing"


_RANK = {CheckState.SUCCESS: 0, CheckState.PENDING: 1, CheckState.FAILURE: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """One status or check run seen on the commit."""

    context: str
    state: CheckState
    detail: str = ""
    source: str = "status"


def observed(
    statuses: Iterable[Mapping[str, Any]], runs: Iterable[Mapping[str, Any]]
) -> list[Observed]:
    """Statuses and check runs as one list of contexts and states."""
    seen = []
    for item in statuses:
        raw = str(item.get("state", ""))
        state = {"success": CheckState.SUCCESS, "pending": CheckState.PENDING}.get(
            raw, CheckState.FAILURE
        )
        seen.append(
            Observed(
                context=str(item.get("context", "")),
                state=state,
                detail=f"{raw}: {item.get('description') or ''}".rstrip(": "),
            )
        )
    for run in runs:
        conclusion = str(run.get("conclusion") or "")
        if run.get("status") != "completed":
            state, detail = CheckState.PENDING, str(run.get("status") or "queued")
        elif conclusion in {"success", "neutral", "skipped"}:
            state, detail = CheckState.SUCCESS, conclusion
        else:
            state, detail = CheckState.FAILURE, conclusion or "failed"
        seen.append(
            Observed(
                context=str(run.get("name", "")), state=state, detail=detail, source="check run"
            )
        )
    return seen


@dataclass(frozen=True, slots=True, kw_only=True)
class RequireVerdict:
    """Each required context and its state; ``bool`` is True when all succeeded."""

    states: Mapping[str, Observed]

    def __bool__(self) -> bool:
        """True when every required context succeeded."""
        return all(o.state is CheckState.SUCCESS for o in self.states.values())

    @property
    def failed(self) -> bool:
        """True when some required context failed: waiting longer cannot help."""
        return any(o.state is CheckState.FAILURE for o in self.states.values())

    def problems(self) -> list[str]:
        """One line per required context that is not a success."""
        return [
            f"{context}: {o.state.value}" + (f" ({o.detail})" if o.detail else "")
            for context, o in self.states.items()
            if o.state is not CheckState.SUCCESS
        ]


def judge_required(required: Sequence[str], seen: Iterable[Observed]) -> RequireVerdict:
    """The worst state per required context (a context with no status is missing)."""
    best: dict[str, Observed] = {}
    for item in seen:
        if item.context not in required:
            continue
        current = best.get(item.context)
        if current is None or _RANK[item.state] > _RANK[current.state]:
            best[item.context] = item
    states = {
        context: best.get(context, Observed(context=context, state=CheckState.MISSING))
        for context in required
    }
    return RequireVerdict(states=states)


def wait_for(
    required: Sequence[str],
    fetch: Callable[[], list[Observed]],
    *,
    wait_s: float,
    interval_s: float,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RequireVerdict:
    """Poll until every required context succeeded, one failed, or ``wait_s`` ran out."""
    deadline = monotonic() + wait_s
    while True:
        verdict = judge_required(required, fetch())
        remaining = deadline - monotonic()
        if verdict or verdict.failed or remaining <= 0:
            return verdict
        sleep(min(interval_s, remaining))


def notify_payload(
    results: Sequence[GateResult], *, repository: str, sha: str, run_url: str | None
) -> dict[str, str] | None:
    """A Slack- and Discord-compatible message naming the failing gates, or None if none failed."""
    failing = [r for r in results if r.blocking]
    if not failing:
        return None
    where = f"{repository}@{sha[:7]}" if repository and sha else repository or "this repository"
    lines = [f"CI failed for {where}: {len(failing)} gate(s) failing"]
    lines += [f"- {r.id}: {r.status.value}: {r.summary}" for r in failing]
    if run_url:
        lines.append(f"Run: {run_url}")
    text = shorten_lines("\n".join(lines), NOTIFY_TEXT_MAX)
    return {"text": text, "content": text}  # Slack reads "text", Discord "content"


def shorten_lines(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping line breaks."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def protection_payload(contexts: Sequence[str]) -> dict[str, Any]:
    """The ``PUT /branches/{branch}/protection`` body: required checks, strict, no force-push."""
    return {
        "required_status_checks": {
            "strict": True,
            "checks": [{"context": context} for context in contexts],
        },
        "enforce_admins": True,
        "required_pull_request_reviews": None,
        "restrictions": None,
        "allow_force_pushes": False,
        "allow_deletions": False,
    }
