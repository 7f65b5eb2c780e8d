"""The tweet is the unit of evaluation: per-tweet aggregation, the cluster bootstrap, power."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from replyassets.core.stats import (
    bootstrap_ci,
    cluster_bootstrap_ci,
    compute_stats,
    paired_power,
    required_units,
    verdict,
)
from replyassets.settings import EvaluationSettings

S = EvaluationSettings(bootstrap_resamples=2000)


def frame(outcomes, base, adapter, tweet_ids=None, base_len=None, adapter_len=None):
    n = len(outcomes)
    df = pd.DataFrame({
        "item_id": [str(i) for i in range(n)],
        "outcome": outcomes,
        "position_flip": [False] * n,
        "base_score": base, "adapter_score": adapter,
        "base_len": base_len if base_len is not None else [50] * n,
        "adapter_len": adapter_len if adapter_len is not None else [50] * n,
        "tokens": [10] * n, "cost_usd": [0.001] * n,
    })
    if tweet_ids is not None:
        df["tweet_id"] = tweet_ids
    return df


def repeated_tweet_case() -> pd.DataFrame:
    """3 tweets: t1 judged 5 times (5 wins, e.g. 5 decoding seeds), t2 and t3 once (a loss each)."""
    return frame(
        ["win"] * 5 + ["loss", "loss"],
        base=[4, 4, 4, 4, 4, 5, 6],
        adapter=[6, 7, 8, 7, 7, 4, 6.5],
        tweet_ids=["t1"] * 5 + ["t2", "t3"],
    )


# --------------------------------------------------------------------------- hand-made case


def test_repeated_tweet_counts_once():
    df = repeated_tweet_case()
    per_row = compute_stats(df, S, unit_col=None)
    per_tweet = compute_stats(df, S)
    # per row: 5 wins of 7 rows; per tweet: t1 = 1, t2 = 0, t3 = 0 -> 1/3
    assert per_row["win_rate"] == pytest.approx(5 / 7)
    assert per_tweet["win_rate"] == pytest.approx(1 / 3)
    assert (per_tweet["n_items"], per_tweet["n_valid"], per_tweet["n_tweets"]) == (7, 7, 3)
    assert (per_row["n_tweets"], per_row["unit"], per_tweet["unit"]) == (7, "row", "tweet_id")
    # counts stay per row (what the report's table shows)
    assert (per_tweet["wins"], per_tweet["ties"], per_tweet["losses"]) == (5, 0, 2)
    assert per_tweet["n_scored"] == 7 and per_tweet["n_scored_tweets"] == 3
    # scores: per-tweet means base [4, 5, 6], adapter [7, 4, 6.5], differences [3, -1, 0.5]
    assert per_row["base_score_mean"] == pytest.approx(31 / 7)
    assert per_row["adapter_score_mean"] == pytest.approx(45.5 / 7)
    assert per_tweet["base_score_mean"] == pytest.approx(5.0)
    assert per_tweet["adapter_score_mean"] == pytest.approx(17.5 / 3)
    assert per_tweet["score_diff_mean"] == pytest.approx(2.5 / 3)
    assert per_tweet["relative_improvement"] == pytest.approx((17.5 / 3 - 5) / 5)  # 1/6
    diff = np.array([3.0, -1.0, 0.5])
    # dz by hand: sd([3, -1, 0.5]) = sqrt(((13/6)^2 + (11/6)^2 + (1/3)^2) / 2) = sqrt(49/12)
    assert per_tweet["cohens_dz"] == pytest.approx((2.5 / 3) / math.sqrt(49 / 12))
    # pooled d on the per-tweet means: var([7, 4, 6.5]) = (49/36 + 121/36 + 16/36) / 2 = 31/12,
    # var([4, 5, 6]) = 1, pooled variance (2 * 31/12 + 2 * 1) / 4 = 43/24
    a, b = np.array([7.0, 4.0, 6.5]), np.array([4.0, 5.0, 6.0])
    assert per_tweet["cohens_d"] == pytest.approx((5 / 6) / math.sqrt(43 / 24))
    w = st.wilcoxon(diff, alternative="two-sided")
    assert (per_tweet["wilcoxon_stat"], per_tweet["wilcoxon_p"]) == pytest.approx((w.statistic, w.pvalue))
    # exact: |d| ranks 3 (for 3), 2 (for -1), 1 (for 0.5): W+ = 4, W- = 2; of the 8 equally likely
    # sign patterns, W+ <= 2 in 3 (sums 0, 1, 2) -> two-sided p = 2 * 3/8
    assert per_tweet["wilcoxon_stat"] == 2.0 and per_tweet["wilcoxon_p"] == pytest.approx(0.75)
    mw = st.mannwhitneyu(a, b, alternative="two-sided")
    assert per_tweet["mannwhitney_p"] == pytest.approx(mw.pvalue)
    # the interval resamples whole tweets: every resample mean is k/3 (k = times t1 was drawn),
    # so the bounds are on that grid, here the whole range [0, 1]; the per-row interval is
    # narrower and never reaches 0 with 5 wins in 7 rows only by resampling rows
    assert (per_tweet["win_rate_ci_low"], per_tweet["win_rate_ci_high"]) == (0.0, 1.0)
    assert per_row["win_rate_ci_low"] > 0.2
    assert per_tweet["power_d03"] == pytest.approx(paired_power(0.3, 3, 0.05))
    assert per_tweet["tweets_needed_d03"] == 90 and per_tweet["power_effect_size"] == 0.3
    json.dumps([per_row, per_tweet], allow_nan=False)


def test_cluster_interval_draws_whole_tweets():
    df = repeated_tweet_case()
    y = df["outcome"].map({"win": 1.0, "loss": 0.0}).to_numpy()
    grid = {0.0, 1 / 3, 2 / 3, 1.0}
    for seed in range(5):
        lo, hi = cluster_bootstrap_ci(y, df["tweet_id"], 200, seed, confidence=0.5)
        assert any(lo == pytest.approx(g) for g in grid) and any(hi == pytest.approx(g) for g in grid)
    # row-weighted ("pooled"): a resample with a copies of t1 and 3 - a of the others gives
    # 5a / (5a + 3 - a): 0, 5/7, 10/11, 1
    pooled = {0.0, 5 / 7, 10 / 11, 1.0}
    for seed in range(5):
        lo, hi = cluster_bootstrap_ci(y, df["tweet_id"], 200, seed, confidence=0.5, stat="pooled")
        assert any(lo == pytest.approx(g) for g in pooled) and any(hi == pytest.approx(g) for g in pooled)


@pytest.mark.parametrize("stat", ["mean", "pooled"])
def test_one_row_per_cluster_is_the_ordinary_bootstrap(stat):
    rng = np.random.default_rng(11)
    values = rng.choice([0.0, 0.5, 1.0], 40)
    clusters = [f"t{i}" for i in range(40)]
    got = cluster_bootstrap_ci(values, clusters, 1000, 5, stat=stat)
    assert got == bootstrap_ci(values, 1000, 5)
    ref = st.bootstrap((values,), np.mean, n_resamples=1000, method="percentile",
                       rng=np.random.default_rng(5), vectorized=True).confidence_interval
    assert got == pytest.approx((ref.low, ref.high))


def test_cluster_bootstrap_degenerate_and_bad_input():
    assert cluster_bootstrap_ci([1.0, 0.0, 1.0], ["a", "a", "a"], 100, 0) == (None, None)  # one cluster
    assert cluster_bootstrap_ci([], [], 100, 0) == (None, None)
    assert cluster_bootstrap_ci([0.5, 0.5, 0.5], ["a", "b", "b"], 100, 0) == (0.5, 0.5)
    assert cluster_bootstrap_ci([0.5, 0.5, 0.5], ["a", "b", "b"], 100, 0, stat="pooled") == (0.5, 0.5)
    with pytest.raises(ValueError, match="aligned"):
        cluster_bootstrap_ci([1.0, 0.0], ["a"], 100, 0)
    with pytest.raises(ValueError, match="stat"):
        cluster_bootstrap_ci([1.0, 0.0], ["a", "b"], 100, 0, stat="median")
    with pytest.raises(ValueError, match="cluster id"):
        cluster_bootstrap_ci([1.0, 0.0], ["a", None], 100, 0)


def test_duplicating_rows_changes_nothing_per_tweet():
    """Judging every tweet 4 times with identical results is 4x the rows, the same evidence."""
    rng = np.random.default_rng(2)
    n = 25
    base = rng.integers(2, 8, n).astype(float)
    adapter = np.clip(base + rng.integers(-1, 3, n), 1, 10).astype(float)
    out = rng.choice(["win", "tie", "loss"], n, p=[0.5, 0.2, 0.3]).tolist()
    once = frame(out, base, adapter, tweet_ids=[f"t{i}" for i in range(n)])
    four = pd.concat([once] * 4, ignore_index=True)
    r1, r4 = compute_stats(once, S), compute_stats(four, S)
    same = ["win_rate", "win_rate_ci_low", "win_rate_ci_high", "wilcoxon_p", "mannwhitney_p", "cohens_d",
            "cohens_dz", "relative_improvement", "score_diff_ci_low", "score_diff_ci_high", "n_tweets",
            "power_d03", "insufficient_data"]
    assert {k: r4[k] for k in same} == pytest.approx({k: r1[k] for k in same})
    assert r4["n_items"] == 4 * r1["n_items"] and r4["wins"] == 4 * r1["wins"]
    # one row per tweet with tweet ids gives today's per-row numbers exactly
    per_row = compute_stats(once.drop(columns="tweet_id"), S)
    assert {k: per_row[k] for k in same} == {k: r1[k] for k in same}
    # the per-row analysis of the duplicated rows is overconfident: a narrower interval, a smaller p
    naive = compute_stats(four, S, unit_col=None)
    assert naive["win_rate_ci_high"] - naive["win_rate_ci_low"] < 0.7 * (r4["win_rate_ci_high"] - r4["win_rate_ci_low"])
    assert naive["wilcoxon_p"] < r4["wilcoxon_p"]


def test_tweet_ids_and_invalid_rows():
    # invalid rows are dropped before aggregating: t2 has one invalid and one win row
    df = frame(["win", "invalid", "win", "loss"], [3, np.nan, 4, 5], [6, np.nan, 5, 4],
               tweet_ids=["t1", "t2", "t2", "t3"])
    r = compute_stats(df, S)
    assert r["n_items"] == 4 and r["n_valid"] == 3 and r["n_tweets"] == 3 and r["n_scored_tweets"] == 3
    assert r["win_rate"] == pytest.approx(2 / 3)
    # integer and string ids name the same tweet; a missing id is its own unit (flagged)
    df2 = frame(["win", "loss", "win"], [3, 4, 5], [5, 4, 6], tweet_ids=[7, "7", None])
    r2 = compute_stats(df2, S)
    assert r2["n_tweets"] == 2 and "missing_unit_ids" in r2["flags"]
    assert r2["win_rate"] == pytest.approx((0.5 + 1.0) / 2)


def test_one_tweet_is_insufficient_however_many_rows():
    df = frame(["win"] * 6, [3.0] * 6, [8.0, 9, 7, 8, 9, 8], tweet_ids=["t1"] * 6)
    r = compute_stats(df, S)
    assert r["n_tweets"] == 1 and r["insufficient_data"] and "single_unit" in r["flags"]
    assert r["win_rate"] == 1.0 and r["win_rate_ci_low"] is None and r["wilcoxon_p"] is None
    assert r["power_d03"] == 0.0
    assert verdict(r, S)["label"] == "insufficient data"
    assert compute_stats(df, S, unit_col=None)["insufficient_data"] is False
    json.dumps(r, allow_nan=False)


# --------------------------------------------------------------------------- power


def test_required_units_matches_gpower():
    # G*Power 3.1, t tests - means: difference from constant (one sample case), two tails,
    # alpha 0.05, power 0.80: d = 0.3 -> 90, d = 0.5 -> 34, d = 0.8 -> 15
    assert required_units(0.3) == 90
    assert required_units(0.3, 0.8, 0.05) == 90
    assert required_units(0.5) == 34 and required_units(0.8) == 15
    assert required_units(-0.3) == 90
    assert paired_power(0.3, 89) < 0.8 <= paired_power(0.3, 90)
    assert paired_power(0.3, 90) == pytest.approx(0.8038, abs=5e-4)  # G*Power's "actual power"
    assert paired_power(0.5, 34) == pytest.approx(0.8078, abs=5e-4)
    assert required_units(0.3, 0.9) > 90 and required_units(0.3, 0.8, 0.01) > 90


def test_paired_power_edges_and_simulation():
    assert paired_power(0.0, 50) == pytest.approx(0.05)
    assert paired_power(0.3, 1) == 0.0 and paired_power(0.3, 0) == 0.0
    assert paired_power(0.4, 30) == pytest.approx(paired_power(-0.4, 30))
    powers = [paired_power(0.3, n) for n in (10, 20, 40, 80, 160)]
    assert powers == sorted(powers) and powers[-1] > 0.95
    # Monte Carlo: the share of simulated paired samples the t test rejects
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 1.0, (4000, 30))
    p = st.ttest_1samp(x, 0.0, axis=1).pvalue
    assert (p < 0.05).mean() == pytest.approx(paired_power(0.5, 30), abs=0.02)
    for bad in (lambda: required_units(0.0), lambda: required_units(0.3, 1.0), lambda: required_units(0.3, 0.01),
                lambda: paired_power(0.3, 10, alpha=0.0), lambda: paired_power(float("nan"), 10)):
        with pytest.raises(ValueError):
            bad()


def test_power_follows_settings():
    df = repeated_tweet_case()
    r = compute_stats(df, EvaluationSettings(bootstrap_resamples=200, min_cohens_d=0.5, alpha=0.05))
    assert r["power_effect_size"] == 0.5 and r["tweets_needed_d03"] == 34
    assert r["power_d03"] == pytest.approx(paired_power(0.5, 3))
