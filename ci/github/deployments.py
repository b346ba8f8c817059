"""GitHub Deployments: each deploy and rollback mirrored to the repository's Environments page.

The ledger stays the truth; this is a view of it on GitHub. Each operation creates a
deployment for the environment (``POST /repos/{repo}/deployments``, no auto-merge, no
required contexts: the gates already ran), marks it ``in_progress`` with the workflow run
as ``log_url``, then ``success`` or ``failure``; on success the environment's previous
successful deployment is marked ``inactive``. An API error is a warning, never a failed
deploy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ci.core.errors import UsageError
from ci.core.http import ApiError, Failure, HttpClient, Retry
from ci.github.client import GitHubClient, token_from
from ci.github.status import DESCRIPTION_MAX, GitHubEnv, shorten

LOOKBACK = 10  # how many earlier deployments of the environment are searched for the active one


class DeploymentsAPI:
    """The deployment endpoints of one repository."""

    def __init__(self, api: GitHubClient) -> None:
        """Talk about ``api.repository`` through the one GitHub client."""
        self.api = api

    def _call(self, method: str, path: str, what: str, payload: object = None) -> Any:  # noqa: ANN401
        # statuses are appended, a duplicate is harmless; a deployment made twice on a
        # lost answer is left in_progress, and the ledger stays the truth either way
        url = f"{self.api.repo_url()}/{path}"
        return self.api.json(method, url, payload=payload, what=what, repeat=True)

    def create(self, *, environment: str, ref: str, task: str, description: str) -> int:
        """Create a deployment of ``ref`` to ``environment``; its id."""
        payload = {
            "ref": ref,
            "task": task,
            "environment": environment,
            "description": shorten(description, DESCRIPTION_MAX),
            "auto_merge": False,
            "required_contexts": [],
        }
        doc = self._call("POST", "deployments", f"creating a deployment to {environment}", payload)
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), int):
            msg = f"creating a deployment to {environment}: no deployment id in the answer"
            raise ApiError(msg, kind=Failure.MALFORMED)
        return int(doc["id"])

    def set_status(
        self,
        deployment: int,
        state: str,
        *,
        environment: str,
        description: str,
        log_url: str | None,
    ) -> None:
        """Post a status (``in_progress``, ``success``, ``failure``, ``inactive``)."""
        payload: dict[str, Any] = {
            "state": state,
            "environment": environment,
            "description": shorten(description, DESCRIPTION_MAX),
        }
        if log_url:
            payload["log_url"] = log_url
        if state == "success":
            payload["auto_inactive"] = True
        self._call("POST", f"deployments/{deployment}/statuses", f"posting {state}", payload)

    def earlier(self, environment: str) -> list[int]:
        """The ids of the environment's latest deployments, newest first."""
        url = self.api.repo_url("deployments", environment=environment, per_page=LOOKBACK)
        docs = self.api.json("GET", url, what="listing deployments") or []
        return [int(d["id"]) for d in docs if isinstance(d, dict) and isinstance(d.get("id"), int)]

    def latest_state(self, deployment: int) -> str | None:
        """The state of the deployment's newest status (None when it has none)."""
        docs = self._call(
            "GET", f"deployments/{deployment}/statuses?per_page=1", "reading a deployment status"
        )
        if isinstance(docs, list) and docs and isinstance(docs[0], dict):
            return str(docs[0].get("state"))
        return None


@dataclass(slots=True, kw_only=True)
class GitHubDeployments:
    """Mirrors one operation at a time to GitHub; every API error becomes a warning."""

    api: DeploymentsAPI
    ref: str
    log_url: str | None
    warn: Callable[[str], None]
    _current: tuple[int, str] | None = None  # (deployment id, environment)

    def started(self, action: str, env: str, version: str) -> None:
        """Create the deployment of ``version`` to ``env`` and mark it in progress."""
        self._current = None
        task = "deploy" if action == "deploy" else f"deploy:{action}"
        try:
            deployment = self.api.create(
                environment=env, ref=self.ref, task=task, description=f"{action} {version}"
            )
            self._current = (deployment, env)
            self.api.set_status(
                deployment,
                "in_progress",
                environment=env,
                description=f"{action} {version} running",
                log_url=self.log_url,
            )
        except ApiError as exc:
            self.warn(f"warning: GitHub deployment not recorded ({exc}); the ledger has it")

    def finished(self, succeeded: bool, description: str) -> None:
        """Mark the current deployment ``success`` (earlier ones ``inactive``) or ``failure``."""
        if self._current is None:
            return
        deployment, env = self._current
        self._current = None
        state = "success" if succeeded else "failure"
        try:
            self.api.set_status(
                deployment, state, environment=env, description=description, log_url=self.log_url
            )
            if succeeded:
                self._retire_previous(deployment, env)
        except ApiError as exc:
            self.warn(f"warning: GitHub deployment status not posted ({exc}); the ledger has it")

    def _retire_previous(self, deployment: int, env: str) -> None:
        # Each success retires the one before it, so at most one deployment is active.
        for earlier in self.api.earlier(env):
            if earlier == deployment:
                continue
            if self.api.latest_state(earlier) == "success":
                self.api.set_status(
                    earlier,
                    "inactive",
                    environment=env,
                    description="superseded by a later deployment",
                    log_url=self.log_url,
                )
                return


def from_env(
    env: Mapping[str, str],
    client: HttpClient,
    *,
    retry: Retry | None = None,
    warn: Callable[[str], None] = print,
) -> GitHubDeployments | None:
    """The mirror for a run on GitHub Actions with a token, else None (saying why, on GitHub)."""
    github = GitHubEnv.from_env(env)
    if not github.actions:
        return None
    token = token_from(env)
    ref = github.sha or env.get("GITHUB_REF", "")
    missing = [
        name
        for name, value in (
            ("GITHUB_TOKEN or GH_TOKEN", token),
            ("GITHUB_REPOSITORY", github.repository),
            ("GITHUB_SHA", ref),
        )
        if not value
    ]
    if missing:
        warn(f"notice: {' and '.join(missing)} not set: deployments are not mirrored to GitHub")
        return None
    try:
        api = GitHubClient(
            client, api_url=github.api_url, repository=github.repository, token=token, retry=retry
        )
    except UsageError as exc:
        warn(f"notice: {exc}: deployments are not mirrored to GitHub")
        return None
    return GitHubDeployments(api=DeploymentsAPI(api), ref=ref, log_url=github.run_url, warn=warn)
