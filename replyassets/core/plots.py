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


# --------------------------------------------------------------------------- inline (tiny) plots

# Dagster's UI renders a markdown metadata value inline only when it is shorter than this.
INLINE_MD_LIMIT = 1000
# Pixel sizes tried in turn, largest first, until the markdown value fits under the limit.
INLINE_SIZES = ((240, 60), (200, 50), (160, 40), (120, 30), (80, 20))
# The 2-bit palette: background, dark, accent, grey.
_PALETTE = ((255, 255, 255), (38, 70, 83), (231, 111, 81), (173, 181, 189))
WHITE, DARK, ACCENT, GREY = range(4)
# The outcome bar's palette: background, win green, loss orange, dark (ties outlined, the 0.5 tick).
_OUTCOME_PALETTE = ((255, 255, 255), (42, 157, 143), (231, 111, 81), (38, 70, 83))


def _tiny_png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True, bits=2)
    return buf.getvalue()


def _canvas(size: tuple[int, int], palette=_PALETTE):
    from PIL import Image

    img = Image.new("P", size, WHITE)
    img.putpalette([c for rgb in palette for c in rgb])
    return img


def fit_inline(draw, alt: str, sizes: Sequence[tuple[int, int]] = INLINE_SIZES, limit: int = INLINE_MD_LIMIT) -> str:
    """``![alt](data:image/png;base64,...)`` of ``draw((width, height))`` at the largest size of
    ``sizes`` whose whole markdown is under ``limit`` characters; a short note when even the
    smallest is not (Dagster would hide it behind a click)."""
    for size in sizes:
        md = image_md(draw(size), alt)
        if len(md) < limit:
            return md
    return f"_{alt}: too detailed to show inline; see the full plot below_"


def _scaled(points: Sequence[tuple[float, float]], xs: tuple[float, float], ys: tuple[float, float],
            size: tuple[int, int], pad: int = 2) -> list[tuple[float, float]]:
    (x0, x1), (y0, y1) = xs, ys
    w, h = size[0] - 1 - 2 * pad, size[1] - 1 - 2 * pad
    return [(pad + (w * (x - x0) / (x1 - x0) if x1 > x0 else w / 2),
             pad + (h * (1 - (y - y0) / (y1 - y0)) if y1 > y0 else h / 2)) for x, y in points]


def loss_sparkline_png(curve: Iterable[Mapping[str, Any]], size: tuple[int, int] = INLINE_SIZES[0]) -> bytes | None:
    """A tiny loss curve: train loss per step as a dark line, eval loss as orange points joined
    by a line; no axes (the full plot and the table have the numbers). ``None`` when no row
    carries a loss."""
    from PIL import ImageDraw

    rows = list(curve or [])
    tr = [(float(r["step"]), float(r["train_loss"])) for r in rows if r.get("train_loss") is not None]
    ev = [(float(r["step"]), float(r["eval_loss"])) for r in rows if r.get("eval_loss") is not None]
    if not tr and not ev:
        return None
    allp = tr + ev
    xs = (min(p[0] for p in allp), max(p[0] for p in allp))
    ys = (min(p[1] for p in allp), max(p[1] for p in allp))
    img = _canvas(size)
    draw = ImageDraw.Draw(img)
    for pts, color in ((tr, DARK), (ev, ACCENT)):
        scaled = _scaled(pts, xs, ys, size)
        if len(scaled) > 1:
            draw.line(scaled, fill=color, width=1)
        if color == ACCENT or len(scaled) == 1:
            for x, y in scaled:
                draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=color)
    return _tiny_png(img)


def loss_inline_md(curve: Iterable[Mapping[str, Any]], alt: str = "loss: train (dark), eval (orange)") -> str:
    """The loss sparkline as markdown short enough for Dagster to show in the metadata table."""
    rows = list(curve or [])
    if loss_sparkline_png(rows, INLINE_SIZES[-1]) is None:
        return f"_{alt}: nothing to plot_"
    return fit_inline(lambda size: loss_sparkline_png(rows, size), alt)


def outcome_bar_png(wins: int, ties: int, losses: int, size: tuple[int, int] = (240, 16)) -> bytes | None:
    """One stacked bar: the share of adapter wins (green), ties (grey) and losses (orange), with
    a dark tick at one half (wins + ties / 2 past it: a win rate above 0.5). ``None`` for no items."""
    from PIL import ImageDraw

    total = wins + ties + losses
    if total <= 0:
        return None
    img = _canvas(size, _OUTCOME_PALETTE)
    draw = ImageDraw.Draw(img)
    w, h = size
    a = round(w * wins / total)
    b = round(w * (wins + ties) / total)
    if a > 0:
        draw.rectangle([0, 2, a - 1, h - 3], fill=1)
    if b > a:
        draw.rectangle([a, 2, b - 1, h - 3], outline=3)
    if w > b:
        draw.rectangle([b, 2, w - 1, h - 3], fill=2)
    draw.line([(w // 2, 0), (w // 2, h - 1)], fill=3, width=1)
    return _tiny_png(img)


def outcome_inline_md(wins: int, ties: int, losses: int,
                      alt: str = "outcomes: adapter wins (green), ties (outlined), losses (orange); tick at 0.5") -> str:
    """The outcome bar as markdown short enough for Dagster to show in the metadata table."""
    if wins + ties + losses <= 0:
        return f"_{alt}: nothing to plot_"
    return fit_inline(lambda size: outcome_bar_png(wins, ties, losses, (size[0], max(8, size[1] // 4))), alt)


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
