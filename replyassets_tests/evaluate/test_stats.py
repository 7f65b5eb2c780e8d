"""Statistics against scipy, a hand-computed case, and the degenerate cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from replyassets.core.stats import (
    cohens_d,
    compute_stats,
    distinct_n,
    forgetting_check,
    has_repetition,
    length_controlled_win_rate,
    sanity_stats,
    verdict,
)
from replyassets.settings import EvaluationSettings

S = EvaluationSettings(bootstrap_resamples=2000)


def frame(outcomes, base, adapter, base_len=None, adapter_len=None, flips=None):
    n = len(outcomes)
    return pd.DataFrame({
        "item_id": [str(i) for i in range(n)],
        "outcome": outcomes,
        "position_flip": flips if flips is not None else [False] * n,
        "base_score": base, "adapter_score": adapter,
        "base_len": base_len if base_len is not None else [50] * n,
        "adapter_len": adapter_len if adapter_len is not None else [50] * n,
        "tokens": [10] * n, "cost_usd": [0.001] * n,
    })


def test_hand_computed_case():
    df = frame(["win", "win", "tie", "loss"], [4, 5, 6, 7], [6, 6, 7, 9], flips=[False, False, True, False])
    r = compute_stats(df, S)
    assert (r["wins"], r["ties"], r["losses"]) == (2, 1, 1)
    assert r["win_rate"] == pytest.approx(2.5 / 4)
    assert r["position_bias_rate"] == pytest.approx(0.25)
    assert r["base_score_mean"] == 5.5 and r["adapter_score_mean"] == 7.0
    assert r["relative_improvement"] == pytest.approx(1.5 / 5.5)
    # pooled sd: var_base = 5/3, var_adapter = 2 -> sp^2 = (3*5/3 + 3*2)/6 = 11/6
    assert r["cohens_d"] == pytest.approx(1.5 / math.sqrt(11 / 6))
    se = math.sqrt(8 / 16 + r["cohens_d"] ** 2 / 16)
    assert r["cohens_d_ci_low"] == pytest.approx(r["cohens_d"] - 1.959964 * se, abs=1e-5)
    # paired: diffs [2, 1, 1, 2] -> dz = 1.5 / sd([2,1,1,2])
    assert r["cohens_dz"] == pytest.approx(1.5 / np.std([2, 1, 1, 2], ddof=1))
    # equal lengths: the length-controlled win rate is the plain win rate (up to the tiny ridge)
    assert r["lc_win_rate"] == pytest.approx(0.625, abs=1e-3)
    assert r["total_tokens"] == 40 and r["total_cost_usd"] == pytest.approx(0.004)
    assert r["flags"] == [] and not r["insufficient_data"]
    json.dumps(r, allow_nan=False)


def test_tests_match_scipy():
    rng = np.random.default_rng(7)
    base = rng.integers(1, 8, 30).astype(float)
    adapter = np.clip(base + rng.integers(-1, 4, 30), 1, 10).astype(float)
    out = rng.choice(["win", "tie", "loss"], 30).tolist()
    r = compute_stats(frame(out, base, adapter), S)
    mw = st.mannwhitneyu(adapter, base, alternative="two-sided")
    w = st.wilcoxon(adapter, base, alternative="two-sided")
    assert r["mannwhitney_u"] == pytest.approx(mw.statistic) and r["mannwhitney_p"] == pytest.approx(mw.pvalue)
    assert r["wilcoxon_stat"] == pytest.approx(w.statistic) and r["wilcoxon_p"] == pytest.approx(w.pvalue)
    y = pd.Series(out).map({"win": 1.0, "tie": 0.5, "loss": 0.0}).to_numpy()
    ci = st.bootstrap((y,), np.mean, n_resamples=2000, method="percentile",
                      rng=np.random.default_rng(S.generation_seed), vectorized=True).confidence_interval
    assert (r["win_rate_ci_low"], r["win_rate_ci_high"]) == pytest.approx((ci.low, ci.high))
    assert r["win_rate_ci_low"] <= r["win_rate"] <= r["win_rate_ci_high"]
    assert compute_stats(frame(out, base, adapter), S) == r  # seeded: reproducible


def test_length_controlled_win_rate_discounts_length():
    # the adapter is usually longer and the judge likes length; at equal length it is a coin flip
    rng = np.random.default_rng(3)
    diff = rng.normal(30, 40, 2000)
    x = np.tanh(diff / diff.std())
    y = (rng.random(2000) < 1 / (1 + np.exp(-2.0 * x))).astype(float)
    lc, coef = length_controlled_win_rate(y, diff)
    assert y.mean() > 0.65
    assert abs(lc - 0.5) < 0.05 and 1.5 < coef < 2.5
    y2 = np.r_[np.ones(60), np.zeros(40)]
    lc2, coef2 = length_controlled_win_rate(y2, np.zeros(100))
    assert lc2 == pytest.approx(0.6, abs=1e-3) and coef2 == 0.0


def test_cohens_d_zero_variance():
    assert cohens_d(np.array([5.0, 5.0]), np.array([5.0, 5.0])) == (0.0, 0.0, 0.0)
    assert cohens_d(np.array([6.0, 6.0]), np.array([5.0, 5.0])) == (None, None, None)
    assert cohens_d(np.array([6.0]), np.array([5.0])) == (None, None, None)


def test_degenerate_n0_n1():
    r0 = compute_stats(frame([], [], []), S)
    assert r0["n_valid"] == 0 and r0["win_rate"] is None and r0["insufficient_data"]
    assert "no_valid_items" in r0["flags"]
    v0 = verdict(r0, S)
    assert v0["label"] == "insufficient data" and not v0["passed"]
    r1 = compute_stats(frame(["win"], [3.0], [9.0]), S)
    assert r1["win_rate"] == 1.0 and r1["win_rate_ci_low"] is None and r1["wilcoxon_p"] is None
    assert "single_item" in r1["flags"] and r1["insufficient_data"]
    assert verdict(r1, S)["label"] == "insufficient data"
    json.dumps([r0, r1], allow_nan=False)
    r_empty = compute_stats(pd.DataFrame(), S)
    assert r_empty["n_items"] == 0 and r_empty["insufficient_data"]


def test_all_ties_equal_scores():
    r = compute_stats(frame(["tie"] * 10, [5.0] * 10, [5.0] * 10), S)
    assert r["win_rate"] == 0.5 and (r["win_rate_ci_low"], r["win_rate_ci_high"]) == (0.5, 0.5)
    assert r["wilcoxon_p"] == 1.0 and r["mannwhitney_p"] == 1.0 and r["cohens_d"] == 0.0
    assert {"all_ties", "zero_variance", "all_differences_zero"} <= set(r["flags"])
    v = verdict(r, S)
    assert v["label"] == "not shown better" and not v["passed"] and v["criteria_passed"] == 0
    json.dumps(r, allow_nan=False)


def test_invalid_items_are_excluded_and_counted():
    df = frame(["win", "invalid", "loss", "win"], [3, np.nan, 5, 4], [7, np.nan, 4, 8])
    r = compute_stats(df, S)
    assert r["n_items"] == 4 and r["n_valid"] == 3 and r["n_invalid"] == 1 and r["n_scored"] == 3


def test_verdict_passes_only_when_all_criteria_pass():
    rng = np.random.default_rng(1)
    base = rng.integers(3, 6, 60).astype(float)
    good = compute_stats(frame(["win"] * 45 + ["tie"] * 10 + ["loss"] * 5, base, base + rng.integers(1, 4, 60)), S)
    v = verdict(good, S)
    assert v["passed"] and v["success"] and v["label"] == "adapter better"
    assert all(c["passed"] for c in v["criteria"].values())
    # a small but significant improvement fails the 15 % and d criteria
    small = compute_stats(frame(["win"] * 35 + ["loss"] * 25, base + 5, base + 5 + (rng.random(60) < 0.6)), S)
    v2 = verdict(small, S)
    assert not v2["passed"] and v2["criteria"]["improvement"]["passed"] is False
    # the adapter being significantly WORSE must not pass significance
    worse = compute_stats(frame(["loss"] * 60, base + 3, base), S)
    assert verdict(worse, S)["criteria"]["significance"]["passed"] is False
    assert verdict(compute_stats(frame(["loss"] * 60, base + 3, base), S), S)["label"] == "not shown better"


def test_sanity_tier():
    assert distinct_n(["a b a b"], 1) == 0.5 and distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["", ""], 2) is None
    assert has_repetition("I love it I love it") and not has_repetition("I love it so much")
    s = sanity_stats(["hello there friend", "", "hello there friend"], ["one two three four", "x", "y z"])
    assert s["base"]["empty_rate"] == pytest.approx(1 / 3) and s["base"]["duplicate_rate"] == pytest.approx(2 / 3)
    assert s["adapter"]["chars_max"] == 18.0 and s["adapter"]["n"] == 3
    assert sanity_stats([], [])["base"]["chars_mean"] is None
    f = forgetting_check(10.0, 20.0, S)
    assert f["ratio"] == 2.0 and f["warn"]
    assert not forgetting_check(10.0, 11.0, S)["warn"] and not forgetting_check(None, 5.0, S)["warn"]
