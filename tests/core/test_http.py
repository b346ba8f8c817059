"""The urllib client and retry/backoff against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ci.core import redact
from ci.core.http import (
    ERROR_BODY,
    MAX_BODY,
    ApiError,
    Failure,
    Retry,
    UrllibClient,
    host_of,
    send,
)
from tests.support.http_faults import closed_url, silent_server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def flaky(statuses: list[int], headers: dict[str, str] | None = None):
    answers = iter(statuses)

    def handle(request: Request) -> Response:
        del request
        return Response('{"ok": true}', status=next(answers), headers=headers or {})

    return handle


def test_send_posts_json_and_returns_the_answer(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/things", method="POST", json={"a": 1}, headers={"Content-Type": "application/json"}
    ).respond_with_json({"id": 7}, status=201)
    answer = send(UrllibClient(), "POST", httpserver.url_for("/things"), payload={"a": 1})
    assert answer.status == 201
    assert answer.json() == {"id": 7}


def test_transient_errors_are_retried_with_doubling_delays(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_handler(flaky([502, 503, 200]))
    sleeps = Sleeps()
    answer = send(UrllibClient(), "GET", httpserver.url_for("/x"), retry=Retry(sleep=sleeps))
    assert answer.ok
    assert sleeps == [0.5, 1.0]
    assert len(httpserver.log) == 3


def test_rate_limited_403_is_retried(httpserver: HTTPServer) -> None:
    limited = {"x-ratelimit-remaining": "0"}
    httpserver.expect_request("/x").respond_with_handler(flaky([403, 200], limited))
    sleeps = Sleeps()
    assert send(UrllibClient(), "GET", httpserver.url_for("/x"), retry=Retry(sleep=sleeps)).ok
    assert sleeps == [0.5]


def test_client_errors_are_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_json({"message": "Not Found"}, status=404)
    sleeps = Sleeps()
    with pytest.raises(ApiError, match=r"reading x failed \(HTTP 404: .*Not Found"):
        send(
            UrllibClient(),
            "GET",
            httpserver.url_for("/x"),
            retry=Retry(sleep=sleeps),
            what="reading x",
        )
    assert sleeps == []
    assert len(httpserver.log) == 1


def test_gives_up_after_the_last_attempt(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("down", status=500)
    sleeps = Sleeps()
    with pytest.raises(ApiError, match=r"failed after 3 attempt\(s\) \(HTTP 500: down\)"):
        send(UrllibClient(), "GET", httpserver.url_for("/x"), retry=Retry(attempts=3, sleep=sleeps))
    assert sleeps == [0.5, 1.0]


def test_unreachable_server_is_an_api_error_naming_only_the_host() -> None:
    with pytest.raises(ApiError) as caught:
        send(
            UrllibClient(),
            "POST",
            "http://127.0.0.1:9/hooks/SECRETPATH?token=abc",
            payload={},
            retry=Retry(attempts=2, sleep=Sleeps()),
        )
    assert "http://127.0.0.1 unreachable" in str(caught.value)
    assert "SECRETPATH" not in str(caught.value)
    assert caught.value.exit_code == 6


def test_non_http_urls_are_refused_without_retrying() -> None:
    sleeps = Sleeps()
    with pytest.raises(ApiError, match="not a usable http"):
        send(UrllibClient(), "GET", "file:///etc/passwd", retry=Retry(sleep=sleeps))
    assert sleeps == []


def test_error_excerpts_are_masked(httpserver: HTTPServer) -> None:
    redact.install(redact.Redactor.of(["s3cr3t-value"]))
    httpserver.expect_request("/x").respond_with_data(
        json.dumps({"message": "you sent s3cr3t-value"}), status=422
    )
    with pytest.raises(ApiError) as caught:
        send(UrllibClient(), "GET", httpserver.url_for("/x"))
    assert "s3cr3t-value" not in str(caught.value)
    assert "you sent ***" in str(caught.value)


def test_host_of_keeps_only_scheme_and_host() -> None:
    assert host_of("https://hooks.slack.com/services/T/B/XYZ") == "https://hooks.slack.com"
    assert host_of("not a url") == "(no URL)"


def test_a_server_that_never_answers_times_out_and_is_retried() -> None:
    sleeps = Sleeps()
    with silent_server() as url, pytest.raises(ApiError) as caught:
        send(
            UrllibClient(),
            "GET",
            f"{url}/x",
            retry=Retry(attempts=2, sleep=sleeps),
            timeout=0.2,
            what="reading x",
        )
    assert sleeps == [0.5]  # two tries, both timed out
    assert caught.value.kind is Failure.UNREACHABLE
    assert caught.value.exit_code == 6
    assert "reading x failed after 2 attempt(s) (http://127.0.0.1 unreachable (" in str(
        caught.value
    )
    assert "timed out" in str(caught.value)


def test_unreachable_port_is_retried_then_exit_6() -> None:
    sleeps = Sleeps()
    with pytest.raises(ApiError) as caught:
        send(UrllibClient(), "GET", closed_url("/x"), retry=Retry(attempts=3, sleep=sleeps))
    assert sleeps == [0.5, 1.0]
    assert caught.value.kind is Failure.UNREACHABLE
    assert caught.value.exhausted
    assert caught.value.exit_code == 6


def test_502_then_success_returns_the_answer(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_handler(flaky([502, 200]))
    sleeps = Sleeps()
    answer = send(UrllibClient(), "GET", httpserver.url_for("/x"), retry=Retry(sleep=sleeps))
    assert answer.json() == {"ok": True}
    assert sleeps == [0.5]


def test_5xx_after_every_retry_is_exit_6(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_json({"message": "Bad gateway"}, status=502)
    with pytest.raises(ApiError) as caught:
        send(UrllibClient(), "GET", httpserver.url_for("/x"), retry=Retry(sleep=Sleeps()))
    assert (caught.value.kind, caught.value.exit_code, caught.value.status) == (
        Failure.SERVER,
        6,
        502,
    )
    assert "failed after 4 attempt(s) (HTTP 502: Bad gateway); try again later" in str(caught.value)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_exit_3_and_not_retried(
    httpserver: HTTPServer, status: int
) -> None:
    httpserver.expect_request("/x").respond_with_json({"message": "Bad credentials"}, status)
    sleeps = Sleeps()
    with pytest.raises(ApiError) as caught:
        send(
            UrllibClient(),
            "GET",
            httpserver.url_for("/x"),
            headers={"Authorization": "Bearer s3cr3t-token-value"},
            retry=Retry(sleep=sleeps),
            hints={status: "check THE_TOKEN"},
        )
    assert (caught.value.kind, caught.value.exit_code) == (Failure.AUTH, 3)
    assert str(caught.value).endswith(f"(HTTP {status}: Bad credentials); check THE_TOKEN")
    assert "s3cr3t-token-value" not in str(caught.value)
    assert sleeps == []
    assert len(httpserver.log) == 1


def test_a_rate_limit_that_stays_is_server_trouble(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_json(
        {"message": "API rate limit exceeded"}, status=403, headers={"x-ratelimit-remaining": "0"}
    )
    with pytest.raises(ApiError) as caught:
        send(UrllibClient(), "GET", httpserver.url_for("/x"), retry=Retry(sleep=Sleeps()))
    assert (caught.value.kind, caught.value.exit_code) == (Failure.SERVER, 6)


@pytest.mark.parametrize(
    ("status", "kind", "code"), [(404, Failure.NOT_FOUND, 2), (422, Failure.REFUSED, 2)]
)
def test_client_errors_are_exit_2(
    httpserver: HTTPServer, status: int, kind: Failure, code: int
) -> None:
    httpserver.expect_request("/x").respond_with_json({"message": "no"}, status=status)
    with pytest.raises(ApiError) as caught:
        send(UrllibClient(), "GET", httpserver.url_for("/x"), retry=Retry(sleep=Sleeps()))
    assert (caught.value.kind, caught.value.exit_code) == (kind, code)


def test_a_post_is_sent_once_unless_the_caller_says_it_may_repeat(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("down", status=503)
    sleeps = Sleeps()
    with pytest.raises(ApiError, match=r"failed \(HTTP 503: down\)"):
        send(
            UrllibClient(), "POST", httpserver.url_for("/x"), payload={}, retry=Retry(sleep=sleeps)
        )
    assert len(httpserver.log) == 1
    with pytest.raises(ApiError, match=r"after 2 attempt\(s\)"):
        send(
            UrllibClient(),
            "POST",
            httpserver.url_for("/x"),
            payload={},
            retry=Retry(attempts=2, sleep=sleeps),
            repeat=True,
        )
    assert len(httpserver.log) == 3


def test_redirects_are_followed_on_the_same_host_only(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/new")}
    )
    httpserver.expect_request("/new").respond_with_json({"here": True})
    httpserver.expect_request("/away").respond_with_data(
        "", status=302, headers={"Location": "http://localhost.invalid/elsewhere"}
    )
    client = UrllibClient()
    assert client.request("GET", httpserver.url_for("/old")).json() == {"here": True}
    # another host: the 3xx comes back as the answer, and the credentials stay here
    away = client.request("GET", httpserver.url_for("/away"), headers={"Authorization": "x"})
    assert away.status == 302


def test_a_garbled_answer_is_a_failed_link_not_a_traceback() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]

        def answer_garbage() -> None:
            conn, _ = sock.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"this is not HTTP\r\n\r\n")

        worker = threading.Thread(target=answer_garbage, daemon=True)
        worker.start()
        with pytest.raises(ApiError) as caught:
            send(
                UrllibClient(),
                "GET",
                f"http://127.0.0.1:{port}/x",
                retry=Retry(attempts=1),
                timeout=5,
            )
        worker.join(timeout=5)
    assert caught.value.kind is Failure.UNREACHABLE
    assert "BadStatusLine" in str(caught.value)


CHUNK = b"x" * 65536


def endless(produced: list[int], chunks: int):
    """A handler streaming ``chunks`` chunks, chunked (no length), counting what it produced."""

    def body():
        for _ in range(chunks):
            produced.append(len(CHUNK))
            yield CHUNK

    def handle(request: Request) -> Response:
        del request
        return Response(body(), status=200, content_type="application/json")

    return handle


@pytest.mark.parametrize("announced", [True, False], ids=["with a length", "chunked"])
def test_an_answer_over_the_limit_is_exit_6_unread_and_not_retried(
    httpserver: HTTPServer, announced: bool
) -> None:
    produced: list[int] = []
    chunks = 1600  # 100 MiB
    if announced:
        size = chunks * len(CHUNK)
        headers = {"Content-Length": str(size)}
        httpserver.expect_request("/big").respond_with_response(
            Response((CHUNK for _ in range(chunks)), headers=headers)
        )
    else:
        httpserver.expect_request("/big").respond_with_handler(endless(produced, chunks))
    sleeps = Sleeps()
    with pytest.raises(ApiError) as caught:
        send(
            UrllibClient(),
            "GET",
            httpserver.url_for("/big"),
            retry=Retry(sleep=sleeps),
            what="reading the statuses",
            limit=1_000_000,
        )
    assert caught.value.kind is Failure.MALFORMED
    assert caught.value.exit_code == 6
    message = str(caught.value)
    assert message.startswith(f"reading the statuses failed: {host_of(httpserver.url_for('/'))}")
    assert ("104,857,600 bytes" if announced else "more than 1,000,000 bytes") in message
    assert len(httpserver.log) == 1  # asked once: the same server answers the same again
    assert sleeps == []
    assert sum(produced) < chunks * len(CHUNK) // 2  # the stream was left, not read to its end


def test_the_default_limit_holds_for_every_caller_of_send(httpserver: HTTPServer) -> None:
    chunks = MAX_BODY // len(CHUNK) + 1
    httpserver.expect_request("/big").respond_with_handler(endless([], chunks))
    with pytest.raises(ApiError) as caught:
        send(UrllibClient(), "GET", httpserver.url_for("/big"), retry=Retry(attempts=1))
    assert caught.value.kind is Failure.MALFORMED
    httpserver.clear()
    httpserver.expect_request("/fits").respond_with_data(b"y" * MAX_BODY)
    assert len(send(UrllibClient(), "GET", httpserver.url_for("/fits")).body) == MAX_BODY


def test_an_error_answer_is_read_only_as_far_as_its_message(httpserver: HTTPServer) -> None:
    body = json.dumps({"message": "not here", "padding": "z" * 10 * ERROR_BODY})
    httpserver.expect_request("/x").respond_with_data(body, status=404)
    answer = UrllibClient().request("GET", httpserver.url_for("/x"))
    assert answer.status == 404
    assert len(answer.body) == ERROR_BODY
