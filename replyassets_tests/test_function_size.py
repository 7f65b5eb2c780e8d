"""No product function is longer than 80 lines unless its docstring says why ("Long because ...")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "replyassets"
MAX_LINES = 80
REASON = "long because"

# Still long, in modules another change reshapes (that change brings them under the limit or
# gives the reason in their docstring; then their entry goes):
ALLOWED = {
    "defs/evaluate.py": {"eval_report"},
    "demo.py": {"*"},  # every function of demo.py
}


def long_functions(root: Path, max_lines: int = MAX_LINES) -> list[tuple[str, str, int]]:
    """(module path relative to ``root``, function name, lines) of every function over
    ``max_lines`` whose docstring gives no reason."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            lines = node.end_lineno - node.lineno + 1  # from `def` to the last line, decorators aside
            if lines > max_lines and REASON not in (ast.get_docstring(node) or "").lower():
                out.append((rel, node.name, lines))
    return out


def _allowed(rel: str, name: str) -> bool:
    names = ALLOWED.get(rel, set())
    return "*" in names or name in names


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_no_function_over_80_lines_without_a_reason():
    offenders = [f"{rel}: {name} ({n} lines)" for rel, name, n in long_functions(PACKAGE) if not _allowed(rel, name)]
    assert not offenders, "functions over 80 lines without 'Long because' in the docstring:\n" + "\n".join(offenders)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_the_allow_list_names_only_functions_that_are_still_long():
    long = {(rel, name) for rel, name, _ in long_functions(PACKAGE)}
    stale = [f"{rel}: {name}" for rel, names in ALLOWED.items() for name in names
             if name != "*" and (rel, name) not in long]
    assert not stale, "allow-listed functions no longer long (remove their entries):\n" + "\n".join(stale)


def test_the_walk_finds_a_long_function_and_accepts_a_reason(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def too_long():\n{body}\n")
    (tmp_path / "reasoned.py").write_text(f'def reasoned():\n    """Long because it is a table."""\n{body}\n')
    (tmp_path / "short.py").write_text("def short():\n    return 1\n")
    assert long_functions(tmp_path) == [("long.py", "too_long", MAX_LINES + 1)]
