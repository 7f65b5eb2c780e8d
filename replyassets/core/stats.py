"""Statistics for the evaluation: is the adapter better than the base model, and by how much.

The unit of evaluation is the tweet
-----------------------------------
``compute_stats(items, settings, unit_col="tweet_id")`` takes the rows of
``core/judging.judge_pairs`` plus a ``tweet_id`` column. Several rows may share a tweet (several
decoding seeds, several prompts of one tweet); those rows are not independent, so every test and
interval works on **per-tweet** values: the rows of a tweet are averaged first (outcome value
win = 1, tie = 0.5, loss = 0; base and adapter scores), then each tweet counts once. Without the
``unit_col`` column every row is its own unit (then nothing below changes with the word
"tweet" read as "row"). A row whose unit id is missing is its own unit (flag
``missing_unit_ids``).

Definitions (invalid items are counted in ``n_invalid`` and excluded):

- Outcome per item, from the adapter's side, after the position swap (see core/judging.py):
  win / tie / loss. ``win_rate`` is the mean over tweets of the per-tweet mean outcome value (ties
  count half, as in AlpacaEval and Chatbot Arena), so 0.5 means "no difference". ``wins``,
  ``ties``, ``losses``, ``tie_rate``, ``decisive_win_rate`` and ``position_bias_rate`` are per row
  (what a reader counts in the table). ``n_items`` counts rows, ``n_tweets`` the tweets with a
  valid verdict.
- ``win_rate_ci``: 95 % percentile **cluster bootstrap** interval (``cluster_bootstrap_ci``: whole
  tweets are resampled, ``bootstrap_resamples`` resamples, seeded with ``generation_seed``).
  ``net_win_rate = win_rate - 0.5`` and its interval are the same interval shifted by 0.5.
- ``lc_win_rate``, length-controlled (AlpacaEval 2 style), per row: a logistic regression
  ``P(adapter preferred) = sigmoid(b0 + b1 * tanh(len_diff / sd(len_diff)))`` with soft labels
  (win 1, tie 0.5, loss 0), fitted by maximum likelihood (scipy.optimize, L-BFGS, a 1e-4 ridge
  so an all-win sample still has a finite fit); the LC win rate is the prediction at equal
  length, ``sigmoid(b0)``. ``lc_length_coef`` (b1) > 0 means longer replies were preferred.
- Scores (1-10, one per reply), on per-tweet means of the rows with both scores
  (``n_scored`` rows, ``n_scored_tweets`` tweets): Mann-Whitney U (two-sided, adapter vs base)
  and Wilcoxon signed-rank (two-sided, per-tweet differences, zero differences dropped: the
  ``wilcox`` method); Cohen's d with the pooled standard deviation and a 95 % normal-approximation
  interval (``se = sqrt((n1+n2)/(n1 n2) + d^2 / (2 (n1+n2)))``); the paired ``cohens_dz``; the mean
  difference with a bootstrap interval over tweets.
- ``relative_improvement = (mean adapter score - mean base score) / mean base score`` (per-tweet means).
- Power: ``power_d03`` is the power of a two-sided paired t test at ``n_tweets`` for the effect
  ``settings.min_cohens_d`` (0.3 by default; ``power_effect_size`` says which) at ``alpha``, and
  ``tweets_needed_d03`` the tweets needed for 80 % power (``paired_power``, ``required_units``:
  noncentral t, as G*Power). The Wilcoxon test has about 95 % of the t test's efficiency on
  normal data, so read them as slightly optimistic for it; after a Holm correction over k
  comparisons the smallest p-value faces alpha / k.

Degenerate cases never raise and never return NaN: values that cannot be computed are ``None``
and ``flags`` says why (``no_valid_items``, ``single_item``, ``single_unit``, ``all_ties``,
``zero_variance``, ``all_differences_zero``, ``no_scores``, ``missing_unit_ids``);
``insufficient_data`` is True when fewer than 2 tweets have a valid verdict or fewer than 2 tweets
have both scores.

``verdict(stats, settings, adjusted_p, comparisons)`` applies the success criteria
(docs/design.md): p < alpha (the ``primary_test``, Wilcoxon by default because the scores are
paired; the direction must favour the adapter; the Holm-adjusted p when ``adjusted_p`` is given,
see ``holm_bonferroni``), Cohen's d > ``min_cohens_d``, and the win rate interval excluding 0.5
(i.e. the net win rate interval excluding 0, above it): the ``REQUIRED_CRITERIA``. The relative
score improvement (>= ``min_improvement``) is computed and shown beside them but decides nothing
(``required: False``): it divides by the base model's mean score, so it measures the judge's score
scale as much as the adapter (with the offline judge's scores, mean 2.4 and spread 0.7, a Cohen's
d of 0.5 is a 15 % improvement; on a judge scoring around 7 it is 5 %), and as a required
criterion it cut the gate's simulated power at d = 0.5 on 100 tweets to 0.44 (0.85 at a mean of
5); Cohen's d is the scale-free effect size (core/calibration.py measures the gate).

``promotion_gate(...)`` decides whether a candidate adapter replaces the champion: it must pass
every required criterion against the base model, beat the retrieval baseline (core/retrieval.py)
and beat the champion, each with a win-rate interval above 0.5.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from replyassets.settings import EvaluationSettings

# scipy is imported inside the functions that use it: it costs about 1 s in every process that
# loads the Dagster definitions (each run and each step), most of which never compute a statistic.

OUTCOME_VALUE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
# The power ``tweets_needed_d03`` aims at.
POWER_TARGET = 0.8
# What ``cluster_bootstrap_ci`` can compute per resample.
CLUSTER_STATS = ("mean", "pooled")
# The success criteria a verdict (and so the promotion gate) requires; the others are shown only
# (module docstring: the relative improvement depends on the judge's score scale).
REQUIRED_CRITERIA = ("significance", "effect_size", "interval_excludes_zero")


def _f(x: Any) -> float | None:
    """A JSON-safe float: None for missing/NaN/inf."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def bootstrap_ci(values: np.ndarray, resamples: int, seed: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean (``scipy.stats.bootstrap``); (None, None) below 2 values."""
    from scipy import stats as st
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return None, None
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    res = st.bootstrap((values,), np.mean, n_resamples=int(resamples), confidence_level=confidence,
                       method="percentile", rng=np.random.default_rng(seed), vectorized=True)
    return _f(res.confidence_interval.low), _f(res.confidence_interval.high)


