"""Strict JSONL reading shared by the CLI subcommands and the training program (stdlib only,
so the training image needs nothing else). Replay files of scraper exports are read by
sources/replay.py instead: there a bad line becomes a recorded rejection, not an error."""

from __future__ import annotations

import json
import sys
from pathlib import Path


class JSONLError(ValueError):
    """Input that cannot be read: the message names the file and the line."""


def read_objects(path: str | Path, *, missing: str = "{path}: no such file",
                 strict_utf8: bool = False) -> list[dict]:
    """One dict per non-blank line of ``path`` (``"-"``: standard input).

    A missing file (message ``missing``), a line that is not JSON, or a line that is not a JSON
    object raises ``JSONLError`` naming the file and line. Bytes that are not UTF-8 are
    replaced (U+FFFD), or with ``strict_utf8`` raise ``JSONLError`` naming the byte offset.
    """
    if str(path) == "-":
        lines, name = sys.stdin.read().splitlines(), "<stdin>"
    else:
        p = Path(path)
        if not p.is_file():
            raise JSONLError(missing.format(path=path))
        try:
            text = p.read_text(encoding="utf-8", errors="strict" if strict_utf8 else "replace")
        except UnicodeDecodeError as exc:
            raise JSONLError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
        lines, name = text.splitlines(), str(path)
    records = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JSONLError(f"{name}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise JSONLError(f"{name}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        records.append(obj)
    return records
