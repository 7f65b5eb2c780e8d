"""core/plots: small valid PNGs, a data-URI markdown image, and the report drawing the same bytes."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd

from replyassets.core.plots import (
    INLINE_MD_LIMIT,
    INLINE_SIZES,
    PNG_SIGNATURE,
    data_uri,
    fit_inline,
    image_md,
    lengths_png,
    loss_curve_png,
    loss_inline_md,
    loss_sparkline_png,
    outcome_inline_md,
    outcomes_png,
    report_plots,
    scores_png,
)

CURVE = [
    {"step": 1, "train_loss": 7.61, "eval_loss": None, "gap": None},
    {"step": 10, "train_loss": 7.60, "eval_loss": None, "gap": None},
    {"step": 20, "train_loss": 7.59, "eval_loss": 7.595, "gap": 0.005},
    {"step": 40, "train_loss": 7.57, "eval_loss": 7.569, "gap": -0.001},
]
MAX_PNG_BYTES = 60_000  # a few tens of KB: fine inside a metadata value


def _is_png(b: bytes | None) -> bool:
    return bool(b) and b[:8] == PNG_SIGNATURE


def test_every_plot_is_a_small_valid_png():
    pngs = {
        "loss": loss_curve_png(CURVE),
        "outcomes": outcomes_png(5, 2, 3),
        "scores": scores_png([3, 4, 5, 5], [6, 7, 7, 8]),
        "lengths": lengths_png({"base": ["ok", "a longer reply"], "adapter": ["fine", "x" * 80]}),
    }
    for name, png in pngs.items():
        assert _is_png(png), name
        assert 1_000 < len(png) < MAX_PNG_BYTES, (name, len(png))
        # IHDR width: 80 dpi keeps the picture small (400 px wide before the tight crop)
        width = int.from_bytes(png[16:20], "big")
        assert 200 < width <= 420, (name, width)


def test_same_data_same_bytes():
    assert loss_curve_png(CURVE) == loss_curve_png(CURVE)


def test_nothing_to_plot_is_none_not_an_empty_figure():
    assert loss_curve_png([]) is None
    assert loss_curve_png([{"step": 1, "train_loss": None, "eval_loss": None}]) is None
    assert scores_png([], [None]) is None
    assert lengths_png({"real reply": ["", ""]}) is None
    assert _is_png(loss_curve_png([{"step": 4, "train_loss": None, "eval_loss": 2.0}]))  # eval only


def test_image_md_is_a_data_uri_markdown_image():
    png = outcomes_png(1, 0, 0)
    md = image_md(png, "pairwise [outcomes]")
    m = re.fullmatch(r"!\[([^\]]*)\]\((data:image/png;base64,([A-Za-z0-9+/=]+))\)", md)
    assert m, md[:80]
    assert m.group(1) == "pairwise (outcomes)"  # brackets in the alt text would end the link
    assert m.group(2) == data_uri(png)
    assert base64.b64decode(m.group(3)) == png
    assert image_md(None, "loss curve") == "_loss curve: nothing to plot_"


def test_report_plots_names_and_the_report_writes_the_same_bytes(tmp_path):
    from replyassets.core.report import write_report

    items = pd.DataFrame({
        "item_id": ["a", "b", "c"], "outcome": ["win", "tie", "loss"],
        "base_reply": ["ok", "fine then", "no"], "adapter_reply": ["sure thing", "ok", "maybe not"],
        "reference": ["", "", ""], "base_score": [3.0, 5.0, 6.0], "adapter_score": [6.0, 5.0, 4.0],
    })
    stats = {"wins": 1, "ties": 1, "losses": 1}
    plots = report_plots(stats, items)
    assert set(plots) == {"outcomes.png", "scores.png", "lengths.png"}
    assert set(report_plots(stats, items.iloc[:0])) == {"outcomes.png"}
    paths = write_report(tmp_path / "rep", stats, items, {}, {"run_id": "r"})
    for name, path in paths["plots"].items():
        assert Path(path).read_bytes() == plots[name], name


# --------------------------------------------------------------------------- inline plots


def _decoded(md: str):
    import io

    from PIL import Image

    m = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert m, md[:80]
    return Image.open(io.BytesIO(base64.b64decode(m.group(1))))


def _long_noisy_curve(n: int, seed: int = 0) -> list[dict]:
    import random

    rng = random.Random(seed)
    return [{"step": i, "train_loss": 7.6 - 0.002 * i + rng.gauss(0, 0.05),
             "eval_loss": 7.6 - 0.002 * i if i % 25 == 0 else None} for i in range(1, n + 1)]


def test_inline_loss_and_outcomes_stay_under_the_ui_inline_limit():
    """Dagster shows a markdown value in the metadata table only under 1,000 characters: the whole
    value, data URI included, stays under it, and the image decodes."""
    assert INLINE_MD_LIMIT == 1000
    for curve in (CURVE, _long_noisy_curve(150), _long_noisy_curve(2000, seed=1)):
        md = loss_inline_md(curve)
        assert len(md) < INLINE_MD_LIMIT, len(md)
        if md.startswith("!["):
            img = _decoded(md)
            assert img.mode == "P" and img.size in INLINE_SIZES, (img.mode, img.size)
    img = _decoded(loss_inline_md(CURVE))
    assert img.size == INLINE_SIZES[0]                 # a short curve fits at the largest size
    assert len({img.getpixel((x, y)) for x in range(img.size[0]) for y in range(img.size[1])}) >= 3  # lines drawn
    for w, t, lo in ((10, 3, 5), (0, 0, 7), (40, 0, 0)):
        md = outcome_inline_md(w, t, lo)
        assert md.startswith("![") and len(md) < INLINE_MD_LIMIT, len(md)
    assert "nothing to plot" in loss_inline_md([]) and "nothing to plot" in outcome_inline_md(0, 0, 0)


def test_inline_plot_drops_resolution_until_it_fits():
    sizes = ((240, 60), (120, 30), (60, 15))
    drawn = []

    def draw(size):
        drawn.append(size)
        return loss_sparkline_png(_long_noisy_curve(400), size)

    big = len(image_md(loss_sparkline_png(_long_noisy_curve(400), sizes[0]), "loss"))
    small = len(image_md(loss_sparkline_png(_long_noisy_curve(400), sizes[1]), "loss"))
    assert small < big
    md = fit_inline(draw, "loss", sizes, limit=small + 1)      # the largest does not fit, the next does
    assert drawn == [sizes[0], sizes[1]] and _decoded(md).size == sizes[1]
    assert fit_inline(draw, "loss", sizes, limit=50).startswith("_loss: too detailed")
