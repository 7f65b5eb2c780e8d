"""Small PNG plots for the report files and the Dagster UI (no Dagster here).

Every function returns PNG bytes (or ``None`` when there is nothing to draw). The figures are
drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend switch, safe
in threads), at a low dpi so that one plot is a few tens of KB: small enough to embed in a
Dagster markdown metadata value as a data URI (``image_md``).

The same bytes serve both places: ``core/report.py`` writes them next to report.md/.html and
``eval_report`` / ``lora_adapter`` embed them in their metadata.

Dagster's UI shows a markdown metadata value in the metadata table only when it is shorter than
:data:`INLINE_MD_LIMIT` characters; a longer one (every plot above) is behind a "[Show
Markdown]" link. The ``*_inline_md`` functions draw tiny 2-bit palette PNGs (a loss sparkline,
an outcome bar) whose whole markdown value stays under that limit, dropping resolution until it
does, so the asset page shows them without a click.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 80
SIZE = (5.0, 3.0)  # inches: 400 x 240 pixels at 80 dpi

BASE_COLOR, ADAPTER_COLOR, REFERENCE_COLOR = "#264653", "#e9c46a", "#8d99ae"
OUTCOME_COLORS = ("#2a9d8f", "#adb5bd", "#e76f51")


def _figure(size: tuple[float, float] = SIZE):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    return fig, fig.subplots()


def _png(fig, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    # no "Software" text chunk: the same figure gives the same bytes on every matplotlib build
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_md(png: bytes | None, alt: str) -> str:
    """Markdown that shows ``png`` inline (``![alt](data:image/png;base64,...)``)."""
    if not png:
        return f"_{alt}: nothing to plot_"
    safe_alt = alt.replace("[", "(").replace("]", ")")
    return f"![{safe_alt}]({data_uri(png)})"


# --------------------------------------------------------------------------- inline (small) plots

# Dagster's UI renders a markdown metadata value inline only when it is shorter than this.
INLINE_MD_LIMIT = 1000
# Pixel sizes tried in turn, largest first, until the markdown value fits under the limit.
INLINE_SIZES = ((240, 80), (220, 72), (200, 64), (180, 56), (160, 50))
# The 2-bit palette: background, dark (axes, text, base), accent (adapter, eval), grey.
_PALETTE = ((255, 255, 255), (38, 70, 83), (231, 111, 81), (173, 181, 189))
WHITE, DARK, ACCENT, GREY = range(4)
# The outcome palette: background, dark (axes, text, ties), loss orange, win green.
_OUTCOME_PALETTE = ((255, 255, 255), (38, 70, 83), (231, 111, 81), (42, 157, 143))
# Points a line keeps (a long curve is averaged into this many): detail that a 240-pixel plot
# cannot show only costs characters.
INLINE_POINTS = 40
CAPTION_CHARS = 44  # a caption line under a plot: the width of the UI's value column


def _font():
    from PIL import ImageFont

    return ImageFont.load_default_imagefont()  # Pillow's bitmap font: crisp, compresses well


def _tiny_png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True, bits=2)
    return buf.getvalue()


def _canvas(size: tuple[int, int], palette=_PALETTE):
    from PIL import Image, ImageDraw

    img = Image.new("P", size, WHITE)
    img.putpalette([c for rgb in palette for c in rgb])
    draw = ImageDraw.Draw(img)
    draw.fontmode = "1"
    return img, draw


def _text_width(text: str) -> int:
    return int(_font().getbbox(text)[2])


def _label(v: float) -> str:
    return f"{v:.4g}"


def fit_inline(draw, alt: str, sizes: Sequence[tuple[int, int]] = INLINE_SIZES, limit: int = INLINE_MD_LIMIT,
               caption: str = "") -> str:
    """``![alt](data:image/png;base64,...)`` of ``draw((width, height))`` (and ``caption`` on the
    next line) at the largest size of ``sizes`` whose whole markdown is under ``limit``
    characters; a short note when even the smallest is not (Dagster would hide it behind a click)."""
    # hard line breaks: the UI's value column does not wrap a paragraph
    tail = "\n\n" + "  \n".join(textwrap.wrap(caption, CAPTION_CHARS)) if caption else ""
    for size in sizes:
        md = image_md(draw(size), alt) + tail
        if len(md) < limit:
            return md
    return f"_{alt}: too detailed to show inline; see the full plot in the report folder_"


class _Frame:
    """Axes in a small image: a y range labelled at its ends on the left, an x axis with labels
    at its ends and a name in the middle below."""

    def __init__(self, draw, size, ys: tuple[float, float], xs: tuple[str, str], xname: str, ylabels=None):
        f = _font()
        w, h = size
        y0, y1 = ys
        self.ylabels = ylabels or (_label(y1), _label(y0))
        self.left = max(_text_width(t) for t in self.ylabels) + 3
        self.top, self.right, self.bottom = 4, w - 3, h - 13
        self.y0, self.y1 = y0, y1
        draw.line([(self.left, self.top), (self.left, self.bottom), (self.right, self.bottom)], fill=DARK)
        draw.text((0, self.top - 2), self.ylabels[0], font=f, fill=DARK)
        draw.text((0, self.bottom - 9), self.ylabels[1], font=f, fill=DARK)
        if xs[0]:
            draw.text((self.left, self.bottom + 2), xs[0], font=f, fill=DARK)
        if xs[1]:
            draw.text((self.right - _text_width(xs[1]), self.bottom + 2), xs[1], font=f, fill=DARK)
        mid = (self.left + self.right - _text_width(xname)) // 2
        draw.text((mid, self.bottom + 2), xname, font=f, fill=DARK)

    def y(self, v: float) -> float:
        span = self.y1 - self.y0
        frac = (v - self.y0) / span if span else 0.5
        return self.bottom - 1 - (self.bottom - self.top - 2) * frac

    def x(self, frac: float) -> float:
        return self.left + 1 + (self.right - self.left - 2) * frac


def _thinned(points: list[tuple[float, float]], n: int = INLINE_POINTS) -> list[tuple[float, float]]:
    """At most ``n`` points: consecutive points averaged in equal groups."""
    if len(points) <= n:
        return points
    k = -(-len(points) // n)
    groups = [points[i:i + k] for i in range(0, len(points), k)]
    return [(sum(p[0] for p in g) / len(g), sum(p[1] for p in g) / len(g)) for g in groups]


def line_chart_png(series: Sequence[tuple[Sequence[tuple[float, float]], int]], size: tuple[int, int],
                   xname: str) -> bytes | None:
    """Lines (``(points, color)``; the accent color also marks its points) on labelled axes:
    the y range at its ends, the x range at its ends and ``xname``. ``None`` without points."""
    series = [(_thinned(list(pts)), color) for pts, color in series if pts]
    allp = [p for pts, _ in series for p in pts]
    if not allp:
        return None
    x0, x1 = min(p[0] for p in allp), max(p[0] for p in allp)
    img, draw = _canvas(size)
    frame = _Frame(draw, size, (min(p[1] for p in allp), max(p[1] for p in allp)), (f"{x0:g}", f"{x1:g}"), xname)
    for pts, color in series:
        scaled = [(frame.x((x - x0) / (x1 - x0) if x1 > x0 else 0.5), frame.y(y)) for x, y in pts]
        if len(scaled) > 1:
            draw.line(scaled, fill=color, width=1)
        if color == ACCENT or len(scaled) == 1:
            for x, y in scaled:
                draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=color)
    return _tiny_png(img)


def _loss_points(rows: list[Mapping[str, Any]], key: str) -> list[tuple[float, float]]:
    return [(float(r["step"]), float(r[key])) for r in rows if r.get(key) is not None]


def loss_sparkline_png(curve: Iterable[Mapping[str, Any]], size: tuple[int, int] = INLINE_SIZES[0]) -> bytes | None:
    """A small loss plot with axes: train loss per step (dark line), eval loss (orange points on
    a line), the loss range on the y axis, the steps on the x axis. ``None`` when no row carries a
    loss."""
    rows = list(curve or [])
    return line_chart_png([(_loss_points(rows, "train_loss"), DARK), (_loss_points(rows, "eval_loss"), ACCENT)],
                          size, "step")


LOSS_CAPTION = "train loss (line), eval loss (orange points)"


def loss_inline_md(curve: Iterable[Mapping[str, Any]], alt: str = "loss per step") -> str:
    """The loss plot as markdown short enough for Dagster to show in the metadata table."""
    rows = list(curve or [])
    if loss_sparkline_png(rows, INLINE_SIZES[-1]) is None:
        return f"_{alt}: nothing to plot_"
    return fit_inline(lambda size: loss_sparkline_png(rows, size), alt, caption=LOSS_CAPTION)


def bar_chart_png(labels: Sequence[str], groups: Sequence[Sequence[float]], size: tuple[int, int], xname: str = "",
                  colors: Sequence[int] = (DARK, ACCENT), palette=_PALETTE, show_values: bool = False) -> bytes | None:
    """Bars on labelled axes: one slot per label, one bar per series in it (``groups[i][j]``:
    label ``i``, series ``j``), the count range on the y axis, the first and last label (or every
    label when few) under the x axis. ``None`` when every value is zero."""
    if not groups or not any(v for g in groups for v in g):
        return None
    peak = max(v for g in groups for v in g)
    img, draw = _canvas(size, palette)
    every = len(labels) <= 4
    frame = _Frame(draw, size, (0, peak), ("", "") if every else (labels[0], labels[-1]), "" if every else xname,
                   ylabels=(f"{peak:g}", "0"))
    slot = (frame.right - frame.left - 2) / len(groups)
    width = max(int(slot * 0.8 / max(len(g) for g in groups)), 1)
    f = _font()
    for i, g in enumerate(groups):
        cx = frame.left + 1 + slot * i + (slot - width * len(g)) / 2
        for j, v in enumerate(g):
            if v > 0:
                x = cx + width * j
                draw.rectangle([x, frame.y(v), x + width - 1, frame.bottom - 1], fill=colors[j % len(colors)])
        if every:
            text = f"{labels[i]} {fmt_count(g[0])}" if show_values and len(g) == 1 else labels[i]
            draw.text((frame.left + 1 + slot * i + (slot - _text_width(text)) / 2, frame.bottom + 2), text,
                      font=f, fill=DARK)
    return _tiny_png(img)


def fmt_count(v: float) -> str:
    return f"{v:g}"


OUTCOMES_CAPTION = "adapter vs base model, both orders"


def outcome_bar_png(wins: int, ties: int, losses: int, size: tuple[int, int] = INLINE_SIZES[0]) -> bytes | None:
    """Three bars with their counts: adapter wins (green), ties (dark), losses (orange). ``None``
    for no items."""
    if wins + ties + losses <= 0:
        return None
    return _outcomes(wins, ties, losses, size)


def _outcomes(wins: int, ties: int, losses: int, size: tuple[int, int]) -> bytes:
    img, draw = _canvas(size, _OUTCOME_PALETTE)
    f = _font()
    values = (("wins", wins, 3), ("ties", ties, DARK), ("losses", losses, ACCENT))
    peak = max(wins, ties, losses)
    frame = _Frame(draw, size, (0, peak), ("", ""), "", ylabels=(f"{peak}", "0"))
    slot = (frame.right - frame.left - 2) / 3
    for i, (name, v, color) in enumerate(values):
        x = frame.left + 1 + slot * i + slot * 0.15
        if v > 0:
            draw.rectangle([x, frame.y(v), x + slot * 0.7, frame.bottom - 1], fill=color)
        text = f"{name} {v}"
        draw.text((frame.left + 1 + slot * i + (slot - _text_width(text)) / 2, frame.bottom + 2), text, font=f,
                  fill=DARK)
    return _tiny_png(img)


def outcome_inline_md(wins: int, ties: int, losses: int, alt: str = "pairwise outcomes") -> str:
    """The outcome bars as markdown short enough for Dagster to show in the metadata table."""
    if wins + ties + losses <= 0:
        return f"_{alt}: nothing to plot_"
    return fit_inline(lambda size: outcome_bar_png(wins, ties, losses, size), alt, caption=OUTCOMES_CAPTION)


SCORES_CAPTION = "judge score 1-10: base (dark), adapter (orange)"


def scores_inline_md(base_scores: Sequence[Any], adapter_scores: Sequence[Any], alt: str = "judge scores") -> str:
    """Per-reply judge scores (1-10) as paired bars, base (dark) and adapter (orange), inline."""
    series = [pd.to_numeric(pd.Series(list(v), dtype=object), errors="coerce").dropna().round().astype(int)
              for v in (base_scores, adapter_scores)]
    groups = [[int((s == k).sum()) for s in series] for k in range(1, 11)]
    if not any(v for g in groups for v in g):
        return f"_{alt}: nothing to plot_"
    labels = [str(k) for k in range(1, 11)]
    return fit_inline(lambda size: bar_chart_png(labels, groups, size, "score"), alt, caption=SCORES_CAPTION)


LENGTHS_CAPTION = "reply length in characters: base (dark), adapter (orange)"


def lengths_inline_md(base: Sequence[Any], adapter: Sequence[Any], alt: str = "reply lengths", bins: int = 12) -> str:
    """Histograms of reply lengths (characters), base (dark) and adapter (orange), inline."""
    lens = [pd.Series(list(v), dtype=object).fillna("").astype(str).str.len() for v in (base, adapter)]
    if not any(len(n) for n in lens):
        return f"_{alt}: nothing to plot_"
    lo = min(int(n.min()) for n in lens if len(n))
    hi = max(int(n.max()) for n in lens if len(n))
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)] if hi > lo else [lo - 0.5, lo + 0.5]
    import numpy as np

    counts = [np.histogram(n, bins=edges)[0] if len(n) else np.zeros(len(edges) - 1, int) for n in lens]
    groups = [[int(c[i]) for c in counts] for i in range(len(edges) - 1)]
    labels = [str(lo)] + [""] * (len(groups) - 2) + [str(hi)] if len(groups) > 1 else [str(lo)]
    return fit_inline(lambda size: bar_chart_png(labels, groups, size, "chars"), alt, caption=LENGTHS_CAPTION)


WIN_RATES_CAPTION = "win rate vs the base model (dot) with its interval (line); dashed: 0.5, no difference"


def win_rates_inline_png(rows: Sequence[Mapping[str, Any]], size: tuple[int, int]) -> bytes | None:
    """One row per experiment (at most 8): its name, its win rate as a dot on its interval, on a
    0-1 axis with a mark at 0.5."""
    rows = [r for r in rows if r.get("win_rate") is not None][:8]
    if not rows:
        return None
    f = _font()
    names = [str(r["experiment"])[:14] + (" *" if r.get("champion") else "") for r in rows]
    w = size[0]
    h = 12 * len(rows) + 16
    img, draw = _canvas((w, h))
    left = max(_text_width(n) for n in names) + 4
    right = w - 6
    bottom = h - 13

    def x(v: float) -> float:
        return left + (right - left) * min(max(float(v), 0.0), 1.0)

    for i, (name, r) in enumerate(zip(names, rows, strict=True)):
        y = 6 + 12 * i
        draw.text((0, y - 5), name, font=f, fill=DARK)
        lo = r.get("ci_low") if r.get("ci_low") is not None else r["win_rate"]
        hi = r.get("ci_high") if r.get("ci_high") is not None else r["win_rate"]
        draw.line([(x(lo), y), (x(hi), y)], fill=DARK)
        draw.rectangle([x(r["win_rate"]) - 2, y - 2, x(r["win_rate"]) + 2, y + 2], fill=ACCENT)
    draw.line([(left, bottom), (right, bottom)], fill=DARK)
    for yy in range(0, bottom, 3):
        draw.point((x(0.5), yy), fill=GREY)
    for v, text in ((0.0, "0"), (0.5, "0.5"), (1.0, "1")):
        draw.text((min(x(v) - _text_width(text) / 2, w - _text_width(text)), bottom + 2), text, font=f, fill=DARK)
    return _tiny_png(img)


def win_rates_inline_md(rows: Sequence[Mapping[str, Any]], alt: str = "win rates") -> str:
    """The experiments' win rates with their intervals, inline (``*``: the champion)."""
    if win_rates_inline_png(rows, INLINE_SIZES[-1]) is None:
        return f"_{alt}: nothing to plot_"
    return fit_inline(lambda size: win_rates_inline_png(rows, size), alt,
                      caption=WIN_RATES_CAPTION + ("; * champion" if any(r.get("champion") for r in rows) else ""))


