"""The urllib client and retry/backoff against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ci.core import redact
from ci.core.http import ApiError, Retry, UrllibClient, host_of, send


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
