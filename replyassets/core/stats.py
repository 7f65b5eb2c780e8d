"""Statistics for the evaluation: is the adapter better than the base model, and by how much.

Definitions (all computed on the items a judge answered validly; invalid items are counted in
``n_invalid`` and excluded):

- Outcome per item, from the adapter's side, after the position swap (see core/judging.py):
  win / tie / loss. ``win_rate = (wins + 0.5 * ties) / n`` (ties count half, as in AlpacaEval and
  Chatbot Arena), so 0.5 means "no difference".
- ``win_rate_ci``: 95 % bootstrap percentile interval of the win rate (items resampled,
  ``scipy.stats.bootstrap``, ``bootstrap_resamples`` resamples, seeded with ``generation_seed``).
  ``net_win_rate = win_rate - 0.5`` and its interval are the same interval shifted by 0.5.
- ``lc_win_rate``, length-controlled (AlpacaEval 2 style): a logistic regression
  ``P(adapter preferred) = sigmoid(b0 + b1 * tanh(len_diff / sd(len_diff)))`` with soft labels
  (win 1, tie 0.5, loss 0), fitted by maximum likelihood (scipy.optimize, L-BFGS, a 1e-4 ridge
  so an all-win sample still has a finite fit); the LC win rate is the prediction at equal
  length, ``sigmoid(b0)``. ``lc_length_coef`` (b1) > 0 means longer replies were preferred.
- Scores (1-10, one per reply): Mann-Whitney U (two-sided, adapter vs base scores, as in the
  seed) and Wilcoxon signed-rank (two-sided, paired differences, zero differences dropped: the
  ``wilcox`` method); Cohen's d with the pooled standard deviation and a 95 % normal-approximation
  interval (``se = sqrt((n1+n2)/(n1 n2) + d^2 / (2 (n1+n2)))``); the paired ``cohens_dz`` too.
- ``relative_improvement = (mean adapter score - mean base score) / mean base score``.
- ``position_bias_rate``: share of valid items whose verdict changed with the order.

Degenerate cases never raise and never return NaN: values that cannot be computed are ``None``
and ``flags`` says why (``no_valid_items``, ``single_item``, ``all_ties``, ``zero_variance``,
``all_differences_zero``, ``no_scores``); ``insufficient_data`` is True when fewer than 2 valid
items or fewer than 2 scored pairs exist.

``verdict(stats, settings)`` applies the success criteria (docs/design.md): p < alpha (the
``primary_test``, Wilcoxon by default because the scores are paired; the direction must favour the
adapter), Cohen's d > ``min_cohens_d``, relative improvement >= ``min_improvement``, and the win
rate interval excluding 0.5 (i.e. the net win rate interval excluding 0, above it).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as st

from replyassets.settings import EvaluationSettings

OUTCOME_VALUE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


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
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return None, None
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    res = st.bootstrap((values,), np.mean, n_resamples=int(resamples), confidence_level=confidence,
                       method="percentile", rng=np.random.default_rng(seed), vectorized=True)
    return _f(res.confidence_interval.low), _f(res.confidence_interval.high)


def length_controlled_win_rate(y: np.ndarray, len_diff: np.ndarray, ridge: float = 1e-4) -> tuple[float | None, float | None]:
    """(lc_win_rate, length coefficient) by soft-label logistic regression on tanh-scaled length differences."""
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


def compute_stats(items: pd.DataFrame, settings: EvaluationSettings | None = None) -> dict[str, Any]:
    """All pairwise and score statistics from ``judge_pairs`` rows. JSON-safe (no NaN)."""
    s = settings or EvaluationSettings()
    seed = int(s.generation_seed)
    flags: list[str] = []
    n_items = len(items)
    out: dict[str, Any] = {"n_items": n_items}
    if n_items:
        valid = items[items["outcome"].isin(list(OUTCOME_VALUE))]
    else:
        valid = pd.DataFrame(columns=["outcome", "position_flip", "base_score", "adapter_score", "base_len", "adapter_len"])
    n = len(valid)
    counts = valid["outcome"].value_counts()
    wins, ties, losses = (int(counts.get(k, 0)) for k in ("win", "tie", "loss"))
    y = valid["outcome"].map(OUTCOME_VALUE).to_numpy(dtype=float)
    out.update(n_valid=n, n_invalid=n_items - n, wins=wins, ties=ties, losses=losses)
    if n == 0:
        flags.append("no_valid_items")
    elif n == 1:
        flags.append("single_item")
    if n and ties == n:
        flags.append("all_ties")

    win_rate = _f(y.mean()) if n else None
    lo, hi = bootstrap_ci(y, s.bootstrap_resamples, seed) if n >= 2 else (None, None)
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

    # ---- per-item scores (paired; both scores needed)
    if n_items:
        sc = items[["base_score", "adapter_score"]].apply(pd.to_numeric, errors="coerce").dropna()
    else:
        sc = pd.DataFrame(columns=["base_score", "adapter_score"], dtype=float)
    a = sc["adapter_score"].to_numpy(dtype=float)
    b = sc["base_score"].to_numpy(dtype=float)
    m = int(a.size)
    out["n_scored"] = m
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
    dlo, dhi = bootstrap_ci(diff, s.bootstrap_resamples, seed + 1) if m >= 2 else (None, None)
    out.update(score_diff_ci_low=dlo, score_diff_ci_high=dhi)
    out["relative_improvement"] = _f((a.mean() - b.mean()) / b.mean()) if m and b.mean() != 0 else None

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

    if n_items:
        out["total_tokens"] = int(pd.to_numeric(items.get("tokens", 0), errors="coerce").fillna(0).sum())
        out["total_cost_usd"] = _f(pd.to_numeric(items.get("cost_usd", 0.0), errors="coerce").sum(min_count=1))
    else:
        out["total_tokens"], out["total_cost_usd"] = 0, 0.0
    out["insufficient_data"] = n < 2 or m < 2
    out["flags"] = flags
    return out


def verdict(stats: dict[str, Any], settings: EvaluationSettings | None = None) -> dict[str, Any]:
    """The success criteria, each with value, threshold and pass/fail (None when it cannot be computed)."""
    s = settings or EvaluationSettings()
    primary = getattr(s, "primary_test", "wilcoxon")
    p = stats.get("wilcoxon_p") if primary == "wilcoxon" else stats.get("mannwhitney_p")
    direction = stats.get("score_diff_mean")

    def crit(value: Any, threshold: str, ok: bool | None, note: str = "") -> dict[str, Any]:
        return {"value": value, "threshold": threshold, "passed": ok, "note": note}

    criteria = {
        "significance": crit(
            p, f"{primary} p < {s.alpha} and adapter scores higher",
            None if p is None or direction is None else bool(p < s.alpha and direction > 0),
            "" if p is not None else "not computable (fewer than 2 scored pairs)",
        ),
        "effect_size": crit(
            stats.get("cohens_d"), f"Cohen's d > {s.min_cohens_d}",
            None if stats.get("cohens_d") is None else bool(stats["cohens_d"] > s.min_cohens_d),
            "" if stats.get("cohens_d") is not None else "undefined (fewer than 2 scores or zero variance)",
        ),
        "improvement": crit(
            stats.get("relative_improvement"), f"relative score improvement >= {s.min_improvement:.0%}",
            None if stats.get("relative_improvement") is None else bool(stats["relative_improvement"] >= s.min_improvement),
        ),
        "interval_excludes_zero": crit(
            [stats.get("net_win_rate_ci_low"), stats.get("net_win_rate_ci_high")],
            "95 % interval of the net win rate (win rate - 0.5) entirely above 0",
            None if stats.get("net_win_rate_ci_low") is None else bool(stats["net_win_rate_ci_low"] > 0),
            "" if stats.get("net_win_rate_ci_low") is not None else "no interval (fewer than 2 valid items)",
        ),
    }
    results = [c["passed"] for c in criteria.values()]
    insufficient = bool(stats.get("insufficient_data")) or any(r is None for r in results)
    passed = (not insufficient) and all(results)
    n_pass = sum(1 for r in results if r)
    if insufficient:
        label = "insufficient data"
        summary = (f"Insufficient data to decide ({stats.get('n_valid', 0)} valid items, "
                   f"{stats.get('n_scored', 0)} scored pairs; flags: {', '.join(stats.get('flags', [])) or 'none'}).")
    elif passed:
        label = "adapter better"
        summary = f"The adapter beats the base model: all {len(results)} success criteria pass."
    else:
        failed = [k for k, c in criteria.items() if not c["passed"]]
        label = "not shown better"
        summary = f"No claim of improvement: {n_pass} of {len(results)} criteria pass (failed: {', '.join(failed)})."
    return {"passed": passed, "success": passed, "label": label, "insufficient_data": insufficient,
            "criteria_passed": n_pass, "criteria_total": len(results), "criteria": criteria, "summary": summary}


def promotion_decision(vs_base: dict[str, Any], vs_best: dict[str, Any] | None) -> dict[str, Any]:
    """Promotion gate: an adapter becomes the best only if its verdict passes against the base model
    and (when a current best exists) against the current best (both ``verdict()`` dicts)."""
    if not vs_base.get("passed"):
        return {"promote": False, "reason": f"does not beat the base model ({vs_base.get('label')})"}
    if vs_best is not None and not vs_best.get("passed"):
        return {"promote": False, "reason": f"does not beat the current best adapter ({vs_best.get('label')})"}
    return {"promote": True, "reason": "beats the base model" + (" and the current best" if vs_best is not None else "")}


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
