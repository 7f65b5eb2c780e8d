"""Reading JSONL input for the CLI subcommands (a file path, or ``-`` for stdin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


class InputError(ValueError):
    """Input the command cannot read: the message names the file and line."""


def read_records(path: str) -> list[dict]:
    """One dict per non-blank line; a clear ``InputError`` for a missing file, bad JSON or a non-object."""
    if path == "-":
        lines, name = sys.stdin.read().splitlines(), "<stdin>"
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{path}: no such file")
        lines, name = p.read_text(encoding="utf-8", errors="replace").splitlines(), path
    records = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{name}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        records.append(obj)
    return records
