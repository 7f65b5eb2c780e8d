"""The training program's log lines read as figures, not JSON with 16 digits."""

from __future__ import annotations

from replyassets.training.callbacks import log_pairs
from replyassets.training.stages import _g


def test_trainer_log_line_is_key_value_pairs_to_four_significant_digits():
    line = log_pairs({"loss": 6.0487831115722654, "epoch": 1.3333333, "step": 80, "grad_norm": 0.000123456})
    assert line == "epoch=1.333 grad_norm=0.0001235 loss=6.049 step=80"
    assert "{" not in line and '"' not in line


def test_done_line_figures():
    assert _g(6.0487831115722654) == "6.049" and _g(None) == "None" and _g(3) == "3"
