"""The promotion gate measured by simulation: how often it promotes an A/A twin (a false
promotion) and how often it promotes a candidate that is truly better (its power).

Every simulated evaluation goes through the real decision code: ``core/stats.verdict`` (the
success criteria against the base model, with the Holm-adjusted p) and
``core/stats.promotion_gate``. Only the statistics they read are computed here, vectorized over
the simulations, by the same definitions as ``compute_stats`` (``simulated_stats``; a test holds
them equal to ``compute_stats`` on the same rows): the per-tweet win rate (win 1, tie 0.5,
loss 0) with its 95 % percentile bootstrap interval over tweets, the Wilcoxon signed-rank p
(scipy, two-sided, zero differences dropped) or the Mann-Whitney p, Cohen's d with the pooled
standard deviation, the relative score improvement and the mean score difference.

The model of one comparison (a candidate against one opponent, one row per test tweet)
---------------------------------------------------------------------------------------
- ``n`` test tweets; per tweet the opponent's score ``B ~ N(mean, sd^2)`` and the candidate's
  ``A ~ N(mean + d sd, sd^2)``, correlated ``rho`` within a tweet (the same tweet is easy or hard
  for both). ``d`` is Cohen's d of the scores (what the gate's effect-size criterion measures);
  the paired effect is ``d_z = d / sqrt(2 (1 - rho))`` (equal to ``d`` at ``rho = 0.5``), the
  one the analytic power ``core/stats.paired_power`` takes.
- The judge's pairwise outcome follows the score difference ``D = A - B``: a tie when
  ``|D| <= m``, else a win or a loss by its sign (as the offline judge decides: the higher
  quality wins, a small difference is a tie). ``m`` is set so that with no effect a share
  ``tie_rate`` of the outcomes are ties (``m = sd_D * Phi^-1((1 + tie_rate) / 2)``); the measured
  tie rate goes in there.
- The adjusted p is ``min(1, comparisons * p)``: Holm's adjustment of the family's smallest
  p-value (the best candidate's), an upper bound for any other.

The scenarios
-------------
- **False promotion of an A/A twin**: the twin is the default recipe trained again (another
  seed), so against the default it has no effect (``d = 0``). The worst case is assumed for
  everything else: the recipe beats the base model and the retrieval baseline for sure (those
  comparisons are the figures of a certain winner, computed once with the real
  ``compute_stats``), so only the comparison with the default can stop the twin. The rate is
  therefore an upper bound of the twin's false-promotion rate.
- **Power at d**: a candidate better than each opponent it must beat (the base model and the
  retrieval baseline; it is the default recipe and there is no champion) by ``d``, each
  comparison simulated on its own. Beside it, the share of simulations whose significance
  criterion passed (the primary test alone) and the analytic power of the paired t test at
  ``d_z`` (``paired_power``; the Wilcoxon test has about 95 % of its efficiency on normal data).
  The gate asks more than significance: the *observed* d above ``min_cohens_d`` (so at a true
  d equal to it, about half the simulations fail that criterion whatever the number of tweets)
  and a win-rate interval above 0.5 against both opponents (which ties weaken); ``checks``
  gives the share of simulations passing each check and criterion (the relative improvement,
  shown but not required, included) and ``weakest`` the required one passed least often.

Counts and seed: ``evaluation.gate_simulations`` evaluations per scenario,
``evaluation.gate_simulation_resamples`` bootstrap resamples per simulated win-rate interval
(the reports use ``evaluation.bootstrap_resamples``, 10,000; the Monte-Carlo error of a 2.5 %
bootstrap quantile, about ``2.67 / sqrt(resamples)`` standard errors of the win rate, blurs where
the interval's end falls by a small fraction of its own sampling spread, far less than the
simulation's own binomial error), seeded with ``evaluation.gate_simulation_seed``: the settings
are their one definition. The resample indices are drawn once per block of simulations and
shared by its simulations: each simulated interval is still a bootstrap interval of its own data.

What it found (and changed): with the relative score improvement as a required criterion the
gate promoted a true d = 0.5 on 100 tweets in 0.44 of the simulations at the offline judge's
score scale (mean 2.4, spread 0.7) and 0.85 at a mean of 5 (now 0.96 at both): that criterion divides by the base
model's mean score, so it measured the judge's scale. It is now shown, not required
(``core/stats.REQUIRED_CRITERIA``); the test (replyassets_tests/evaluate/test_calibration.py)
holds the false-promotion bound, the power at d = 0.5 and the agreement with the analytic power.
At a true d equal to ``min_cohens_d`` the gate's power stays near one half whatever the number
of tweets (its effect-size criterion asks the *observed* d to exceed it): the figure says so
instead of the t test's power the reports used to imply.

No Dagster import: the ``champion`` asset (defs/champion.py) runs ``champion_calibration``
at the measured number of test tweets and tie rate (``measured_model``) and shows
``calibration_markdown``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from replyassets.settings import EvaluationSettings

# The model's defaults where nothing was measured (a score scale of 1-10 with a spread of a
# few points, and pairs as correlated as they are uncorrelated).
DEFAULT_SCORE_MEAN = 5.0
DEFAULT_SCORE_SD = 2.0
DEFAULT_SCORE_CORR = 0.5
DEFAULT_TIE_RATE = 0.3
# A judge that ties (nearly) everything leaves no outcome to simulate.
MAX_TIE_RATE = 0.95
BLOCK = 1000  # simulations per block (bounded memory: block x resamples floats)
CONFIDENCE = 0.95
TWIN, DEFAULT = "twin", "default"


@dataclass(frozen=True)
class SimulationModel:
    """What a simulated comparison looks like (module docstring)."""

    n_tweets: int
    tie_rate: float = DEFAULT_TIE_RATE
    score_mean: float = DEFAULT_SCORE_MEAN
    score_sd: float = DEFAULT_SCORE_SD
    score_corr: float = DEFAULT_SCORE_CORR
    comparisons: int = 1  # the Holm family's size

    def __post_init__(self) -> None:
        if self.n_tweets < 1:
            raise ValueError(f"n_tweets must be >= 1, got {self.n_tweets}")
        if not 0.0 <= self.tie_rate < 1.0:
            raise ValueError(f"tie_rate must be in [0, 1), got {self.tie_rate}")
        if not self.score_sd > 0 or not -1.0 < self.score_corr < 1.0 or self.comparisons < 1:
            raise ValueError(f"invalid model: {self}")

    @property
    def diff_sd(self) -> float:
        """Standard deviation of the per-tweet score difference."""
        return self.score_sd * math.sqrt(2.0 * (1.0 - self.score_corr))

    def d_z(self, d: float) -> float:
        """The paired effect size of a Cohen's d under this model."""
        return float(d) * self.score_sd / self.diff_sd


