import datetime as dt
from pathlib import Path

import pytest

from ci.core import config
from ci.core.config import Mode
from ci.core.errors import ConfigError, ExitCode


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "demo-pkg"\nversion = "1.2.3"\n' + body, encoding="utf-8")
    return path


def test_defaults_when_table_absent(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, ""))
    assert cfg.pythons == ("3.12", "3.11", "3.13")
    assert cfg.default_python == "3.12"
    assert cfg.packages == ("demo_pkg",)
    assert cfg.project_version == "1.2.3"
    assert cfg.gate("test").coverage_min == 85
    assert cfg.gate("test").workers is None  # the project's own way: no -n from the bundle
    assert cfg.gate("audit").fail_on == "high"
    assert cfg.root == tmp_path


def test_no_pyproject_at_all_gives_defaults(tmp_path: Path) -> None:
    cfg = config.load(cwd=tmp_path)
    assert cfg.path is None
    assert cfg.pythons == config.DEFAULT_PYTHONS


def test_nearest_pyproject_is_found_from_a_subfolder(tmp_path: Path) -> None:
    write(tmp_path, '[tool.ci]\npythons = ["3.13"]\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert config.load(cwd=sub).pythons == ("3.13",)


def test_full_table_parses(tmp_path: Path) -> None:
    cfg = config.load(
        write(
            tmp_path,
            """
[tool.ci]
pythons = ["3.11"]
required_secrets = ["GEMINI_API_KEY"]
[tool.ci.gates.test]
mode = "advisory"
budget_s = 12
budget_blocks = true
coverage_min = 90
workers = 3
[tool.ci.gates.lint]
mypy = true
[tool.ci.gates.audit]
fail_on = "critical"
[[tool.ci.waivers]]
id = "PYSEC-2024-1"
reason = "not reachable"
expires = 2027-01-31
[tool.ci.environments.staging]
deploy_command = ["echo", "{version}"]
[tool.ci.environments.production]
after = "staging"
requires_approval = true
allowed_refs = ["refs/tags/v*"]
[tool.ci.publish]
retain = 3
""",
        )
    )
    assert cfg.gate("test").mode is Mode.ADVISORY
    assert cfg.gate("test").budget_s == 12
    assert cfg.gate("test").workers == 3
    assert cfg.gate("lint").mypy is True
    assert cfg.gate("audit").fail_on == "critical"
    assert cfg.waivers[0].expires == dt.date(2027, 1, 31)
    assert cfg.environment("production").after == "staging"
    assert cfg.environment("staging").deploy_command == ("echo", "{version}")
    assert cfg.publish.retain == 3


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[tool.ci]\ncolour = 1\n", "unknown key 'colour' in [tool.ci]"),
        ("[tool.ci]\npythons = '3.12'\n", "tool.ci.pythons must be a list of strings"),
        ("[tool.ci]\npythons = []\n", "at least one version"),
        ("[tool.ci.gates.test]\ncoverage_mim = 80\n", "unknown key 'coverage_mim'"),
        ("[tool.ci.gates.docs]\ncommand = 'make docs'\n", "command must be a list of strings"),
        ("[tool.ci.gates.docs]\ninputs = 'docs/**'\n", "inputs must be a list of strings"),
        ("[tool.ci.gates.test]\nmode = 'sometimes'\n", "mode = 'sometimes' is not one of"),
        ("[tool.ci.gates.test]\nbudget_s = 'ten'\n", "budget_s must be a number"),
        ("[tool.ci.gates.test]\nbudget_blocks = 1\n", "budget_blocks must be true or false"),
        ("[tool.ci.gates.audit]\nfail_on = 'severe'\n", "fail_on = 'severe' is not one of"),
        ("[tool.ci.gates.test]\nworkers = 0\n", 'workers must be "auto" or a whole number'),
        ("[tool.ci.gates.test]\nworkers = 'many'\n", 'workers must be "auto" or a whole number'),
        ("[tool.ci.gates.test]\nworkers = 2.5\n", 'workers must be "auto" or a whole number'),
        ("[tool.ci.gates.test]\nreruns = -1\n", "reruns must be at least 0"),
        ("[tool.ci.gates.test]\nreruns = true\n", "reruns must be at least 0"),
        (
            "[tool.ci.gates.test]\nrunner = 'nose'\n",
            "tool.ci.gates.test.runner = 'nose' is not one of pytest, unittest",
        ),
        ("[tool.ci.gates.test]\nrunner = 1\n", "runner must be a string"),
        ("[[tool.ci.waivers]]\nid = 'X'\nexpires = 2027-01-01\n", "has no 'reason'"),
        ("[[tool.ci.waivers]]\nid = 'X'\nreason = 'r'\n", "has no 'expires'"),
        ("[[tool.ci.waivers]]\nid = 'X'\nreason = ' '\nexpires = 2027-01-01\n", "reason is empty"),
        ("[[tool.ci.waivers]]\nid = 'X'\nreason = 'r'\nexpires = 'soon'\n", "must be a TOML date"),
        ("[tool.ci]\nwaivers = 3\n", "must be an array of tables"),
        (
            "[tool.ci.environments.prod]\nafter = 'staging'\n",
            "after = 'staging' is not an environment",
        ),
        ("[tool.ci.environments.prod]\ndeploy_command = 'ls'\n", "deploy_command must be a list"),
        ("[tool.ci.publish]\nretain = 0\n", "retain must be at least 1"),
        ("[tool.ci.cache]\nmax_gb = 1\n", "unknown key 'max_gb' in [tool.ci.cache]"),
        ("[tool]\nci = 3\n", "[tool.ci] must be a table"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, body: str, needle: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.exit_code is ExitCode.USAGE


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.ci\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "nope.toml")


def test_unknown_environment_lists_known(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, "[tool.ci.environments.staging]\n"))
    with pytest.raises(ConfigError, match=r"no environment 'prod'.*configured: staging"):
        cfg.environment("prod")


