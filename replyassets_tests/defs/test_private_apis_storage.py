"""The private Dagster APIs ``defs/storage.py`` still imports (docs/design.md, "Private Dagster
APIs"): each is still there, each is listed, and the installed Dagster is the pinned one (a
private API may change in any release: an upgrade must come with this check passing)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STORAGE = ROOT / "replyassets" / "defs" / "storage.py"
DESIGN = ROOT / "docs" / "design.md"

# symbol -> module: the rows of docs/design.md for defs/storage.py
PRIVATE = {
    "DbIOManager": "dagster._core.storage.db_io_manager",
    "TableSlice": "dagster._core.storage.db_io_manager",
    "TableMetadataSet": "dagster._core.definitions.metadata",
}
# private members of DbIOManager the IO manager calls
DB_IO_MANAGER_MEMBERS = ("_get_table_slice", "_resolve_handler", "_check_supported_type")


def _is_private(module: str, name: str) -> bool:
    return module.startswith("dagster") and (any(p.startswith("_") for p in module.split(".")) or name.startswith("_"))


def test_every_private_import_of_storage_is_listed():
    found = {}
    for node in ast.walk(ast.parse(STORAGE.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if _is_private(node.module, alias.name):
                    found[alias.name] = node.module
    assert found == PRIVATE, "defs/storage.py's private Dagster imports changed: update PRIVATE and docs/design.md"
    section = DESIGN.read_text().split("## Private Dagster APIs", 1)[1].split("\n## ", 1)[0]
    for symbol, module in PRIVATE.items():
        assert re.search(rf"^\| `{symbol}` \| `{re.escape(module)}` \|", section, re.MULTILINE), (
            f"{symbol} ({module}) is not listed in docs/design.md, 'Private Dagster APIs'")


@pytest.mark.parametrize("symbol", sorted(PRIVATE))
def test_private_symbol_still_exists(symbol):
    module = PRIVATE[symbol]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"private Dagster module {module} (for {symbol}) is gone: {exc}")
    assert hasattr(mod, symbol), f"private Dagster API {symbol} is gone from {module}"
    if symbol == "DbIOManager":
        for member in DB_IO_MANAGER_MEMBERS:
            assert hasattr(mod.DbIOManager, member), f"private Dagster API DbIOManager.{member} is gone"


def test_installed_dagster_is_the_pinned_one():
    import dagster

    pins = re.findall(r'"dagster==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pins, "no dagster==<version> pin in pyproject.toml"
    assert dagster.__version__ == pins[0], (
        f"installed dagster {dagster.__version__} differs from the pin {pins[0]} in pyproject.toml: "
        "check the private APIs listed in docs/design.md against it")