# --------------------------------------------------------------------------- simulation


def simulate_comparisons(model: SimulationModel, d: float, n_sims: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(adapter scores, opponent scores, outcome values)``, each ``(n_sims, n_tweets)``."""
    n = model.n_tweets
    z1 = rng.standard_normal((n_sims, n))
    z2 = rng.standard_normal((n_sims, n))
    rho = model.score_corr
    b = model.score_mean + model.score_sd * z1
    a = model.score_mean + model.score_sd * (d + rho * z1 + math.sqrt(1.0 - rho * rho) * z2)
    return a, b, outcome_values(a - b, model)


def outcome_values(diff: np.ndarray, model: SimulationModel) -> np.ndarray:
    """The judge's outcome per tweet from the score difference: 1 win, 0.5 tie, 0 loss."""
    from scipy import stats as st

    margin = model.diff_sd * float(st.norm.ppf(0.5 + model.tie_rate / 2.0))
    return np.where(np.abs(diff) <= margin, 0.5, np.where(diff > 0, 1.0, 0.0))


def bootstrap_bounds(y: np.ndarray, resamples: int, rng: np.random.Generator,
                     confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of each row's mean (rows = simulations, columns = tweets):
    the same resampled tweets for every row of ``y`` (one draw of ``resamples`` x ``n`` indices,
    as counts), linear interpolation between order statistics (``np.quantile``, as scipy)."""
    n_sims, n = y.shape
    if n < 2:
        return np.full(n_sims, np.nan), np.full(n_sims, np.nan)
    r = int(resamples)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=r).astype(float)  # (R, n)
    means = y @ counts.T / n  # (S, R)
    tail = (1.0 - confidence) / 2.0
    # np.quantile's linear interpolation, from the four order statistics it needs (a partial sort)
    h = np.array([tail, 1.0 - tail]) * (r - 1)
    k = np.floor(h).astype(int)
    k1 = np.minimum(k + 1, r - 1)
    part = np.partition(means, sorted({*k.tolist(), *k1.tolist()}), axis=1)
    lo, hi = (part[:, k[i]] + (h[i] - k[i]) * (part[:, k1[i]] - part[:, k[i]]) for i in range(2))
    return lo, hi


def simulated_stats(a: np.ndarray, b: np.ndarray, y: np.ndarray, ev: EvaluationSettings,
                    rng: np.random.Generator, resamples: int) -> list[dict[str, Any]]:
    """Per simulation, the ``compute_stats`` figures the gate reads (same names, same definitions;
    one row per tweet), computed for all simulations at once."""
    from scipy import stats as st

    n_sims, n = a.shape
    lo, hi = bootstrap_bounds(y, resamples, rng)
    diff = a - b
    if ev.primary_test == "wilcoxon":
        p = st.wilcoxon(a, b, axis=1, zero_method="wilcox", alternative="two-sided").pvalue
    else:
        p = st.mannwhitneyu(a, b, axis=1, alternative="two-sided").pvalue
    sp = np.sqrt(((n - 1) * a.var(axis=1, ddof=1) + (n - 1) * b.var(axis=1, ddof=1)) / (2 * n - 2))
    d = diff.mean(axis=1) / sp
    rel = (a.mean(axis=1) - b.mean(axis=1)) / b.mean(axis=1)
    win_rate = y.mean(axis=1)
    ties = (y == 0.5).sum(axis=1)
    wins = (y == 1.0).sum(axis=1)
    primary = "wilcoxon_p" if ev.primary_test == "wilcoxon" else "mannwhitney_p"
    out = []
    for i in range(n_sims):
        out.append({
            "n_items": n, "n_valid": n, "n_invalid": 0, "n_tweets": n, "unit": "tweet_id",
            "wins": int(wins[i]), "ties": int(ties[i]), "losses": int(n - wins[i] - ties[i]),
            "tie_rate": float(ties[i] / n), "win_rate": float(win_rate[i]),
            "win_rate_ci_low": _num(lo[i]), "win_rate_ci_high": _num(hi[i]),
            "net_win_rate": float(win_rate[i] - 0.5),
            "net_win_rate_ci_low": _num(lo[i] - 0.5), "net_win_rate_ci_high": _num(hi[i] - 0.5),
            "n_scored": n, "n_scored_tweets": n,
            "adapter_score_mean": float(a[i].mean()), "base_score_mean": float(b[i].mean()),
            "score_diff_mean": float(diff[i].mean()), "relative_improvement": _num(rel[i]),
            primary: _num(p[i]), "cohens_d": _num(d[i]),
            "insufficient_data": n < 2, "flags": [],
        })
    return out


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def adjusted_p(stats: Mapping[str, Any], ev: EvaluationSettings, comparisons: int) -> float | None:
    """The primary p-value after Holm's adjustment as the family's smallest: ``min(1, m p)``."""
    p = stats.get("wilcoxon_p" if ev.primary_test == "wilcoxon" else "mannwhitney_p")
    return None if p is None else min(1.0, comparisons * float(p))


def clear_winner(n: int, ev: EvaluationSettings) -> dict[str, Any]:
    """``compute_stats`` of a candidate that wins every one of ``n`` tweets by three standard
    deviations: the figures of a comparison the gate can only pass (when ``n`` allows it)."""
    from replyassets.core.stats import compute_stats

    base = np.linspace(3.0, 6.0, n) if n > 1 else np.array([4.0])
    rows = pd.DataFrame({
        "item_id": [f"t{i}" for i in range(n)], "tweet_id": [f"t{i}" for i in range(n)], "outcome": "win",
        "position_flip": False, "base_score": base, "adapter_score": base + 3.0 + np.linspace(0, 0.5, n),
        "base_len": 80, "adapter_len": 80,
    })
    return compute_stats(rows, ev.model_copy(update={"bootstrap_resamples": 200}))


# --------------------------------------------------------------------------- the gate on simulations


def _gate(candidate: str, vs_base_stats: Mapping[str, Any], vs_retrieval: Mapping[str, Any],
          vs_default: Mapping[str, Any] | None, ev: EvaluationSettings, comparisons: int) -> dict[str, Any]:
    from replyassets.core.stats import promotion_gate, verdict

    vs_base = verdict(dict(vs_base_stats), ev, adjusted_p=adjusted_p(vs_base_stats, ev, comparisons),
                      comparisons=comparisons)
    decision = promotion_gate(candidate, vs_base, dict(vs_retrieval), None, None,
                              vs_default=None if vs_default is None else dict(vs_default), default=DEFAULT)
    decision["criteria"] = {k: c["passed"] for k, c in vs_base["criteria"].items()}
    return decision


def _blocks(n_sims: int) -> list[int]:
    return [min(BLOCK, n_sims - start) for start in range(0, n_sims, BLOCK)]


def aa_false_promotions(model: SimulationModel, ev: EvaluationSettings, n_sims: int, resamples: int,
                        rng: np.random.Generator) -> dict[str, Any]:
    """The A/A twin scenario (module docstring): how many of ``n_sims`` twins the gate promotes."""
    sure = clear_winner(model.n_tweets, ev)
    promoted = 0
    for size in _blocks(n_sims):
        for vs_default in simulated_stats(*simulate_comparisons(model, 0.0, size, rng), ev, rng, resamples):
            promoted += bool(_gate(TWIN, sure, sure, vs_default, ev, model.comparisons)["promote"])
    return {"scenario": "A/A twin", "effect": 0.0, **promotion_rate_interval(promoted, n_sims)}


def power_at(model: SimulationModel, d: float, ev: EvaluationSettings, n_sims: int, resamples: int,
             rng: np.random.Generator) -> dict[str, Any]:
    """The power scenario (module docstring) at Cohen's d ``d``: the gate's promotion rate, the
    rate of each check and criterion, the weakest of the required ones, and the analytic power
    of the paired t test at the same ``d_z`` and the Holm-corrected alpha."""
    from replyassets.core.stats import REQUIRED_CRITERIA, paired_power

    promoted, passed = 0, Counter()
    for size in _blocks(n_sims):
        vs_base = simulated_stats(*simulate_comparisons(model, d, size, rng), ev, rng, resamples)
        vs_retrieval = simulated_stats(*simulate_comparisons(model, d, size, rng), ev, rng, resamples)
        for base_stats, retrieval_stats in zip(vs_base, vs_retrieval, strict=True):
            decision = _gate(DEFAULT, base_stats, retrieval_stats, None, ev, model.comparisons)
            promoted += bool(decision["promote"])
            passed.update(c["check"] for c in decision["checks"] if c["passed"])
            passed.update(k for k, ok in decision["criteria"].items() if ok)
    names = ("significance", "effect_size", "improvement", "interval_excludes_zero", "beats_base", "beats_retrieval")
    rates = {k: passed[k] / n_sims for k in names}
    weakest = min((*REQUIRED_CRITERIA, "beats_retrieval"), key=lambda k: rates[k])
    d_z = model.d_z(d)
    return {
        "scenario": f"power at d = {d:.2f}", "effect": float(d), "d_z": d_z,
        **promotion_rate_interval(promoted, n_sims),
        "significance_rate": rates["significance"],
        "analytic_power": paired_power(d_z, model.n_tweets, ev.alpha / model.comparisons),
        "checks": rates, "weakest": weakest,
    }


def promotion_rate_interval(promoted: int, n_sims: int, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The promotion rate with its exact (Clopper-Pearson) interval."""
    from scipy import stats as st

    tail = (1.0 - confidence) / 2.0
    lo = 0.0 if promoted == 0 else float(st.beta.ppf(tail, promoted, n_sims - promoted + 1))
    hi = 1.0 if promoted == n_sims else float(st.beta.ppf(1.0 - tail, promoted + 1, n_sims - promoted))
    return {"promoted": int(promoted), "simulations": int(n_sims), "rate": promoted / n_sims,
            "ci_low": lo, "ci_high": hi}


def calibrate(model: SimulationModel, ev: EvaluationSettings, effects: Mapping[str, float],
              n_sims: int | None = None) -> dict[str, Any]:
    """The A/A false-promotion rate and the power at each of ``effects`` (label -> Cohen's d),
    ``n_sims`` simulated evaluations each (default ``ev.gate_simulations``), resampled and seeded
    as ``ev`` says (module docstring)."""
    n_sims = int(ev.gate_simulations if n_sims is None else n_sims)
    resamples, seed = int(ev.gate_simulation_resamples), int(ev.gate_simulation_seed)
    rng = np.random.default_rng(seed)
    return {
        "model": asdict(model), "simulations": n_sims, "resamples": resamples, "seed": seed,
        "false_promotion": aa_false_promotions(model, ev, n_sims, resamples, rng),
        "power": {label: {**power_at(model, d, ev, n_sims, resamples, rng), "label": label}
                  for label, d in effects.items()},
    }


# --------------------------------------------------------------------------- measured inputs


def measured_model(reports: Mapping[str, Mapping[str, Any]], best: str | None,
                   comparisons: int = 1) -> SimulationModel | None:
    """The simulation model at what the reports measured (None when nothing was evaluated):

    - ``n_tweets``: the best experiment's test tweets with a verdict against the base model;
    - ``tie_rate``: the median tie rate of the comparisons between models that write alike
      (every report's comparisons with the base model and the default recipe; the retrieval
      baseline's real replies tie less often), at most 0.95;
    - ``score_mean`` / ``score_sd``: the base model's mean score and the pooled score spread in
      the best experiment's comparison with it (they move only the relative improvement, which
      the gate shows but does not require);
    - ``score_corr``: ``DEFAULT_SCORE_CORR`` (0.5), where the paired effect equals Cohen's d, as
      the reports' ``power_d03`` assumes (a correlation estimated from ``d / d_z`` of small,
      null comparisons is noise: 0.95 on the local sample's 21 tweets);
    - ``comparisons``: the Holm family's size.
    """
    rep = reports.get(best) if best else None
    base = ((rep or {}).get("stats") or {}).get("base") or {}
    n = int(base.get("n_tweets") or 0)
    if n < 1:
        return None
    alike = [s for r in reports.values() for role, s in ((r or {}).get("stats") or {}).items()
             if role in ("base", "default") and isinstance(s, Mapping)]
    ties = [float(s["tie_rate"]) for s in alike if s.get("tie_rate") is not None]
    sds = [float(base[k]) for k in ("base_score_std", "adapter_score_std") if base.get(k)]
    mean = base.get("base_score_mean")
    return SimulationModel(
        n_tweets=n,
        tie_rate=min(float(np.median(ties)), MAX_TIE_RATE) if ties else DEFAULT_TIE_RATE,
        score_mean=float(mean) if mean else DEFAULT_SCORE_MEAN,
        score_sd=math.sqrt(sum(x * x for x in sds) / len(sds)) if sds else DEFAULT_SCORE_SD,
        comparisons=max(int(comparisons), 1),
    )


def best_effect(reports: Mapping[str, Mapping[str, Any]], best: str | None) -> float | None:
    """Cohen's d of the best experiment against the base model, when it shows a positive one."""
    base = (((reports.get(best) or {}) if best else {}).get("stats") or {}).get("base") or {}
    d = base.get("cohens_d")
    return float(d) if d is not None and math.isfinite(float(d)) and float(d) > 0 else None


def champion_calibration(reports: Mapping[str, Mapping[str, Any]], best: str | None, comparisons: int,
                         ev: EvaluationSettings) -> dict[str, Any] | None:
    """The gate measured at what the reports measured (``measured_model``): the A/A twin's
    false-promotion rate, the power at ``ev.min_cohens_d`` and at the effect ``best`` shows
    (``best_effect``; left out when it shows none). None when nothing was evaluated."""
    model = measured_model(reports, best, comparisons)
    if model is None:
        return None
    effects = {f"d = {ev.min_cohens_d:g}": float(ev.min_cohens_d)}
    shown = best_effect(reports, best)
    if shown is not None:
        effects[f"d = {shown:.2f} ({best})"] = shown
    result = calibrate(model, ev, effects)
    result.update(best=best, best_effect=shown)
    return result


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def calibration_markdown(result: Mapping[str, Any] | None) -> str:
    """The champion page's short account of the gate, measured (under 1,000 characters)."""
    if result is None:
        return "The gate is simulated once an experiment has been evaluated."
    model, fp = result["model"], result["false_promotion"]
    lines = [
        (f"Simulated with the real gate: {result['simulations']:,} evaluations per row, "
         f"{model['n_tweets']} test tweets, tie rate {model['tie_rate']:.2f}, "
         f"Holm over {model['comparisons']} (core/calibration.py)."), "",
        "| scenario | promoted [95 % CI] | test alone | t-test power |", "|---|---|---|---|",
        f"| A/A twin (false promotion) | {_pct(fp['rate'])} [{_pct(fp['ci_low'])}, {_pct(fp['ci_high'])}] | | |",
    ]
    for label, p in result["power"].items():
        lines.append(f"| power at {label} | {_pct(p['rate'])} [{_pct(p['ci_low'])}, {_pct(p['ci_high'])}] | "
                     f"{_pct(p['significance_rate'])} | {_pct(p['analytic_power'])} |")
    if "best_effect" in result and result["best_effect"] is None:
        lines += ["", f"{result.get('best') or 'No experiment'} shows no positive effect on the base model."]
    return "\n".join(lines)


def calibration_figures(result: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The headline numbers as plain metadata values."""
    if result is None:
        return {"false_promotion_rate": None, "false_promotion_upper95": None, "gate_power_min_d": None,
                "gate_power_best_d": None}
    powers = list(result["power"].values())
    return {
        "false_promotion_rate": result["false_promotion"]["rate"],
        "false_promotion_upper95": result["false_promotion"]["ci_high"],
        "gate_power_min_d": powers[0]["rate"] if powers else None,
        "gate_power_best_d": powers[1]["rate"] if len(powers) > 1 else None,
    }
