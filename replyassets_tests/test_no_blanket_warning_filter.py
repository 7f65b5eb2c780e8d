"""No product code silences every warning: a ``simplefilter("ignore")`` or
``filterwarnings("ignore")`` names the category or the message it means."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "replyassets"
_FILTERS = {"simplefilter", "filterwarnings"}
# The positional slots of category and message: simplefilter(action, category, ...),
# filterwarnings(action, message, category, ...).
_NARROWING = {"simplefilter": {1: "category"}, "filterwarnings": {1: "message", 2: "category"}}


def _is_ignore(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value == "ignore"


def blanket_filters(root: Path) -> list[tuple[str, int]]:
    """(module path relative to ``root``, line) of every ``warnings.simplefilter("ignore")`` /
    ``warnings.filterwarnings("ignore")`` (also as ``action="ignore"``) that names neither a
    category nor a (non-empty) message."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in _FILTERS:
                continue
            kwargs = {k.arg: k.value for k in node.keywords if k.arg}
            action = node.args[0] if node.args else kwargs.get("action")
            if not _is_ignore(action):
                continue
            narrowing = {kw: node.args[i] for i, kw in _NARROWING[name].items() if i < len(node.args)}
            narrowing |= {k: v for k, v in kwargs.items() if k in ("category", "message")}
            if not any(not (isinstance(v, ast.Constant) and v.value in ("", None)) for v in narrowing.values()):
                out.append((path.relative_to(root).as_posix(), node.lineno))
    return out


def test_no_blanket_ignore_of_warnings_in_the_product():
    found = blanket_filters(PACKAGE)
    assert not found, "warning filters that ignore everything (name the category or message):\n" + "\n".join(
        f"{rel}:{line}" for rel, line in found)


def test_the_walk_tells_blanket_filters_from_narrow_ones(tmp_path):
    (tmp_path / "blanket.py").write_text(
        "import warnings\nfrom warnings import simplefilter\n"
        "warnings.simplefilter('ignore')\n"
        "warnings.filterwarnings('ignore')\n"
        "warnings.filterwarnings(action='ignore', message='')\n"
        "simplefilter('ignore', append=True)\n"
    )
    (tmp_path / "narrow.py").write_text(
        "import warnings\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        "warnings.simplefilter('ignore', category=UserWarning)\n"
        "warnings.filterwarnings('ignore', 'some message')\n"
        "warnings.filterwarnings('ignore', message='x', category=FutureWarning)\n"
        "warnings.simplefilter('always')\n"
    )
    assert blanket_filters(tmp_path) == [("blanket.py", 3), ("blanket.py", 4), ("blanket.py", 5), ("blanket.py", 6)]
