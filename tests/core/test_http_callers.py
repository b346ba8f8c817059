"""Every HTTP caller ends the same failure with the same exit code (real servers on 127.0.0.1).

The callers: status require and protect (ci.github.status), release-record
(ci.github.releases), the deployments API (ci.github.deployments), publish's index reads
(ci.release.publish) and the OSV client (ci.security.audit). Best-effort callers (status
publish, the deployments mirror, notify) turn every failure into a warning and never fail.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ci.core.errors import CIError
from ci.core.http import EXIT_CODES, MAX_BODY, Failure, HttpClient, Retry, UrllibClient
from ci.core.http import Response as Answer
from ci.github import deployments
from ci.github import releases as ghrelease
from ci.github.client import GitHubClient
from ci.github.status import GitHub, GitHubEnv, StatusUpdate, post_updates
from ci.release import publish
from ci.security import audit
from tests.support.http_faults import closed_url, silent_server

TOKEN = "test-token-" + secrets.token_hex(8)  # made at run time: no token-shaped literal
NO_WAIT = Retry(attempts=2, sleep=lambda _: None)


class ShortTimeouts:
    """The real client with every timeout cut short, so a hung server fails in a blink."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds
        self.client = UrllibClient()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 30.0,
        limit: int = MAX_BODY,
    ) -> Answer:
        del timeout
        return self.client.request(
            method, url, headers=headers, body=body, timeout=self.seconds, limit=limit
        )


def github_client(http: HttpClient, base: str) -> GitHubClient:
    return GitHubClient(http, api_url=base, repository="o/r", token=TOKEN, retry=NO_WAIT)


def github_env(base: str) -> GitHubEnv:
    return GitHubEnv(api_url=base, repository="o/r", sha="a" * 40, token=TOKEN)


def index_repo(base: str) -> publish.Repository:
    return publish.resolve_repository(
        url=f"{base}/legacy/", name=None, index_url=None, env={}, config_url=None
    )


# caller name -> a call through it, given the HTTP client and the server's base URL
CALLERS: dict[str, Callable[[HttpClient, str], object]] = {
    "status require": lambda http, base: GitHub(github_env(base), http, NO_WAIT).combined_status(
        "a" * 40
    ),
    "protect": lambda http, base: GitHub(github_env(base), http, NO_WAIT).put_protection(
        "main", {}
    ),
    "release-record": lambda http, base: ghrelease.find_release(
        github_client(http, base), "v1.0.0"
    ),
    "deployments": lambda http, base: deployments.DeploymentsAPI(github_client(http, base)).create(
        environment="staging", ref="a" * 40, task="deploy", description="deploy 1.0"
    ),
    "publish index read": lambda http, base: publish.fetch_index(
        http, index_repo(base), "demo", NO_WAIT
    ),
    "OSV client": lambda http, base: audit.fetch_osv(base, http, retry=NO_WAIT)("PYSEC-1"),
}
# where a 404 is an answer, not a failure: no such project yet, no such advisory record
FOUND_NOTHING_ON_404 = {"publish index read", "OSV client"}


@dataclass(frozen=True)
class Outage:
    """One way a server fails, and the failure kind every caller must report."""

    kind: Failure
    status: int | None = None  # what the server answers; None: see ``network``
    network: str = ""  # "closed": nothing listens; "silent": accepts and never answers


OUTAGES = {
    "unreachable port": Outage(kind=Failure.UNREACHABLE, network="closed"),
    "timeout": Outage(kind=Failure.UNREACHABLE, network="silent"),
    "502 after retries": Outage(kind=Failure.SERVER, status=502),
    "503 after retries": Outage(kind=Failure.SERVER, status=503),
    "401": Outage(kind=Failure.AUTH, status=401),
    "403": Outage(kind=Failure.AUTH, status=403),
    "404": Outage(kind=Failure.NOT_FOUND, status=404),
}


