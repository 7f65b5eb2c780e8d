"""Markdown text for the UI: escaped cells, small tables and text histograms (no Dagster here;
``replyassets/defs/metadata.py`` wraps these as metadata values)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from replyassets.core.numbers import fmt_num


def md_escape(text: Any) -> str:
    """Text that survives markdown and its HTML: ``<``/``>``/``&`` as entities (``<run>`` is not
    swallowed as a tag), ``|`` escaped (table cells), newlines as spaces."""
    s = "" if text is None else str(text)
    s = "".join(ch if ch >= " " or ch in "\r\n\t" else "\ufffd" for ch in s)  # no control characters
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A small list of dicts as a markdown table; ``_(none)_`` when there are no rows."""
    if not rows:
        return "_(none)_"
    cols = columns or list(rows[0].keys())
    out = ["| " + " | ".join(md_escape(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return "\n".join(out)


def _cell(v: Any) -> str:
    s = "" if v is None else (fmt_num(v) if isinstance(v, (float, np.floating)) else str(v))
    return md_escape(s[:200])


def histogram_text(values: pd.Series, bins: int = 10, title: str = "") -> str:
    """A text histogram (renders in the UI without images). The bins split the data's own
    ``[min, max]`` into equal widths (the first edge is the minimum, the last the maximum), so
    a non-negative quantity never shows a negative bin; integer data with a small range gets one
    row per value."""
    v = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    title_md = f"**{md_escape(title)}**"
    if v.empty:
        return f"{title_md}: no values"
    counts, edges = histogram_bins(v.to_numpy(), bins)
    peak = max(int(counts.max()), 1)
    summary = (f"{title_md} (n={len(v)}, min={v.min():.3g}, max={v.max():.3g}, mean={v.mean():.3g}, "
               f"median={v.median():.3g})")
    lines = [summary, "", "```"]
    integer = bool(np.all(v.to_numpy() == np.round(v.to_numpy())))
    per_value = integer and len(counts) > 1 and len(counts) == edges[-1] - edges[0] + 1  # one bin per value
    for i, n in enumerate(counts):
        bar = "#" * round(30 * n / peak)
        if per_value:
            label = f"{edges[0] + i:>21g}"
        else:
            label = f"[{edges[i]:>9.4g}, {edges[i + 1]:<9.4g}" + ("]" if i == len(counts) - 1 else ")")
        lines.append(f"{label} {int(n):>6} {bar}")
    lines.append("```")
    return "\n".join(lines)


def histogram_bins(values: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges over exactly ``[min(values), max(values)]`` in equal-width bins (the last
    bin includes the maximum); integer data with a range narrower than ``bins`` gets one bin per
    integer value; one bin when all values are equal."""
    v = np.asarray(values, dtype=float)
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return np.array([len(v)]), np.array([lo, hi])
    n = bins
    if bool(np.all(v == np.round(v))):
        n = min(bins, int(hi - lo) + 1)
    return np.histogram(v, bins=n, range=(lo, hi))


_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_TEMPLATE_TAG = re.compile(r"</?think>|<\|im_(?:start|end)\|>|<\|endoftext\|>")
GENERATION_CHARS = 140  # a sample reply as the page shows it; the full text stays in result.json


def shown_generation(text: Any, limit: int = GENERATION_CHARS) -> str:
    """A generated reply as a person reads it: chat-template tags (the think block, im_start /
    im_end) removed, whitespace collapsed, clipped to ``limit`` characters with an ellipsis."""
    s = _TEMPLATE_TAG.sub(" ", _THINK_BLOCK.sub(" ", "" if text is None else str(text)))
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


ZWSP = "\u200b"  # a zero-width space: where a browser may break a line, invisible otherwise
_LONG_TOKEN = re.compile(r"\S{17,}")


def breakable(text: Any, every: int = 16) -> str:
    """``text`` with zero-width spaces inside its long tokens (after ``/ _ - .`` and at least
    every ``every`` characters), so a table cell can wrap a path, a hash or a snake_case name
    instead of widening its table past the page. Reads the same; ``ZWSP`` strips back out."""
    def split(m: re.Match) -> str:
        token = re.sub(r"([/_\-.])", r"\1" + ZWSP, m.group(0))
        return ZWSP.join(part if len(part) <= every else ZWSP.join(
            part[i:i + every] for i in range(0, len(part), every)) for part in token.split(ZWSP))

    return _LONG_TOKEN.sub(split, "" if text is None else str(text))
