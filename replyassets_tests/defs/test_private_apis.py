"""The private Dagster APIs the project uses are listed in docs/design.md ("Private Dagster
APIs"), still exist in the installed Dagster, and that Dagster is the pinned one."""

import ast
import importlib
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Files whose every ``dagster._...`` import must be a row of the table: every product module.
AUDITED = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "replyassets").rglob("*.py"))
ROW = re.compile(r"^\| `([^`]+)` \| `([^`]+)` \| (.+) \|$", re.MULTILINE)


def listed() -> list[tuple[str, str]]:
    """``(symbol, module)`` for every row of docs/design.md's "Private Dagster APIs" table."""
    text = (ROOT / "docs" / "design.md").read_text()
    if "\n## Private Dagster APIs\n" not in text:
        raise AssertionError('docs/design.md has no "## Private Dagster APIs" section')
    section = text.split("\n## Private Dagster APIs\n", 1)[1].split("\n## ", 1)[0]
    return [(symbol, module) for symbol, module, _ in ROW.findall(section)]


def test_the_table_has_rows():
    rows = listed()
    assert len(rows) >= 10, rows
    assert len(set(rows)) == len(rows), "a symbol is listed twice"


@pytest.mark.parametrize(("symbol", "module"), listed(), ids=[s for s, _ in listed()])
def test_a_listed_private_api_still_exists(symbol, module):
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{symbol}: its module {module} no longer imports ({exc}); see docs/design.md, Private Dagster APIs")
    for part in symbol.split("."):
        if not hasattr(obj, part):
            pytest.fail(f"{symbol} no longer exists in {module}; see docs/design.md, Private Dagster APIs")
        obj = getattr(obj, part)


def test_the_installed_dagster_is_the_pinned_one():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d.split("==", 1)[1].strip() for d in deps if re.match(r"^dagster\s*==", d)]
    assert len(pins) == 1, f"pyproject.toml should pin dagster exactly once (dagster==X.Y.Z), found {pins}"
    installed = importlib.metadata.version("dagster")
    assert installed == pins[0], (
        f"dagster {installed} is installed but pyproject.toml pins {pins[0]}: check every row of docs/design.md, "
        "Private Dagster APIs, against the new version before moving the pin")


def private_imports(path: Path) -> set[tuple[str, str]]:
    """``(symbol, module)`` of every ``from dagster._... import symbol`` in a file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dagster._"):
            found.update((alias.name, node.module) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(("*", a.name) for a in node.names if a.name.startswith("dagster._"))
    return found


@pytest.mark.parametrize("rel", AUDITED)
def test_every_private_import_is_listed(rel):
    unlisted = private_imports(ROOT / rel) - set(listed())
    assert not unlisted, f"{rel} imports private Dagster APIs not listed in docs/design.md: {sorted(unlisted)}"