@contextlib.contextmanager
def failing_base(outage: Outage, httpserver: HTTPServer) -> Iterator[str]:
    """The base URL of a server failing as ``outage`` says."""
    if outage.network == "closed":
        yield closed_url("").rstrip("/")
    elif outage.network == "silent":
        with silent_server() as url:
            yield url
    else:
        status = outage.status or 500

        def answer(request: Request) -> Response:
            del request
            return Response('{"message": "no"}', status=status, content_type="application/json")

        httpserver.expect_request("").respond_with_handler(answer)
        yield httpserver.url_for("").rstrip("/")


TABLE = [
    (caller, outage)
    for caller in CALLERS
    for outage in OUTAGES
    if not (outage == "404" and caller in FOUND_NOTHING_ON_404)
]


@pytest.mark.parametrize(("caller", "outage_name"), TABLE)
def test_every_caller_maps_a_failure_to_its_one_exit_code(
    caller: str, outage_name: str, httpserver: HTTPServer
) -> None:
    outage = OUTAGES[outage_name]
    with failing_base(outage, httpserver) as base, pytest.raises(CIError) as caught:
        CALLERS[caller](ShortTimeouts(), base)
    assert caught.value.exit_code == EXIT_CODES[outage.kind], str(caught.value)
    assert TOKEN not in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_the_table_is_the_architecture_table() -> None:
    # 6: could not be reached; 3: not allowed (credentials); 2: configuration (which repo)
    assert {kind: int(code) for kind, code in EXIT_CODES.items()} == {
        Failure.UNREACHABLE: 6,
        Failure.SERVER: 6,
        Failure.MALFORMED: 6,
        Failure.AUTH: 3,
        Failure.NOT_FOUND: 2,
        Failure.REFUSED: 2,
        Failure.BAD_URL: 2,
    }


@pytest.mark.parametrize("outage_name", ["unreachable port", "502 after retries", "401"])
def test_best_effort_callers_warn_and_go_on(outage_name: str, httpserver: HTTPServer) -> None:
    outage = OUTAGES[outage_name]
    said: list[str] = []
    update = StatusUpdate(context="ci/lint", state="success", description="passed")
    with failing_base(outage, httpserver) as base:
        assert (
            post_updates(
                github_env(base), [update], ShortTimeouts(), retry=NO_WAIT, say=said.append
            )
            == 0
        )
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": base,
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_SHA": "a" * 40,
            "GH_TOKEN": TOKEN,  # the mirror takes GH_TOKEN as every GitHub caller does
        }
        mirror = deployments.from_env(env, ShortTimeouts(), retry=NO_WAIT, warn=said.append)
        assert mirror is not None
        mirror.started("deploy", "staging", "1.0")
        mirror.finished(True, "deployed")
    assert len(said) == 2, said
    assert said[0].startswith("warning: posting status ci/lint failed")
    assert said[0].endswith("; the gate's result is unchanged")
    assert said[1].startswith("warning: GitHub deployment not recorded (")
    assert all(TOKEN not in line for line in said)


@pytest.mark.parametrize("announced", [True, False], ids=["with a length", "chunked"])
@pytest.mark.parametrize("caller", list(CALLERS))
def test_every_caller_fails_an_oversize_answer_at_once_with_exit_6(
    caller: str, announced: bool, httpserver: HTTPServer
) -> None:
    """A 100 MiB answer (valid JSON) to `status require` was read whole, 11 times."""
    chunk = b" " * 65536
    chunks = 1600
    produced: list[int] = []

    def body() -> Iterator[bytes]:
        yield b'{"statuses": [], "check_runs": [], "total_count": 0, "padding": "'
        for _ in range(chunks):
            produced.append(1)
            yield chunk
        yield b'"}'

    def answer(request: Request) -> Response:
        del request
        size = chunks * len(chunk) + 68
        headers = {"Content-Length": str(size)} if announced else {}
        return Response(body(), status=200, content_type="application/json", headers=headers)

    httpserver.expect_request("").respond_with_handler(answer)
    with pytest.raises(CIError) as caught:
        CALLERS[caller](ShortTimeouts(seconds=5.0), httpserver.url_for("").rstrip("/"))
    assert caught.value.exit_code == 6, str(caught.value)
    assert "over the limit of" in str(caught.value)
    assert len(httpserver.log) == 1  # not retried, not paged, not asked again
    assert len(produced) < chunks // 2  # left unread