def _pooled_mean(sums: np.ndarray, sizes: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.sum(sums, axis=axis) / np.sum(sizes, axis=axis)


def cluster_bootstrap_ci(values: Any, clusters: Any, resamples: int, seed: int, confidence: float = 0.95,
                         stat: str = "mean") -> tuple[float | None, float | None]:
    """Percentile bootstrap interval that resamples whole clusters (tweets), never single rows.

    ``values`` and ``clusters`` are aligned per row. ``stat="mean"``: the mean of the per-cluster
    means (each cluster weighs the same: ``compute_stats``' ``win_rate``); ``stat="pooled"``: the
    mean of every row of the drawn clusters (a cluster weighs its row count). Clusters are numbered
    in order of first appearance, so with one row per cluster both statistics are the plain mean
    and the interval equals ``bootstrap_ci(values, resamples, seed, confidence)`` exactly (same
    generator, same resampled indices). (None, None) with fewer than 2 clusters; (v, v) when every
    resample must give v. Raises ``ValueError`` on misaligned input, a missing cluster id or an
    unknown ``stat``.
    """
    from scipy import stats as st
    if stat not in CLUSTER_STATS:
        raise ValueError(f"stat must be one of {CLUSTER_STATS}, got {stat!r}")
    values = np.asarray(values, dtype=float)
    cl = pd.Series(np.asarray(clusters, dtype=object).ravel())
    if values.ndim != 1 or len(cl) != values.size:
        raise ValueError(f"values ({values.shape}) and clusters ({len(cl)}) must be aligned 1-d sequences")
    if cl.isna().any():
        raise ValueError(f"{int(cl.isna().sum())} rows have no cluster id")
    codes, uniques = pd.factorize(cl, sort=False)
    k = len(uniques)
    if k < 2:
        return None, None
    sums = np.bincount(codes, weights=values, minlength=k)
    sizes = np.bincount(codes, minlength=k).astype(float)
    if stat == "mean":
        return bootstrap_ci(sums / sizes, resamples, seed, confidence)
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    res = st.bootstrap((sums, sizes), _pooled_mean, n_resamples=int(resamples), confidence_level=confidence,
                       method="percentile", rng=np.random.default_rng(seed), vectorized=True, paired=True)
    return _f(res.confidence_interval.low), _f(res.confidence_interval.high)


def length_controlled_win_rate(y: np.ndarray, len_diff: np.ndarray, ridge: float = 1e-4) -> tuple[float | None, float | None]:
    """(lc_win_rate, length coefficient) by soft-label logistic regression on tanh-scaled length differences."""
    from scipy import optimize
    y = np.asarray(y, dtype=float)
    d = np.asarray(len_diff, dtype=float)
    if y.size == 0:
        return None, None
    sd = float(np.std(d))
    x = np.tanh(d / sd) if sd > 0 else np.zeros_like(d)

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + theta[1] * x
        # log(1 + e^z) computed stably
        lse = np.logaddexp(0.0, z)
        loss = float(np.sum(lse - y * z) + 0.5 * ridge * np.dot(theta, theta))
        p = 1.0 / (1.0 + np.exp(-z))
        g = np.array([np.sum(p - y), np.sum((p - y) * x)]) + ridge * theta
        return loss, g

    res = optimize.minimize(nll, np.zeros(2), jac=True, method="L-BFGS-B")
    b0, b1 = float(res.x[0]), float(res.x[1])
    return _f(1.0 / (1.0 + math.exp(-b0))), (_f(b1) if sd > 0 else 0.0)


def cohens_d(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> tuple[float | None, float | None, float | None]:
    """Cohen's d (a - b) with pooled SD and a normal-approximation interval; None if undefined."""
    from scipy import stats as st
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        return None, None, None
    sp2 = ((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2)
    if sp2 <= 0:
        # zero variance: equal means are no effect at all (d = 0); different means make d infinite
        return (0.0, 0.0, 0.0) if a.mean() == b.mean() else (None, None, None)
    d = (a.mean() - b.mean()) / math.sqrt(sp2)
    se = math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2)))
    z = st.norm.ppf(0.5 + confidence / 2)
    return _f(d), _f(d - z * se), _f(d + z * se)


