"""Unit tests of ci.release.publish: repository resolution, simple pages, planning, SHA256SUMS."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import socket
import sys
from pathlib import Path

import pytest

from ci.core.errors import DeployError, PreflightError, UsageError
from ci.core.http import MAX_BODY, ApiError, Retry, UrllibClient
from ci.release import package, publish
from ci.testing.fakes import FakeRunner, FixedClock

NO_WAIT = Retry(attempts=2, sleep=lambda _: None)


def artifact(name: str, sha: str, kind: str = "wheel") -> package.Artifact:
    return package.Artifact(name=name, kind=kind, size=3, sha256=sha)


def test_repository_precedence_flag_env_config():
    env = {"CI_PUBLISH_REPOSITORY_URL": "http://env.example/"}
    flag = publish.resolve_repository(
        url="http://flag.example/",
        name=None,
        index_url=None,
        env=env,
        config_url="http://cfg.example/",
    )
    assert flag.upload_url == "http://flag.example/"
    assert flag.simple_url == "http://flag.example/simple/"
    from_env = publish.resolve_repository(
        url=None, name=None, index_url=None, env=env, config_url="http://cfg.example/"
    )
    assert from_env.upload_url == "http://env.example/"
    from_cfg = publish.resolve_repository(
        url=None, name=None, index_url=None, env={}, config_url="http://cfg.example/"
    )
    assert from_cfg.upload_url == "http://cfg.example/"


def test_no_repository_is_a_usage_error_naming_every_way_to_set_one():
    with pytest.raises(UsageError, match="CI_PUBLISH_REPOSITORY_URL"):
        publish.resolve_repository(url=None, name=None, index_url=None, env={}, config_url=None)
    with pytest.raises(UsageError, match="not an http"):
        publish.resolve_repository(
            url="ftp://x/", name=None, index_url=None, env={}, config_url=None
        )


def test_named_repository_from_pypirc(tmp_path):
    rc = tmp_path / ".pypirc"
    rc.write_text(
        "[internal]\nrepository = https://idx.example/legacy/\nusername = bot\npassword = pw123\n"
    )
    repo = publish.resolve_repository(
        url=None, name="internal", index_url=None, env={}, config_url=None, pypirc=rc
    )
    assert repo.twine_target() == ["--repository", "internal"]
    assert repo.simple_url == "https://idx.example/simple/"
    assert (repo.username, repo.password) == ("bot", "pw123")
    assert "pw123" not in repr(repo)
    with pytest.raises(UsageError, match="not a section"):
        publish.resolve_repository(
            url=None, name="nope", index_url=None, env={}, config_url=None, pypirc=rc
        )


def test_simple_urls_and_pypi_detection():
    assert publish.simple_url_for("https://upload.pypi.org/legacy/") == "https://pypi.org/simple/"
    assert (
        publish.simple_url_for("https://test.pypi.org/legacy/") == "https://test.pypi.org/simple/"
    )
    assert publish.simple_url_for("http://127.0.0.1:8080") == "http://127.0.0.1:8080/simple/"
    assert publish.simple_url_for("https://idx.example/x/legacy") == "https://idx.example/x/simple/"
    pypi = publish.resolve_repository(
        url="https://upload.pypi.org/legacy/", name=None, index_url=None, env={}, config_url=None
    )
    assert pypi.is_pypi
    assert publish.safe_url("https://u:secret@idx.example:8443/p/") == "https://idx.example:8443/p/"


def test_simple_page_parsing_takes_sha256_fragments():
    page = (
        '<html><body><a href="../../packages/demo-1.0.tar.gz#sha256='
        + "a" * 64
        + '">demo-1.0.tar.gz</a>'
        '<a href="https://files.example/demo-1.0-py3-none-any.whl#md5=00">demo-1.0-py3-none-any.whl</a>'
        "</body></html>"
    )
    files = publish.parse_simple_page(page, "http://idx.example/simple/demo/")
    sdist = files["demo-1.0.tar.gz"]
    assert sdist.url == "http://idx.example/packages/demo-1.0.tar.gz"
    assert sdist.sha256 == "a" * 64
    assert files["demo-1.0-py3-none-any.whl"].sha256 is None


def test_plan_uploads_new_skips_same_and_refuses_other_bytes():
    wheel, sdist = (
        artifact("d-1.0-py3-none-any.whl", "a" * 64),
        artifact("d-1.0.tar.gz", "b" * 64, "sdist"),
    )
    index = {
        "d-1.0-py3-none-any.whl": publish.IndexFile(
            filename="d-1.0-py3-none-any.whl", url="u", sha256="a" * 64
        )
    }
    todo = publish.plan([wheel, sdist], index)
    assert todo.upload == (sdist,)
    assert todo.present == (wheel,)
    assert todo.conflicts == ()
    index["d-1.0.tar.gz"] = publish.IndexFile(filename="d-1.0.tar.gz", url="u", sha256="c" * 64)
    assert publish.plan([wheel, sdist], index).conflicts == ((sdist, "c" * 64),)


def write_dist(folder: Path) -> package.Manifest:
    folder.mkdir()
    assets = package.assets_dir(folder)
    assets.mkdir()
    files = {
        "d-1.0-py3-none-any.whl": b"whl",
        "d-1.0.tar.gz": b"sdist",
        "d-1.0-bundle.tar.gz": b"bundle",
    }
    kinds = ["wheel", "sdist", "bundle"]
    artifacts = []
    for (name, data), kind in zip(files.items(), kinds, strict=True):
        where = folder if kind != "bundle" else assets
        (where / name).write_bytes(data)
        artifacts.append(
            package.Artifact(
                name=name, kind=kind, size=len(data), sha256=package.sha256_file(where / name)
            )
        )
    info = package.BuildInfo(
        name="d",
        version="1.0",
        commit=None,
        branch=None,
        tag=None,
        dirty=None,
        uv_lock_sha256=None,
        python="3.12.1",
        source_date_epoch=0,
        build_time="",
    )
    manifest = package.Manifest(
        name="d", version="1.0", build_id="0001", build=info, artifacts=tuple(artifacts)
    )
    package.write_manifest(assets, manifest)
    (assets / "SHA256SUMS").write_text(package.render_sums(artifacts))
    return manifest


def test_sums_are_verified_before_upload(tmp_path):
    dist = tmp_path / "dist"
    manifest = write_dist(dist)
    publish.verify_sums(dist, manifest)  # intact: no error
    assert [a.kind for a in publish.uploads(manifest)] == ["wheel", "sdist"]
    (dist / "d-1.0.tar.gz").write_bytes(b"tampered")
    with pytest.raises(DeployError, match="does not match SHA256SUMS"):
        publish.verify_sums(dist, manifest)
    (dist.with_name("dist-assets") / "SHA256SUMS").unlink()
    with pytest.raises(DeployError, match="SHA256SUMS is missing"):
        publish.verify_sums(dist, manifest)
    assert json.loads((dist.with_name("dist-assets") / "manifest.json").read_text())["schema"] == 1


def test_pypi_partial_upload_says_to_yank_exact_files(tmp_path):
    manifest = write_dist(tmp_path / "dist")
    repo = publish.resolve_repository(
        url="https://upload.pypi.org/legacy/", name=None, index_url=None, env={}, config_url=None
    )
    removed, left, note = publish.remove_uploaded(
        UrllibClient(), repo, manifest, ["d-1.0-py3-none-any.whl"], {}
    )
    assert removed == ()
    assert left == ("d-1.0-py3-none-any.whl",)
    assert "yank d 1.0" in note
    assert "d-1.0-py3-none-any.whl" in note


def test_twine_failure_is_one_line_without_url_credentials(tmp_path):
    url = "https://bot:hunter22@idx.example/legacy/?token=qtok-22"
    repo = publish.resolve_repository(url=url, name=None, index_url=None, env={}, config_url=None)
    runner = FakeRunner(
        script={
            (sys.executable, "-m", "twine"): (
                1,
                "Uploading d-1.0.tar.gz\nERROR    HTTPError: 403 Forbidden from " + url + "\n",
                "",
            )
        }
    )
    with pytest.raises(DeployError) as caught:
        publish._upload(runner, repo, tmp_path / "d-1.0.tar.gz")
    message = str(caught.value)
    assert message == (
        "uploading d-1.0.tar.gz to https://idx.example/legacy/ failed: "
        "HTTPError: 403 Forbidden from https://idx.example/legacy/"
    )
    assert runner.calls[0][3:6] == ("--no-color", "upload", "--non-interactive")
    assert "22" not in message


def test_sums_of_bytes_that_are_not_utf8_fail_the_verification(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    manifest = write_dist(dist)
    (package.assets_dir(dist) / package.SUMS).write_bytes(b"\xff\xfe\n")
    with pytest.raises(DeployError, match="line 1 is not"):
        publish.verify_sums(dist, manifest)


def test_publishing_to_a_dead_index_records_the_attempt(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    dist = tmp_path / "dist"
    write_dist(dist)
    repo = publish.resolve_repository(url=url, name=None, index_url=None, env={}, config_url=None)
    clock = FixedClock(now_=dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC))
    with pytest.raises(ApiError, match="reading the index at .* unreachable") as caught:
        publish.publish(
            dist, repo, runner=FakeRunner(), clock=clock, http=UrllibClient(), retry=NO_WAIT
        )
    assert caught.value.exit_code == 6  # as every HTTP outage (it was 5 before)
    doc = json.loads((package.assets_dir(dist) / "manifest.json").read_text())
    attempt = doc["publish"]
    assert attempt["status"] == "failed"
    assert attempt["repository"] == url
    assert attempt["at"] == "2026-05-01T12:00:00+00:00"
    assert attempt["error"] == str(caught.value)
    assert attempt["uploaded"] == []


def test_a_dry_run_against_a_dead_index_writes_nothing(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist = tmp_path / "dist"
    write_dist(dist)
    before = (package.assets_dir(dist) / "manifest.json").read_bytes()
    repo = publish.resolve_repository(
        url=f"http://127.0.0.1:{port}/", name=None, index_url=None, env={}, config_url=None
    )
    clock = FixedClock(now_=dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC))
    with pytest.raises(ApiError):
        publish.publish(
            dist,
            repo,
            runner=FakeRunner(),
            clock=clock,
            http=UrllibClient(),
            retry=NO_WAIT,
            dry_run=True,
        )
    assert (package.assets_dir(dist) / "manifest.json").read_bytes() == before


def test_credentials_go_to_the_index_host_only(httpserver) -> None:
    httpserver.expect_request("/f.whl").respond_with_data(b"wheel bytes")
    here = httpserver.url_for("/")
    repo = publish.resolve_repository(
        url=f"{here}legacy/", name=None, index_url=None, env={}, config_url=None
    )
    repo = dataclasses.replace(repo, username="bot", password="pw-not-for-a-cdn")
    # another host name for the same server
    elsewhere = (
        here.replace("localhost", "127.0.0.1")
        if "localhost" in here
        else here.replace("127.0.0.1", "localhost")
    )
    assert elsewhere != here
    for url in (f"{here}f.whl", f"{elsewhere}f.whl"):
        entry = publish.IndexFile(filename="f.whl", url=url, sha256=None)
        assert (
            publish.remote_sha256(UrllibClient(), repo, entry)
            == hashlib.sha256(b"wheel bytes").hexdigest()
        )
    sent = [req.headers.get("Authorization") for req, _ in httpserver.log]
    assert sent[0] is not None and sent[0].startswith("Basic ")
    assert sent[1] is None


def test_recorded_index_urls_carry_no_credentials_of_any_form(httpserver, tmp_path: Path) -> None:
    """manifest.json is a public release asset: no user:password, query or fragment in it."""
    dist = tmp_path / "dist"
    manifest = write_dist(dist)
    sums = {a.name: a.sha256 for a in manifest.artifacts}
    base = httpserver.url_for("/").removeprefix("http://")
    links = "".join(
        f'<a href="http://cdn:pw-0451@{base}files/{name}?sig=0451#sha256={sums[name]}">{name}</a>'  # pragma: allowlist secret
        for name in ("d-1.0-py3-none-any.whl", "d-1.0.tar.gz")
    )
    httpserver.expect_oneshot_request("/simple/d/").respond_with_data("", status=404)
    httpserver.expect_request("/simple/d/").respond_with_data(links, content_type="text/html")
    url = f"http://{base}legacy/?token=qtok-0451#frag-0451"
    repo = publish.resolve_repository(url=url, name=None, index_url=None, env={}, config_url=None)
    twine = FakeRunner(script={(sys.executable, "-m", "twine"): (0, "", "")})
    clock = FixedClock(now_=dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC))
    _, outcome = publish.publish(
        dist, repo, runner=twine, clock=clock, http=UrllibClient(), retry=NO_WAIT
    )
    assert outcome
    assert twine.calls[0][-2] == url  # twine itself is handed the whole URL
    assert publish.render(repo, outcome).startswith(f"published to http://{base}legacy/: ")
    text = (package.assets_dir(dist) / "manifest.json").read_text()
    doc = json.loads(text)
    assert doc["publish"]["repository"] == f"http://{base}legacy/"
    published = {a["name"]: a["published"] for a in doc["artifacts"] if a.get("published")}
    assert published == {
        "d-1.0-py3-none-any.whl": [f"http://{base}files/d-1.0-py3-none-any.whl"],
        "d-1.0.tar.gz": [f"http://{base}files/d-1.0.tar.gz"],
    }
    assert "0451" not in text


def test_a_failed_attempt_records_the_index_url_without_its_query(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist = tmp_path / "dist"
    write_dist(dist)
    url = f"https://u:p-0451@127.0.0.1:{port}/legacy/?token=qtok-0451"  # pragma: allowlist secret
    repo = publish.resolve_repository(url=url, name=None, index_url=None, env={}, config_url=None)
    clock = FixedClock(now_=dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC))
    with pytest.raises(ApiError):
        publish.publish(
            dist, repo, runner=FakeRunner(), clock=clock, http=UrllibClient(), retry=NO_WAIT
        )
    text = (package.assets_dir(dist) / "manifest.json").read_text()
    assert json.loads(text)["publish"]["repository"] == f"https://127.0.0.1:{port}/legacy/"
    assert "0451" not in text


def test_a_download_to_verify_is_read_up_to_the_artifact_size(httpserver) -> None:
    """Index answers are capped at MAX_BODY; a download may be as large as the file we sent."""
    wheel = b"w" * (MAX_BODY + 10)
    httpserver.expect_request("/f.whl").respond_with_data(wheel)
    here = httpserver.url_for("/")
    repo = publish.resolve_repository(
        url=f"{here}legacy/", name=None, index_url=None, env={}, config_url=None
    )
    entry = publish.IndexFile(filename="f.whl", url=f"{here}f.whl", sha256=None)
    sha = publish.remote_sha256(UrllibClient(), repo, entry, size=len(wheel))
    assert sha == hashlib.sha256(wheel).hexdigest()
    with pytest.raises(ApiError, match="over the limit") as caught:
        publish.remote_sha256(UrllibClient(), repo, entry, size=len(wheel) - 1)
    assert caught.value.exit_code == 6


def test_pypi_refuses_a_plain_linux_wheel_before_anything_is_sent(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    manifest = write_dist(dist)
    plain = "d-1.0-cp312-cp312-linux_x86_64.whl"
    (dist / "d-1.0-py3-none-any.whl").rename(dist / plain)
    wheel = dataclasses.replace(manifest.artifacts[0], name=plain)
    manifest = dataclasses.replace(manifest, artifacts=(wheel, *manifest.artifacts[1:]))
    package.write_manifest(package.assets_dir(dist), manifest)
    sums = package.render_sums(manifest.artifacts)
    (package.assets_dir(dist) / "SHA256SUMS").write_text(sums, encoding="utf-8")
    assert package.plain_linux_wheels([plain, "d-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"]) == [
        plain
    ]

    class NoHttp:
        def request(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("nothing may be sent")

    pypi = publish.resolve_repository(
        url="https://upload.pypi.org/legacy/", name=None, index_url=None, env={}, config_url=None
    )
    with pytest.raises(PreflightError, match=rf"refuses wheels tagged plain linux \({plain}\)"):
        publish.publish(
            dist, pypi, runner=FakeRunner(), clock=FixedClock(), http=NoHttp(), retry=NO_WAIT
        )