# --------------------------------------------------------------------------- training


def loss_curve_png(curve: Iterable[Mapping[str, Any]], title: str = "Loss per step") -> bytes | None:
    """Train and eval loss per step from rows ``{"step", "train_loss", "eval_loss"}``
    (``training.curves.loss_curve``); ``None`` when no row carries a loss."""
    rows = list(curve or [])
    tr = [(int(r["step"]), float(r["train_loss"])) for r in rows if r.get("train_loss") is not None]
    ev = [(int(r["step"]), float(r["eval_loss"])) for r in rows if r.get("eval_loss") is not None]
    if not tr and not ev:
        return None
    fig, ax = _figure()
    if tr:
        ax.plot(*zip(*tr, strict=True), color=BASE_COLOR, label="train loss")
    if ev:
        ax.plot(*zip(*ev, strict=True), color="#e76f51", marker="o", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


# --------------------------------------------------------------------------- evaluation


def outcomes_png(wins: int, ties: int, losses: int) -> bytes:
    fig, ax = _figure()
    ax.bar(["adapter wins", "ties", "adapter loses"], [wins, ties, losses], color=list(OUTCOME_COLORS))
    ax.set_ylabel("items")
    ax.set_title("Pairwise outcomes (both orders)")
    return _png(fig)


def scores_png(base_scores: Sequence[Any], adapter_scores: Sequence[Any]) -> bytes | None:
    """Histograms of the per-reply judge scores (1-10), base and adapter overlaid."""
    series = [(pd.to_numeric(pd.Series(list(v), dtype=object), errors="coerce").dropna(), label, color)
              for v, label, color in ((base_scores, "base", BASE_COLOR), (adapter_scores, "adapter", ADAPTER_COLOR))]
    if all(s.empty for s, _, _ in series):
        return None
    fig, ax = _figure()
    bins = [x + 0.5 for x in range(11)]
    for s, label, color in series:
        if len(s):
            ax.hist(s.astype(float), bins=bins, alpha=0.6, label=label, color=color)
    ax.set_xlabel("judge score (1-10)")
    ax.set_ylabel("replies")
    ax.set_title("Score distributions")
    ax.legend()
    return _png(fig)


def lengths_png(texts: Mapping[str, Sequence[Any]], skip_if_empty: Iterable[str] = ("real reply",)) -> bytes | None:
    """Histograms of reply lengths in characters, one per label (``{"base": [...], ...}``); a
    label in ``skip_if_empty`` whose texts are all empty is left out (no reference replies).
    Bins span the observed lengths only."""
    colors = {"base": BASE_COLOR, "adapter": ADAPTER_COLOR}
    lens = {}
    for label, values in texts.items():
        n = pd.Series(list(values), dtype=object).fillna("").astype(str).str.len()
        if len(n) and (label not in set(skip_if_empty) or n.sum() > 0):
            lens[label] = n
    if not lens:
        return None
    lo = min(int(v.min()) for v in lens.values())
    hi = max(int(v.max()) for v in lens.values())
    bins = 20 if hi > lo else [lo - 0.5, lo + 0.5]
    fig, ax = _figure()
    for label, n in lens.items():
        ax.hist(n, bins=bins, range=(lo, hi) if hi > lo else None, alpha=0.5, label=label,
                color=colors.get(label, REFERENCE_COLOR))
    ax.set_xlabel("characters")
    ax.set_ylabel("replies")
    ax.set_title("Reply lengths")
    ax.legend()
    return _png(fig)


def win_rates_png(rows: Sequence[Mapping[str, Any]], title: str = "Win rate vs the base model") -> bytes | None:
    """One horizontal bar per experiment: its win rate with the interval; 0.5 = no difference.

    ``rows``: ``{"experiment", "win_rate", "ci_low", "ci_high", "champion"}`` (None values skip)."""
    rows = [r for r in rows if r.get("win_rate") is not None]
    if not rows:
        return None
    fig, ax = _figure((6.0, 0.45 * len(rows) + 1.2))
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows, strict=True):
        lo = r.get("ci_low") if r.get("ci_low") is not None else r["win_rate"]
        hi = r.get("ci_high") if r.get("ci_high") is not None else r["win_rate"]
        color = "#2e7d32" if r.get("champion") else "#1565c0"
        ax.plot([lo, hi], [y, y], color=color, linewidth=2)
        ax.plot([r["win_rate"]], [y], "o", color=color)
    ax.axvline(0.5, color="#888", linestyle="--", linewidth=1)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{r['experiment']}{' (champion)' if r.get('champion') else ''}" for r in rows])
    ax.set_xlim(0, 1)
    ax.set_xlabel("win rate (ties count half) with its interval")
    ax.set_title(title)
    return _png(fig)


def report_plots(stats: Mapping[str, Any], items: pd.DataFrame) -> dict[str, bytes]:
    """The evaluation report's plots by file name: ``outcomes.png`` always; ``scores.png`` and
    ``lengths.png`` when there are items (and something to draw)."""
    out = {"outcomes.png": outcomes_png(int(stats.get("wins", 0) or 0), int(stats.get("ties", 0) or 0),
                                        int(stats.get("losses", 0) or 0))}
    if items is not None and len(items):
        scores = scores_png(items.get("base_score", []), items.get("adapter_score", []))
        if scores:
            out["scores.png"] = scores
        texts = {label: items[col] for col, label in (("base_reply", "base"), ("adapter_reply", "adapter"),
                                                       ("reference", "real reply")) if col in items}
        lengths = lengths_png(texts)
        if lengths:
            out["lengths.png"] = lengths
    return out
