"""The defaults tables of docs/design.md ("Defaults"), generated from ``replyassets.settings``.

The block between the two markers below is written by this module, never by hand:
``python -m replyassets.core.settings_doc`` rewrites it, ``--check`` exits 1 when it differs
(``replyassets_tests/core/test_one_definition.py`` runs the check), so the document cannot drift
from the settings (the training defaults come from ``replyassets/training/config.py`` through
``TrainingSettings``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from replyassets.settings import PROJECT_ROOT, Settings

BEGIN = "<!-- BEGIN generated defaults: python -m replyassets.core.settings_doc -->"
END = "<!-- END generated defaults -->"
DESIGN = PROJECT_ROOT / "docs" / "design.md"
SKIP = {"profile"}


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "`true`" if v else "`false`"
    if isinstance(v, str):
        return f"`{json.dumps(v)[1:-1]}`" if v else '`""`'
    if isinstance(v, (tuple, list)):
        return ", ".join(_value(x) for x in v) if v else "(none)"
    if isinstance(v, float) and v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"`{v:g}`"
    if isinstance(v, int) and abs(v) >= 10_000:
        return f"`{v:_}`"
    return f"`{v}`"


def _choices(model: type[BaseModel], name: str) -> str:
    annotation = model.model_fields[name].annotation
    args = getattr(annotation, "__args__", ())
    prefix = ""
    if str(annotation).startswith("list[") and len(args) == 1:  # a list of choices
        annotation, prefix = args[0], "one or several of "
        args = getattr(annotation, "__args__", ())
    if args and all(isinstance(a, str) for a in args) and str(annotation).startswith("typing.Literal"):
        return prefix + " \\| ".join(f"`{a}`" for a in args)
    return ""


def _rows(model: BaseModel, prefix: str) -> list[str]:
    rows = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}.{name}"
        if isinstance(value, BaseModel):
            rows.extend(_rows(value, key))
            continue
        rows.append(f"| `{key}` | {_value(value)} | {_choices(type(model), name)} |")
    return rows


def render(settings: Settings | None = None) -> str:
    """The generated block (markers included): one table per settings section, the defaults."""
    settings = settings or Settings()
    out = [BEGIN, ""]
    for section in type(settings).model_fields:
        if section in SKIP:
            continue
        model = getattr(settings, section)
        out += [f"`{section}` (`{type(model).__name__}`):", "", "| setting | default | allowed |", "|---|---|---|"]
        out += _rows(model, section)
        out.append("")
    out.append(END)
    return "\n".join(out)


def replace_block(text: str, block: str) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{DESIGN}: expected one {BEGIN!r} ... {END!r} block in the Defaults section")
    return text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when docs/design.md differs, write nothing")
    p.add_argument("--file", type=Path, default=DESIGN)
    args = p.parse_args(argv)
    text = args.file.read_text(encoding="utf-8")
    new = replace_block(text, render())
    if new == text:
        return 0
    if args.check:
        print(f"{args.file}: the defaults tables differ from replyassets.settings; run "
              "`python -m replyassets.core.settings_doc`", file=sys.stderr)
        return 1
    args.file.write_text(new, encoding="utf-8")
    print(f"{args.file}: defaults tables rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
