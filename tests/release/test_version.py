"""The release version (static or from a real build backend) and the tag format."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ci.core.config import load
from ci.core.errors import ConfigError, PreflightError, ToolError
from ci.core.runner import ProcessRunner
from ci.release import version
from ci.release.version import TagFormat
from tests.conftest import git
from tests.support.version_backend import dynamic_project

MakeRepo = Callable[..., Path]


@pytest.mark.parametrize(
    ("fmt", "tag", "expected"),
    [
        ("v{version}", "v1.2.3", "1.2.3"),
        ("v{version}", "v26.4", "26.4"),
        ("v{version}", "v1.0rc1", "1.0rc1"),
        ("v{version}", "1.2.3", None),
        ("v{version}", "vnext", None),
        ("{version}", "1.2.3", "1.2.3"),
        ("{version}", "2.0.post1", "2.0.post1"),
        ("{version}", "v1.2.3", None),  # PEP 440 reads the v, but the format has none
        ("{version}", "latest", None),
        ("release-{version}", "release-1.2.3", "1.2.3"),
        ("pkg/{version}-final", "pkg/1.2-final", "1.2"),
    ],
)
def test_a_tag_format_reads_only_its_own_tags(fmt: str, tag: str, expected: str | None) -> None:
    found = TagFormat(text=fmt).version_of(tag)
    assert (str(found) if found else None) == expected


def test_a_tag_format_makes_tags_and_filters() -> None:
    plain = TagFormat(text="{version}")
    assert plain.tag("26.4") == "26.4"
    assert plain.git_pattern() == "[0-9]*"
    assert plain.workflow_filter() == "[0-9]*"
    assert TagFormat().tag("1.0rc1") == "v1.0rc1"
    assert TagFormat().workflow_filter() == "v[0-9]*"


def test_the_format_is_detected_from_the_tags() -> None:
    assert version.detect_format(["1.0.0", "1.1.0", "v0.9", "latest"]).text == "{version}"
    assert version.detect_format(["v1.0.0", "1.1.0"]).text == "v{version}"  # a tie: v
    assert version.detect_format(["v1.0.0", "v1.1.0", "nightly"]).text == "v{version}"
    none = version.detect_format(["latest", "stable"])
    assert (none.text, none.origin) == ("v{version}", "default: no version tags yet")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("1.2.3", None),
        ("26.4", None),
        ("1.0rc1", None),
        ("2.0.post3", None),
        ("1!2.0", None),
        ("1.2.4.dev3", "1.2.4.dev3 is a development release (.dev3), not a release"),
        ("1.2.3+local.7", "1.2.3+local.7 is a local version (+local.7, which package indexes"),
        ("1.2.4.dev0+gabc1234", "a development release (.dev0) and a local version (+gabc1234"),
        ("1.0-final-final", "'1.0-final-final' is not a valid PEP 440 version"),
    ],
)
def test_which_versions_release(raw: str, problem: str | None) -> None:
    found = version.problem_with(raw)
    assert found is None if problem is None else problem in (found or "")


def test_a_tag_matches_its_version_under_pep_440() -> None:
    fmt = TagFormat()
    assert version.match_head("1.0.0", ["v1.0"], fmt).tag == "v1.0"
    assert version.match_head("1.0rc1", ["v1.0.0-rc.1", "other"], fmt).tag == "v1.0.0-rc.1"
    wrong = version.match_head("1.0.0", ["v1.1.0"], fmt)
    assert not wrong
    assert "tag v1.1.0 on HEAD does not match the release version 1.0.0" in (wrong.problem or "")
    none = version.match_head("1.0.0", [], fmt)
    assert "tag the release commit with `git tag v1.0.0`" in (none.problem or "")
    other = version.match_head("1.0.0", ["1.0.0"], fmt)
    assert 'set [tool.ci.release] tag_format = "{version}"' in (other.problem or "")


def test_tag_format_is_validated_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    for bad in ("v*", "version", "{version}-{version}", "v {version}", "{Version}"):
        path.write_text(f'[tool.ci.release]\ntag_format = "{bad}"\n', encoding="utf-8")
        with pytest.raises(ConfigError, match="tag_format"):
            load(path)
    path.write_text('[tool.ci.release]\ntag_format = "{version}"\n', encoding="utf-8")
    assert load(path).tag_format == "{version}"
    path.write_text('[tool.ci.release]\ntag = "{version}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="tag"):
        load(path)


def test_configured_format_wins_over_detection(make_repo: MakeRepo) -> None:
    repo = make_repo({"pyproject.toml": '[tool.ci.release]\ntag_format = "rel-{version}"\n'})
    git(repo, "tag", "1.0.0")
    fmt = version.tag_format(load(repo / "pyproject.toml"), ProcessRunner())
    assert (fmt.text, fmt.origin) == ("rel-{version}", "set in [tool.ci.release]")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    fmt = version.tag_format(load(repo / "pyproject.toml"), ProcessRunner())
    assert (fmt.text, fmt.origin) == ("{version}", "detected from 1 tags like 1.2.3")


def test_a_static_version_never_asks_the_backend(make_repo: MakeRepo) -> None:
    repo = dynamic_project(make_repo, "crash")
    text = (repo / "pyproject.toml").read_text(encoding="utf-8")
    text = text.replace('dynamic = ["version"]', 'version = "26.4"')
    (repo / "pyproject.toml").write_text(text, encoding="utf-8")
    found = version.project_version(load(repo / "pyproject.toml"), ProcessRunner())
    assert (found.version, found.source) == ("26.4", version.STATIC)


def test_a_dynamic_version_comes_from_the_build_backend(make_repo: MakeRepo) -> None:
    repo = dynamic_project(make_repo, "3.1.0")
    found = version.project_version(load(repo / "pyproject.toml"), ProcessRunner())
    assert found.version == "3.1.0"
    assert found.source == "build backend demo_backend (dynamic version)"


def test_resolve_refuses_a_development_version_with_the_fix(make_repo: MakeRepo) -> None:
    repo = dynamic_project(make_repo, "3.1.1.dev2+g0123abc")
    with pytest.raises(PreflightError) as caught:
        version.resolve(load(repo / "pyproject.toml"), ProcessRunner())
    message = str(caught.value)
    assert message.startswith("release version 3.1.1.dev2+g0123abc is a development release")
    assert "(from the build backend demo_backend (dynamic version))" in message
    assert "`git tag v3.1.1`" in message


def test_resolve_finds_the_tag_of_the_version(make_repo: MakeRepo) -> None:
    repo = dynamic_project(make_repo, "3.1.0")
    git(repo, "tag", "2.0.0", "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "next")
    git(repo, "tag", "3.1")
    found = version.resolve(load(repo / "pyproject.toml"), ProcessRunner())
    assert (found.version, found.tag, found.tag_format.text) == ("3.1.0", "3.1", "{version}")


def test_a_crashing_backend_is_exit_6_with_its_error_line(make_repo: MakeRepo) -> None:
    repo = dynamic_project(make_repo, "crash")
    with pytest.raises(ToolError) as caught:
        version.backend_version(repo, ProcessRunner())
    message = str(caught.value)
    assert message.startswith("the build backend could not prepare the metadata (exit 1): ")
    assert message.endswith("(RuntimeError: the version file says crash)")


def test_without_build_installed_the_fix_is_named(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = dynamic_project(make_repo, "3.1.0")
    bare = tmp_path / "bare-venv"
    subprocess.run(["uv", "venv", "--quiet", str(bare)], check=True)
    with pytest.raises(ToolError, match=r"`build` is not installed .* `uv sync --group package`"):
        version.backend_version(repo, ProcessRunner(), python=str(bare / "bin" / "python"))


def test_workflow_text_follows_the_format() -> None:
    bundle = 'on:\n  push:\n    tags: ["v[0-9]*"]\nrun: deploy --version "${GITHUB_REF_NAME#v}"\n'
    assert version.workflow_text(bundle, TagFormat()) == bundle
    plain = version.workflow_text(bundle, TagFormat(text="{version}"))
    assert (
        plain == 'on:\n  push:\n    tags: ["[0-9]*"]\nrun: deploy --version "${GITHUB_REF_NAME#}"\n'
    )
