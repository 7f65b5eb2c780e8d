"""core/plots: small valid PNGs, a data-URI markdown image, and the report drawing the same bytes."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

from replyassets.core.plots import (
    INLINE_MD_LIMIT,
    INLINE_SIZES,
    PNG_SIGNATURE,
    data_uri,
    fit_inline,
    image_md,
    lengths_inline_md,
    lengths_png,
    loss_curve_png,
    loss_inline_md,
    loss_sparkline_png,
    outcome_inline_md,
    outcomes_png,
    report_plots,
    scores_inline_md,
    scores_png,
    win_rates_inline_md,
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


@pytest.mark.slow  # over 3 s (make check is the fast tier)
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


@pytest.mark.slow  # over 3 s (make check is the fast tier)
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

    m = re.match(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert m, md[:80]
    return Image.open(io.BytesIO(base64.b64decode(m.group(1))))


def _long_noisy_curve(n: int, seed: int = 0) -> list[dict]:
    import random

    rng = random.Random(seed)
    return [{"step": i, "train_loss": 7.6 - 0.002 * i + rng.gauss(0, 0.05),
             "eval_loss": 7.6 - 0.002 * i if i % 25 == 0 else None} for i in range(1, n + 1)]


def _colors(img) -> set:
    return {img.getpixel((x, y)) for x in range(img.size[0]) for y in range(img.size[1])}


def _inline_mds() -> dict[str, str]:
    rows = [{"experiment": "default", "win_rate": 0.62, "ci_low": 0.5, "ci_high": 0.73, "champion": True},
            {"experiment": "sft-dpo", "win_rate": 0.45, "ci_low": 0.3, "ci_high": 0.6},
            {"experiment": "a-very-long-experiment-name", "win_rate": 0.51}]
    return {
        "loss": loss_inline_md(CURVE),
        "long loss": loss_inline_md(_long_noisy_curve(2000, seed=1)),
        "outcomes": outcome_inline_md(23, 5, 12),
        "scores": scores_inline_md([3, 4, 5, 5, 9, 1], [6, 7, 7, 8, 10, 2]),
        "lengths": lengths_inline_md(["ok", "a longer reply", "x" * 230], ["fine", "x" * 80]),
        "win rates": win_rates_inline_md(rows),
    }


def test_inline_plots_stay_under_the_ui_inline_limit_and_carry_axes():
    """Dagster shows a markdown value in the metadata table only under 1,000 characters: every
    inline plot (data URI and caption) stays under it, decodes, and is a 2-bit palette image
    large enough for its axis labels (Pillow's bitmap font: digits a reader can read)."""
    assert INLINE_MD_LIMIT == 1000
    for name, md in _inline_mds().items():
        assert len(md) < INLINE_MD_LIMIT, (name, len(md))
        img = _decoded(md)
        assert img.mode == "P" and img.size[0] >= INLINE_SIZES[-1][0] and img.size[1] >= 40, (name, img.size)
        assert len(_colors(img)) >= 3, name                       # text/axes, a second color, background
    img = _decoded(loss_inline_md(CURVE))
    assert img.size == INLINE_SIZES[0]                             # a short curve fits at the largest size
    assert "train loss" in loss_inline_md(CURVE)                   # the caption names the lines
    assert "nothing to plot" in loss_inline_md([]) and "nothing to plot" in outcome_inline_md(0, 0, 0)
    assert "nothing to plot" in scores_inline_md([], []) and "nothing to plot" in win_rates_inline_md([])


def test_inline_loss_plot_labels_its_axes_with_the_data_range():
    """The y axis is labelled with the loss range (top: the highest, bottom: the lowest): the
    label pixels differ between two curves whose ranges differ, and match for the same range."""
    a = _decoded(loss_inline_md(CURVE))
    shifted = [{**r, "train_loss": r["train_loss"] + 1 if r["train_loss"] else None,
                "eval_loss": r["eval_loss"] + 1 if r["eval_loss"] else None} for r in CURVE]
    b = _decoded(loss_inline_md(shifted))
    label_box = (0, 0, 30, a.size[1])
    assert a.crop(label_box).tobytes() != b.crop(label_box).tobytes()
    # the plotted lines themselves are the same shape: only the labels moved
    assert a.size == b.size


def test_inline_plot_drops_resolution_until_it_fits():
    sizes = ((240, 80), (120, 40), (60, 20))
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
