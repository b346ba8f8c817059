"""Import contracts in the lint gate: real import-linter runs on small packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.core.config import load
from ci.core.errors import ToolError
from ci.core.gate import GateStatus, context
from ci.core.runner import ProcessRunner
from ci.gates import imports, lint
from ci.testing.fakes import FixedClock
from tests.conftest import ROOT

CONTRACTS = """
[tool.importlinter]
root_package = "shop"

[[tool.importlinter.contracts]]
name = "orders sit above payments"
type = "layers"
layers = ["shop.orders", "shop.payments"]

[[tool.importlinter.contracts]]
name = "nothing reaches the test doubles"
type = "forbidden"
source_modules = ["shop.orders", "shop.payments"]
forbidden_modules = ["shop.testing"]
"""


def package(root: Path, files: dict[str, str], config: str = CONTRACTS) -> Path:
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "shop"\nversion = "1"\n{config}', encoding="utf-8"
    )
    for rel in ("shop", "shop/orders", "shop/payments", "shop/testing"):
        (root / rel).mkdir(parents=True, exist_ok=True)
        (root / rel / "__init__.py").write_text("", encoding="utf-8")
    for rel, text in files.items():
        (root / rel).write_text(text, encoding="utf-8")
    return root


def check(root: Path) -> list:
    ctx = context(load(cwd=root), ProcessRunner(), FixedClock(), {})
    return imports.check(ctx)


@pytest.fixture(autouse=True)
def importable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """import-linter imports nothing, but finds the package on the Python path."""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))


def test_kept_contracts_are_no_findings(tmp_path: Path) -> None:
    root = package(tmp_path, {"shop/orders/api.py": "import shop.payments\n"})
    assert check(root) == []


def test_each_broken_import_is_a_finding_at_its_line(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        {
            "shop/payments/charge.py": '"""Charge."""\n\nimport shop.orders\n',
            "shop/orders/fixtures.py": "from shop.testing import fakes\n",
            "shop/testing/fakes.py": "",
        },
    )
    found = sorted(check(root), key=lambda f: f.file)
    assert [(f.file, f.line) for f in found] == [
        ("shop/orders/fixtures.py", 1),
        ("shop/payments/charge.py", 3),
    ]
    assert (
        found[0].message
        == "nothing reaches the test doubles: shop.orders.fixtures -> shop.testing.fakes"
    )
    assert found[1].message == "orders sit above payments: shop.payments.charge -> shop.orders"


def test_a_chain_names_every_module_on_it(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        {
            "shop/orders/api.py": "import shop.orders.util\n",
            "shop/orders/util.py": "\n\nimport shop.testing.fakes\n",
            "shop/testing/fakes.py": "",
        },
    )
    messages = {f.message for f in check(root)}
    assert "nothing reaches the test doubles: shop.orders.util -> shop.testing.fakes" in messages


def test_a_config_it_cannot_use_is_exit_6_never_a_pass(tmp_path: Path) -> None:
    config = CONTRACTS.replace('type = "layers"', 'type = "layerz"')
    root = package(tmp_path, {}, config)
    with pytest.raises(ToolError, match="lint-imports could not check the import contracts"):
        check(root)


def test_without_contracts_nothing_runs(tmp_path: Path) -> None:
    root = package(tmp_path, {"shop/payments/charge.py": "import shop.orders\n"}, config="")
    assert not imports.configured(root)
    assert check(root) == []
    (root / ".importlinter").write_text("[importlinter]\nroot_package = shop\n")
    assert imports.configured(root)


def test_lint_gate_fails_on_a_broken_contract(tmp_path: Path) -> None:
    root = package(tmp_path, {"shop/payments/charge.py": '"""Charge."""\n\nimport shop.orders\n'})
    ctx = context(load(cwd=root), ProcessRunner(), FixedClock(), {})
    result = lint.run(ctx)
    assert result.status is GateStatus.FAILED
    contract = [f for f in result.findings if f.rule == "import-contract"]
    assert [(f.file, f.line) for f in contract] == [("shop/payments/charge.py", 3)]


def test_this_repository_keeps_its_contracts() -> None:
    ctx = context(load(cwd=ROOT), ProcessRunner(), FixedClock(), {})
    assert imports.configured(ROOT)
    assert imports.check(ctx) == []