def test_state_dir_and_env_flag(tmp_path: Path) -> None:
    assert config.state_dir(tmp_path, {}) == tmp_path / ".ci-state"
    assert config.state_dir(tmp_path, {"CI_STATE_DIR": "/x"}) == Path("/x")
    assert config.env_flag("CI_NO_CACHE", {"CI_NO_CACHE": "1"}) is True
    assert config.env_flag("CI_NO_CACHE", {}) is False
    with pytest.raises(ConfigError, match="not a boolean"):
        config.env_flag("CI_NO_CACHE", {"CI_NO_CACHE": "maybe"})


ENV = "[tool.ci.environments.{name}]\n"


@pytest.mark.parametrize(
    ("body", "key", "needle"),
    [
        ('[tool.ci]\npythons = ["banana"]\n', "tool.ci.pythons", "'banana', which is not"),
        ('[tool.ci]\npythons = ["3.12", "3.12"]\n', "tool.ci.pythons", "more than once"),
        ('[tool.ci]\npythons = ["3"]\n', "tool.ci.pythons", "not a Python version"),
        ('[tool.ci]\npackages = ["my-pkg"]\n', "tool.ci.packages", "not an import name"),
        ('[tool.ci]\ntests = "../elsewhere"\n', "tool.ci.tests", "inside the project"),
        ('[tool.ci]\nreports_dir = "/tmp/r"\n', "tool.ci.reports_dir", "inside the project"),
        ('[tool.ci]\nreports_dir = ""\n', "tool.ci.reports_dir", "inside the project"),
        ('[tool.ci]\nrequired_secrets = ["MY TOKEN"]\n', "required_secrets", "not an environ"),
        (ENV.format(name="prod") + "timeout_s = 0\n", "prod.timeout_s", "greater than 0"),
        (ENV.format(name="prod") + "timeout_s = -1\n", "prod.timeout_s", "greater than 0"),
        (ENV.format(name="prod") + "timeout_s = nan\n", "prod.timeout_s", "greater than 0"),
        (ENV.format(name="prod") + "timeout_s = inf\n", "prod.timeout_s", "greater than 0"),
        (ENV.format(name="prod") + "timeout_s = 1e10\n", "prod.timeout_s", "at most 604800"),
        (ENV.format(name="prod") + "timeout_s = 604801\n", "prod.timeout_s", "(7 days)"),
        ("[tool.ci.state]\nlease_s = 1e300\n", "tool.ci.state.lease_s", "at most 604800"),
        ("[tool.ci.gates.lint]\nbudget_s = 1e10\n", "lint.budget_s", "not 10000000000.0"),
        (ENV.format(name="prod") + 'after = "prod"\n', "prod] after = 'prod'", "itself"),
        (ENV.format(name='"../x"'), "tool.ci.environments.../x", "may only hold"),
        (
            ENV.format(name="a") + 'after = "b"\n' + ENV.format(name="b") + 'after = "a"\n',
            "after",
            "cycle (a -> b -> a)",
        ),
        (
            ENV.format(name="a")
            + 'after = "b"\n'
            + ENV.format(name="b")
            + 'after = "c"\n'
            + ENV.format(name="c")
            + 'after = "b"\n',
            "after",
            "cycle (b -> c -> b)",
        ),
        ("[tool.ci.gates.test]\ncoverage_min = nan\n", "test.coverage_min", "finite"),
        ("[tool.ci.gates.test]\ncoverage_min = 101\n", "test.coverage_min", "between 0 and 100"),
        ("[tool.ci.gates.test]\ncoverage_min = -5\n", "test.coverage_min", "between 0 and 100"),
        ("[tool.ci.gates.test]\ncoverage_drop_max = -inf\n", "coverage_drop_max", "finite"),
        ("[tool.ci.gates.lint]\nbudget_s = 0\n", "lint.budget_s", "greater than 0"),
        ("[tool.ci.gates.lint]\nbudget_s = nan\n", "lint.budget_s", "greater than 0"),
        ("[tool.ci.publish]\nretain = 2.5\n", "publish.retain", "whole number"),
        ("[tool.ci.publish]\nretain = nan\n", "publish.retain", "whole number"),
        ("[tool.ci.publish]\nrepository_url = 'pypi'\n", "repository_url", "http://"),
        ("[tool.ci.cache]\nmax_mb = -1\n", "cache.max_mb", "at least 0"),
        ("[tool.ci.cache]\nmax_mb = inf\n", "cache.max_mb", "whole number"),
        ("[tool.ci.notify]\nwebhook_url = 'hooks.example'\n", "webhook_url", "http://"),
        (
            "[[tool.ci.waivers]]\nid = ''\nreason = 'r'\nexpires = 2027-01-01\n",
            "waivers[0].id",
            "is empty",
        ),
    ],
)
def test_config_accepted_before_but_wrong_is_exit_2_naming_key_and_file(
    tmp_path: Path, body: str, key: str, needle: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert key in message
    assert needle in message
    assert "\n" not in message
    assert info.value.exit_code is ExitCode.USAGE


@pytest.mark.parametrize(
    "body",
    [
        '[tool.ci]\npythons = ["3.12", "3.13t", "pypy3.10", "3.11.9"]\n',
        '[tool.ci]\npackages = ["pkg.sub"]\ntests = "tests/unit"\nreports_dir = "out/reports"\n',
        ENV.format(name="staging") + ENV.format(name="prod") + 'after = "staging"\n'
        "timeout_s = 0.5\n",
        "[tool.ci.gates.test]\ncoverage_min = 0\ncoverage_drop_max = 100\n",
        "[tool.ci.cache]\nmax_mb = 0\n",
        ENV.format(name="prod") + "timeout_s = 604800\n[tool.ci.state]\nlease_s = 604800.0\n",
    ],
)
def test_config_at_the_edges_of_the_ranges_is_fine(tmp_path: Path, body: str) -> None:
    config.load(write(tmp_path, body))


def test_a_state_folder_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(ConfigError, match=r"state \(CI_STATE_DIR\) is a file, not a folder"):
        config.state_dir(tmp_path, {"CI_STATE_DIR": str(tmp_path / "state")})
    (tmp_path / ".ci-state").write_text("")
    with pytest.raises(ConfigError, match="the default state folder"):
        config.state_dir(tmp_path, {})


def test_a_config_path_that_is_a_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder; pass --config the pyproject.toml"):
        config.load(tmp_path)