# --------------------------------------------------------------------------- power


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return alpha


def paired_power(d: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided one-sample (paired) t test with ``n`` units for effect size ``d`` (d_z).

    Noncentral t: ``df = n - 1``, noncentrality ``d * sqrt(n)``, power
    ``P(T > t_crit) + P(T < -t_crit)`` with ``t_crit = t_{1 - alpha/2, n-1}`` (as G*Power computes
    it). ``d = 0`` gives ``alpha``; the sign of ``d`` does not matter. Fewer than 2 units cannot
    run the test: power 0.0.
    """
    from scipy import stats as st
    alpha = _check_alpha(alpha)
    d = float(d)
    if not math.isfinite(d):
        raise ValueError(f"effect size must be finite, got {d}")
    n = int(n)
    if n < 2:
        return 0.0
    df = n - 1
    nc = abs(d) * math.sqrt(n)
    t_crit = float(st.t.ppf(1.0 - alpha / 2.0, df))
    upper, lower = float(st.nct.sf(t_crit, df, nc)), float(st.nct.cdf(-t_crit, df, nc))
    # scipy's noncentral t returns NaN for a far tail at a large noncentrality (e.g. the lower
    # tail at d = 0.5 on 300 units, below 1e-12): the normal approximation stands in there
    if not math.isfinite(upper):
        upper = float(st.norm.sf(t_crit - nc))
    if not math.isfinite(lower):
        lower = float(st.norm.cdf(-t_crit - nc))
    return min(1.0, upper + lower)


def required_units(d: float = 0.3, power: float = 0.8, alpha: float = 0.05) -> int:
    """The smallest number of units (tweets) at which ``paired_power(d, n, alpha) >= power``.

    d = 0.3, power 0.8, alpha 0.05 gives 90 (G*Power's figure for the two-tailed paired t test;
    0.5 gives 34, 0.8 gives 15). Raises ``ValueError`` for d = 0 (no n suffices) or a power not
    in (alpha, 1).
    """
    from scipy import stats as st
    alpha = _check_alpha(alpha)
    d = float(d)
    if not math.isfinite(d) or d == 0.0:
        raise ValueError(f"effect size must be finite and non-zero, got {d}")
    power = float(power)
    if not alpha < power < 1.0:
        raise ValueError(f"power must be in (alpha={alpha}, 1), got {power}")
    # start at the normal approximation (close below the t answer), then step to the exact one
    z = float(st.norm.ppf(1.0 - alpha / 2.0) + st.norm.ppf(power))
    n = max(2, math.floor((z / abs(d)) ** 2))
    while n > 2 and paired_power(d, n - 1, alpha) >= power:
        n -= 1
    while paired_power(d, n, alpha) < power:
        n += 1
    return n


# --------------------------------------------------------------------------- multiple comparisons


def holm_bonferroni(pvalues: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm-Bonferroni adjusted p-values, keyed and ordered like ``pvalues``.

    With the m p-values that are not None sorted ascending, ``p_(i)`` (i = 1..m) becomes
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``: monotone in the raw order, never above 1, never
    below the raw value. Rejecting where the adjusted p < alpha controls the family-wise error
    rate at alpha. None (a comparison that could not be computed) passes through and does not
    count in m. Raises ``ValueError`` on a p-value outside [0, 1] or NaN.
    """
    present: list[tuple[str, float]] = []
    for key, p in pvalues.items():
        if p is None:
            continue
        v = float(p)
        if not 0.0 <= v <= 1.0:  # NaN fails this too
            raise ValueError(f"p-value for {key!r} must be in [0, 1], got {p}")
        present.append((key, v))
    m = len(present)
    order = sorted(range(m), key=lambda i: present[i][1])  # stable: equal p keep their input order
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, i in enumerate(order):
        key, p = present[i]
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[key] = running
    return {key: (adjusted[key] if p is not None else None) for key, p in pvalues.items()}


# --------------------------------------------------------------------------- compute_stats


def _unit_ids(items: pd.DataFrame, unit_col: str | None, flags: list[str]) -> tuple[np.ndarray, str]:
    """One unit id per row (positional) and the unit's name ("row" when there is no unit column)."""
    n = len(items)
    if unit_col is None or unit_col not in items.columns:
        return np.array([f"row:{i}" for i in range(n)], dtype=object), "row"
    raw = items[unit_col]
    missing = (raw.isna() | (raw.astype(str).str.strip() == "")).to_numpy()
    ids = np.array(["id:" + str(v) for v in raw], dtype=object)
    if missing.any():
        flags.append("missing_unit_ids")
        ids[missing] = [f"row:{i}" for i in np.flatnonzero(missing)]
    return ids, unit_col


def _unit_means(frame: pd.DataFrame, units: np.ndarray) -> pd.DataFrame:
    """Per-unit column means, units in order of first appearance."""
    return frame.groupby(units, sort=False).mean()


def _pairwise_stats(items: pd.DataFrame, units: np.ndarray, s: EvaluationSettings, seed: int,
                    flags: list[str]) -> dict[str, Any]:
    """Counts, win rates (per tweet, cluster-bootstrapped) and the length-controlled win rate of
    the valid outcomes; appends to ``flags``."""
    out: dict[str, Any] = {}
    n_items = len(items)
    if n_items:
        mask = items["outcome"].isin(list(OUTCOME_VALUE)).to_numpy()
        valid = items.loc[mask]
    else:
        mask = np.zeros(0, dtype=bool)
        valid = pd.DataFrame(columns=["outcome", "position_flip", "base_score", "adapter_score", "base_len", "adapter_len"])
    valid_units = units[mask]
    n = len(valid)
    counts = valid["outcome"].value_counts()
    wins, ties, losses = (int(counts.get(k, 0)) for k in ("win", "tie", "loss"))
    y = valid["outcome"].map(OUTCOME_VALUE).to_numpy(dtype=float)
    unit_y = _unit_means(pd.DataFrame({"y": y}), valid_units)["y"].to_numpy(dtype=float)
    n_tweets = int(unit_y.size)
    out.update(n_valid=n, n_invalid=n_items - n, n_tweets=n_tweets, wins=wins, ties=ties, losses=losses)
    if n == 0:
        flags.append("no_valid_items")
    elif n == 1:
        flags.append("single_item")
    elif n_tweets == 1:
        flags.append("single_unit")
    if n and ties == n:
        flags.append("all_ties")

    win_rate = _f(unit_y.mean()) if n_tweets else None
    lo, hi = cluster_bootstrap_ci(y, valid_units, s.bootstrap_resamples, seed) if n_tweets >= 2 else (None, None)
    out.update(
        win_rate=win_rate,
        win_rate_ci_low=lo,
        win_rate_ci_high=hi,
        net_win_rate=_f(win_rate - 0.5) if win_rate is not None else None,
        net_win_rate_ci_low=_f(lo - 0.5) if lo is not None else None,
        net_win_rate_ci_high=_f(hi - 0.5) if hi is not None else None,
        decisive_win_rate=_f(wins / (wins + losses)) if wins + losses else None,
        tie_rate=_f(ties / n) if n else None,
        position_bias_rate=_f(valid["position_flip"].astype(bool).mean()) if n else None,
        bootstrap_resamples=int(s.bootstrap_resamples),
        bootstrap_seed=seed,
    )
    if n >= 2:
        lc, coef = length_controlled_win_rate(y, (valid["adapter_len"] - valid["base_len"]).to_numpy(dtype=float))
    else:
        lc, coef = None, None
    out.update(lc_win_rate=lc, lc_length_coef=coef)
    return out


def _score_stats(items: pd.DataFrame, units: np.ndarray, s: EvaluationSettings, seed: int,
                 flags: list[str]) -> dict[str, Any]:
    """Per-reply scores, paired per tweet (rows need both scores; a tweet's rows are averaged):
    means, the bootstrapped mean difference and the paired tests; appends to ``flags``."""
    out: dict[str, Any] = {}
    n_items = len(items)
    if n_items:
        sc = items[["base_score", "adapter_score"]].apply(pd.to_numeric, errors="coerce")
        smask = sc.notna().all(axis=1).to_numpy()
        per_unit = _unit_means(sc.loc[smask].astype(float), units[smask])
    else:
        smask = np.zeros(0, dtype=bool)
        per_unit = pd.DataFrame(columns=["base_score", "adapter_score"], dtype=float)
    a = per_unit["adapter_score"].to_numpy(dtype=float)
    b = per_unit["base_score"].to_numpy(dtype=float)
    m = int(a.size)
    out.update(n_scored=int(smask.sum()), n_scored_tweets=m)
    if m == 0:
        flags.append("no_scores")
    diff = a - b
    out.update(
        base_score_mean=_f(b.mean()) if m else None,
        adapter_score_mean=_f(a.mean()) if m else None,
        base_score_std=_f(b.std(ddof=1)) if m >= 2 else None,
        adapter_score_std=_f(a.std(ddof=1)) if m >= 2 else None,
        score_diff_mean=_f(diff.mean()) if m else None,
    )
    # one value per tweet: the ordinary bootstrap of per-tweet differences resamples tweets
    dlo, dhi = bootstrap_ci(diff, s.bootstrap_resamples, seed + 1) if m >= 2 else (None, None)
    out.update(score_diff_ci_low=dlo, score_diff_ci_high=dhi)
    out["relative_improvement"] = _f((a.mean() - b.mean()) / b.mean()) if m and b.mean() != 0 else None
    out.update(_score_tests(a, b, flags))
    return out


def _score_tests(a: np.ndarray, b: np.ndarray, flags: list[str]) -> dict[str, Any]:
    """Mann-Whitney, Wilcoxon signed-rank and Cohen's d / dz of per-tweet scores ``a`` (adapter)
    against ``b`` (base); appends to ``flags``."""
    from scipy import stats as st
    out: dict[str, Any] = {}
    m = int(a.size)
    diff = a - b
    mw_u = mw_p = w_stat = w_p = None
    if m >= 2:
        if np.all(np.concatenate([a, b]) == a[0]):
            mw_u, mw_p = float(m * m / 2), 1.0
            flags.append("zero_variance")
        else:
            r = st.mannwhitneyu(a, b, alternative="two-sided")
            mw_u, mw_p = _f(r.statistic), _f(r.pvalue)
        if np.all(diff == 0):
            w_stat, w_p = 0.0, 1.0
            flags.append("all_differences_zero")
        else:
            r = st.wilcoxon(a, b, alternative="two-sided", zero_method="wilcox")
            w_stat, w_p = _f(r.statistic), _f(r.pvalue)
    out.update(mannwhitney_u=mw_u, mannwhitney_p=mw_p, wilcoxon_stat=w_stat, wilcoxon_p=w_p)

    d, d_lo, d_hi = cohens_d(a, b)
    if m >= 2 and (d is None or d_lo == d_hi) and "zero_variance" not in flags:
        flags.append("zero_variance")
    sd_diff = float(diff.std(ddof=1)) if m >= 2 else 0.0
    out.update(cohens_d=d, cohens_d_ci_low=d_lo, cohens_d_ci_high=d_hi,
               cohens_dz=_f(diff.mean() / sd_diff) if sd_diff > 0 else None)
    return out


def _power_stats(s: EvaluationSettings, n_tweets: int) -> dict[str, Any]:
    """The power of the paired test at this many tweets, and the tweets it would need."""
    d0 = float(s.min_cohens_d)
    return {
        "power_effect_size": d0,
        "power_target": POWER_TARGET,
        "power_d03": _f(paired_power(d0, n_tweets, s.alpha)),
        "tweets_needed_d03": required_units(d0, POWER_TARGET, s.alpha) if d0 != 0 and POWER_TARGET > s.alpha else None,
    }


def _cost_stats(items: pd.DataFrame) -> dict[str, Any]:
    """Tokens and cost of the judge calls (a frame without the columns, e.g. hand-made, costs nothing)."""
    out: dict[str, Any] = {}
    n_items = len(items)
    tokens = pd.to_numeric(items["tokens"], errors="coerce") if n_items and "tokens" in items.columns else pd.Series(dtype=float)
    cost = pd.to_numeric(items["cost_usd"], errors="coerce") if n_items and "cost_usd" in items.columns else None
    out["total_tokens"] = int(tokens.fillna(0).sum())
    out["total_cost_usd"] = _f(cost.sum(min_count=1)) if cost is not None else 0.0
    return out


def compute_stats(items: pd.DataFrame, settings: EvaluationSettings | None = None,
                  unit_col: str | None = "tweet_id") -> dict[str, Any]:
    """All pairwise and score statistics from ``judge_pairs`` rows, tweet by tweet (module docstring).

    ``unit_col``: the column that names the unit of evaluation (several rows may share one);
    when it is absent (or None) each row is its own unit. JSON-safe (no NaN).
    """
    s = settings or EvaluationSettings()
    seed = int(s.generation_seed)
    flags: list[str] = []
    units, unit_name = _unit_ids(items, unit_col, flags)
    out: dict[str, Any] = {"n_items": len(items), "unit": unit_name}
    out.update(_pairwise_stats(items, units, s, seed, flags))
    out.update(_score_stats(items, units, s, seed, flags))
    out.update(_power_stats(s, out["n_tweets"]))
    out.update(_cost_stats(items))
    out["insufficient_data"] = out["n_tweets"] < 2 or out["n_scored_tweets"] < 2
    out["flags"] = flags
    return out


def verdict(stats: dict[str, Any], settings: EvaluationSettings | None = None,
            adjusted_p: float | None = None, comparisons: int = 1) -> dict[str, Any]:
    """The success criteria, each with value, threshold, pass/fail (None when it cannot be
    computed) and ``required``; the verdict passes when every required one passes
    (``REQUIRED_CRITERIA``; ``criteria_passed`` / ``criteria_total`` count those).

    ``adjusted_p``: the primary test's p-value adjusted for ``comparisons`` comparisons (e.g. by
    ``holm_bonferroni`` over every adapter evaluated against the base model); when given, the
    significance criterion compares it with alpha, its ``value`` is the adjusted p and it also
    carries ``raw_p`` and ``adjusted_p``. Raises ``ValueError`` when ``adjusted_p`` is outside
    [0, 1] or below the raw p-value (an adjustment never lowers a p-value: it would be another
    test's p), or ``comparisons`` < 1.
    """
    s = settings or EvaluationSettings()
    comparisons = int(comparisons)
    if comparisons < 1:
        raise ValueError(f"comparisons must be >= 1, got {comparisons}")
    primary, raw_p, adjusted_p = _primary_p(stats, s, adjusted_p)
    criteria = _criteria(stats, s, primary, raw_p, adjusted_p, comparisons)
    for key, c in criteria.items():
        c["required"] = key in REQUIRED_CRITERIA
    results = [c["passed"] for c in criteria.values() if c["required"]]
    insufficient = bool(stats.get("insufficient_data")) or any(r is None for r in results)
    passed = (not insufficient) and all(results)
    n_pass = sum(1 for r in results if r)
    label, summary = _verdict_text(stats, criteria, insufficient, passed)
    return {"passed": passed, "success": passed, "label": label, "insufficient_data": insufficient,
            "criteria_passed": n_pass, "criteria_total": len(results), "criteria": criteria,
            "comparisons": comparisons, "summary": summary}


def _primary_p(stats: dict[str, Any], s: EvaluationSettings,
               adjusted_p: float | None) -> tuple[str, float | None, float | None]:
    """(primary test, its raw p-value, the checked adjusted p-value); ``ValueError`` for an
    adjusted p outside [0, 1] or below the raw one."""
    primary = getattr(s, "primary_test", "wilcoxon")
    raw_p = stats.get("wilcoxon_p") if primary == "wilcoxon" else stats.get("mannwhitney_p")
    if adjusted_p is not None:
        adjusted_p = float(adjusted_p)
        if not 0.0 <= adjusted_p <= 1.0:
            raise ValueError(f"adjusted_p must be in [0, 1], got {adjusted_p}")
        if raw_p is not None and adjusted_p < raw_p - 1e-12:
            raise ValueError(f"adjusted_p {adjusted_p} is below the raw {primary} p-value {raw_p}: "
                             "it must be the primary test's p-value after the adjustment")
    return primary, raw_p, adjusted_p


def _crit(value: Any, threshold: str, ok: bool | None, note: str = "") -> dict[str, Any]:
    return {"value": value, "threshold": threshold, "passed": ok, "note": note}


def _significance(stats: dict[str, Any], s: EvaluationSettings, primary: str, raw_p: float | None,
                  adjusted_p: float | None, comparisons: int) -> dict[str, Any]:
    """The significance criterion: the (adjusted) primary p-value below alpha, adapter scoring higher."""
    p = adjusted_p if adjusted_p is not None else raw_p
    direction = stats.get("score_diff_mean")
    if p is None:
        sig_note = "not computable (fewer than 2 scored tweets)"
    elif adjusted_p is not None:
        sig_note = (f"Holm-adjusted over {comparisons} comparison{'s' if comparisons > 1 else ''}; raw p = "
                    + ("n/a" if raw_p is None else f"{raw_p:.4g}"))
    elif comparisons > 1:
        sig_note = f"raw p-value, not adjusted for the {comparisons} comparisons"
    else:
        sig_note = ""
    significance = _crit(
        p, f"{primary} p{' (adjusted)' if adjusted_p is not None else ''} < {s.alpha} and adapter scores higher",
        None if p is None or direction is None else bool(p < s.alpha and direction > 0),
        sig_note,
    )
    significance.update(raw_p=raw_p, adjusted_p=adjusted_p, comparisons=comparisons)
    return significance


def _criteria(stats: dict[str, Any], s: EvaluationSettings, primary: str, raw_p: float | None,
              adjusted_p: float | None, comparisons: int) -> dict[str, dict[str, Any]]:
    """The four success criteria, each with value, threshold and pass/fail (None: not computable)."""
    return {
        "significance": _significance(stats, s, primary, raw_p, adjusted_p, comparisons),
        "effect_size": _crit(
            stats.get("cohens_d"), f"Cohen's d > {s.min_cohens_d}",
            None if stats.get("cohens_d") is None else bool(stats["cohens_d"] > s.min_cohens_d),
            "" if stats.get("cohens_d") is not None else "undefined (fewer than 2 scores or zero variance)",
        ),
        "improvement": _crit(
            stats.get("relative_improvement"), f"relative score improvement >= {s.min_improvement:.0%}",
            None if stats.get("relative_improvement") is None else bool(stats["relative_improvement"] >= s.min_improvement),
            "shown, not required: it depends on the judge's score scale (Cohen's d does not)",
        ),
        "interval_excludes_zero": _crit(
            [stats.get("net_win_rate_ci_low"), stats.get("net_win_rate_ci_high")],
            "95 % interval of the net win rate (win rate - 0.5) entirely above 0",
            None if stats.get("net_win_rate_ci_low") is None else bool(stats["net_win_rate_ci_low"] > 0),
            "" if stats.get("net_win_rate_ci_low") is not None else "no interval (fewer than 2 tweets with a valid verdict)",
        ),
    }


def _verdict_text(stats: dict[str, Any], criteria: dict[str, dict[str, Any]], insufficient: bool,
                  passed: bool) -> tuple[str, str]:
    """The verdict's label and its one-sentence summary."""
    results = [c["passed"] for c in criteria.values() if c.get("required", True)]
    if insufficient:
        units = "" if stats.get("unit", "row") == "row" else f" from {stats.get('n_tweets', 0)} tweets"
        return "insufficient data", (
            f"Insufficient data to decide ({stats.get('n_valid', 0)} valid items{units}, "
            f"{stats.get('n_scored', 0)} scored pairs; flags: {', '.join(stats.get('flags', [])) or 'none'}).")
    if passed:
        return "adapter better", f"The adapter beats the base model: all {len(results)} success criteria pass."
    failed = [k for k, c in criteria.items() if c.get("required", True) and not c["passed"]]
    n_pass = sum(1 for r in results if r)
    return "not shown better", (
        f"No claim of improvement: {n_pass} of {len(results)} criteria pass (failed: {', '.join(failed)}).")


# --------------------------------------------------------------------------- promotion gate


def _num(x: Any) -> str:
    return "n/a" if _f(x) is None else f"{float(x):.2f}"


def _beats(stats: dict[str, Any] | None, what: str) -> tuple[bool, str, str]:
    """(passed, detail, failure phrase) for "the candidate's win rate interval against ``what`` is above 0.5"."""
    if stats is None:
        return False, f"no comparison against {what} was run", f"was not compared with {what}"
    wr, lo, hi = stats.get("win_rate"), _f(stats.get("win_rate_ci_low")), _f(stats.get("win_rate_ci_high"))
    if lo is None or hi is None:
        n = stats.get("n_tweets", stats.get("n_valid", 0))
        detail = f"win rate {_num(wr)} with no interval ({n} tweets with a valid verdict)"
        return False, detail, f"cannot be shown to beat {what} ({detail})"
    where = "above 0.5" if lo > 0.5 else ("below 0.5" if hi < 0.5 else "includes 0.5")
    detail = f"win rate {_num(wr)}, interval {_num(lo)}-{_num(hi)} {where}"
    return lo > 0.5, detail, f"does not beat {what} ({detail})"


def promotion_gate(candidate: str, vs_base: dict[str, Any], vs_retrieval: dict[str, Any] | None,
                   vs_champion: dict[str, Any] | None, champion: str | None, *,
                   vs_default: dict[str, Any] | None = None, default: str = "default",
                   default_missing: str | None = None) -> dict[str, Any]:
    """Does ``candidate`` replace ``champion`` (None: no champion yet, the base model serves)?

    ``vs_base``: the candidate's ``verdict()`` against the base model (with the Holm-adjusted p);
    ``vs_retrieval`` / ``vs_champion`` / ``vs_default``: ``compute_stats()`` of the candidate (the
    adapter side) judged against the retrieval baseline / the champion / the ``default`` recipe on
    the same curated set. Promote only when every required criterion of ``vs_base`` passes (a
    criterion without ``required`` is required), the win-rate
    interval against the retrieval baseline is above 0.5, a candidate other than ``default`` has
    its win-rate interval against ``default`` above 0.5 (so an A/A twin of the default, another
    seed of the same recipe, is never promoted for noise) and, when there is a champion other
    than the candidate, the win-rate interval against it is above 0.5 too. A candidate that is the
    champion is not compared with itself. A comparison that is required but missing (None) fails
    its check; ``default_missing`` says why the default could not be compared (e.g. it was not
    evaluated on this curated set) and fails the check with that reason.

    Returns ``{"promote", "candidate", "champion", "checks": [{"check", "passed", "detail"}],
    "reason"}``, ``reason`` one readable sentence.
    """
    checks: list[dict[str, Any]] = []
    failures: list[str] = []
    for name, (ok, detail, failure) in (
        ("beats_base", _base_check(vs_base)),  # every success criterion against the base model
        # the retrieval baseline (the nearest training tweet's real reply)
        ("beats_retrieval", _beats(vs_retrieval, "the retrieval baseline")),
        ("beats_default", _default_check(candidate, vs_default, default, default_missing)),
        ("beats_champion", _champion_check(candidate, vs_champion, champion)),
    ):
        checks.append({"check": name, "passed": bool(ok), "detail": detail})
        if not ok:
            failures.append(failure)
    promote = not failures
    reason = _promote_reason(candidate, champion, default) if promote else _keep_reason(candidate, champion, failures)
    return {"promote": promote, "candidate": candidate, "champion": champion, "checks": checks, "reason": reason}


def _base_check(vs_base: dict[str, Any] | None) -> tuple[bool, str, str]:
    """(passed, detail, failure phrase) for "every success criterion against the base model passes"."""
    if vs_base is None:
        return False, "no verdict against the base model", "was not judged against the base model"
    crit = {k: c for k, c in (vs_base.get("criteria") or {}).items() if c.get("required", True)}
    failed = [k for k, c in crit.items() if c.get("passed") is not True]
    ok = bool(crit) and not failed and not vs_base.get("insufficient_data") and bool(vs_base.get("passed"))
    if ok:
        detail = f"all {len(crit)} criteria pass"
    elif vs_base.get("insufficient_data") or not crit:
        detail = "insufficient data"
    else:
        detail = f"failed: {', '.join(failed)}"
    return ok, detail, f"does not beat the base model ({detail})"


def _default_check(candidate: str, vs_default: dict[str, Any] | None, default: str,
                   default_missing: str | None) -> tuple[bool, str, str]:
    """The default recipe (same curated set), unless the candidate is the default itself."""
    if candidate == default:
        return True, f"{candidate} is the default recipe", ""
    if default_missing:
        return False, default_missing, f"cannot be compared with the default recipe {default} ({default_missing})"
    return _beats(vs_default, f"the default recipe {default}")


def _champion_check(candidate: str, vs_champion: dict[str, Any] | None, champion: str | None) -> tuple[bool, str, str]:
    """The champion, unless there is none or it is the candidate itself."""
    if champion is None:
        return True, "no champion yet: the base model serves", ""
    if champion == candidate:
        return True, f"{candidate} is the champion: not compared with itself", ""
    return _beats(vs_champion, f"the champion {champion}")


def _promote_reason(candidate: str, champion: str | None, default: str) -> str:
    beaten = ["the base model", "the retrieval baseline"]
    if candidate != default and champion != default:  # else the champion check names it
        beaten.append(f"the default recipe {default}")
    if champion is not None and champion != candidate:
        beaten.append(f"the champion {champion}")
    return f"promote {candidate}: it beats {', '.join(beaten[:-1])} and {beaten[-1]}"


def _keep_reason(candidate: str, champion: str | None, failures: list[str]) -> str:
    if champion is None:
        outcome = "stays with the base model"
    elif champion == candidate:
        outcome = f"{candidate} is not confirmed as champion"
    else:
        outcome = f"stays with {champion}"
    listed = failures[0] if len(failures) == 1 else f"{', '.join(failures[:-1])} and {failures[-1]}"
    return f"{outcome}: {candidate} {listed}"


# --------------------------------------------------------------------------- sanity tier

_TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall((text or "").lower())


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Unique n-grams / total n-grams over all texts (Li et al. 2016); None when there are none."""
    grams: Counter = Counter()
    for t in texts:
        toks = _tokens(t)
        grams.update(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))
    total = sum(grams.values())
    return _f(len(grams) / total) if total else None


def has_repetition(text: str, n: int = 3) -> bool:
    """True when a word n-gram occurs twice in the same text (a looping generation)."""
    toks = _tokens(text)
    grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
    return len(grams) != len(set(grams))


def text_sanity(texts: list[str]) -> dict[str, Any]:
    texts = ["" if t is None else str(t) for t in texts]
    n = len(texts)
    chars = np.array([len(t) for t in texts], dtype=float)
    words = np.array([len(t.split()) for t in texts], dtype=float)
    nonempty = [t for t in texts if t.strip()]
    counts = Counter(t.strip() for t in nonempty)

    def pct(q: float) -> float | None:
        return _f(np.percentile(chars, q)) if n else None

    return {
        "n": n,
        "empty_rate": _f((n - len(nonempty)) / n) if n else None,
        "chars_mean": _f(chars.mean()) if n else None,
        "chars_median": pct(50),
        "chars_p10": pct(10),
        "chars_p90": pct(90),
        "chars_min": _f(chars.min()) if n else None,
        "chars_max": _f(chars.max()) if n else None,
        "words_mean": _f(words.mean()) if n else None,
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "repetition_rate": _f(sum(has_repetition(t) for t in texts) / n) if n else None,
        "duplicate_rate": _f(sum(c for c in counts.values() if c > 1) / n) if n else None,
    }


def sanity_stats(base_replies: list[str], adapter_replies: list[str], references: list[str] | None = None) -> dict[str, Any]:
    """Sanity tier: lengths, distinct-1/2, repetition and duplicates for each model (and the real replies)."""
    out = {"base": text_sanity(base_replies), "adapter": text_sanity(adapter_replies)}
    if references is not None:
        out["reference"] = text_sanity(references)
    return out


def forgetting_check(base_ppl: float | None, adapter_ppl: float | None, settings: EvaluationSettings | None = None) -> dict[str, Any]:
    """Warn when the adapter's perplexity on general text exceeds the base's by ``forgetting_warn_ratio``."""
    s = settings or EvaluationSettings()
    b, a = _f(base_ppl), _f(adapter_ppl)
    ratio = _f(a / b) if a is not None and b else None
    return {"base_ppl": b, "adapter_ppl": a, "ratio": ratio, "threshold": s.forgetting_warn_ratio,
            "warn": bool(ratio is not None and ratio > s.forgetting_warn_ratio)}
