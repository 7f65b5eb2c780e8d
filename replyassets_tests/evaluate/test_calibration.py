"""The promotion gate measured by simulation (core/calibration.py): every simulated evaluation
goes through the real ``verdict`` and ``promotion_gate``; counts and seed come from the settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replyassets.core import calibration as cal
from replyassets.core.stats import compute_stats, paired_power
from replyassets.settings import EvaluationSettings

EV = EvaluationSettings()
MODEL = cal.SimulationModel(n_tweets=100, tie_rate=0.3)


@pytest.fixture(scope="module")
def measured():
    """The A/A twin and the power at d = 0.3 and 0.5, 100 tweets, 2,000 simulations each."""
    return cal.calibrate(MODEL, EV, {"d = 0.3": 0.3, "d = 0.5": 0.5}, n_sims=2_000)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_the_settings_hold_the_counts_and_the_seed(measured):
    assert EV.gate_simulations == 2_000 and measured["simulations"] == 2_000
    assert measured["resamples"] == EV.gate_simulation_resamples and measured["seed"] == EV.gate_simulation_seed
    small = EV.model_copy(update={"gate_simulations": 200})
    once, again = (cal.calibrate(MODEL, small, {"d = 0.5": 0.5}) for _ in range(2))
    assert once["simulations"] == 200 and once == again  # seeded: the same figures every run


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_an_aa_twin_is_rarely_promoted(measured):
    fp = measured["false_promotion"]
    assert fp["simulations"] == 2_000
    assert fp["ci_high"] <= 0.07, fp  # the 95 % (Clopper-Pearson) upper bound
    assert fp["ci_low"] <= fp["rate"] <= fp["ci_high"]


@pytest.mark.parametrize("tie_rate", [0.5, 0.8])
def test_the_aa_bound_holds_at_high_tie_rates(tie_rate):
    fp = cal.aa_false_promotions(cal.SimulationModel(n_tweets=100, tie_rate=tie_rate), EV, 2_000,
                                 EV.gate_simulation_resamples, np.random.default_rng(EV.gate_simulation_seed))
    assert fp["ci_high"] <= 0.07, fp


def test_a_planted_medium_effect_is_promoted(measured):
    power = measured["power"]["d = 0.5"]
    assert power["rate"] >= 0.90, power
    # and whatever the judge's score scale (the relative improvement is shown, not required)
    low_scale = cal.SimulationModel(n_tweets=100, tie_rate=0.5, score_mean=2.4, score_sd=0.7)
    again = cal.power_at(low_scale, 0.5, EV, 2_000, EV.gate_simulation_resamples, np.random.default_rng(1))
    assert again["rate"] >= 0.90, again
    assert again["checks"]["improvement"] < 0.6  # the criterion that used to cut it


@pytest.mark.parametrize(("d", "n"), [(0.3, 100), (0.5, 100), (0.3, 50), (0.4, 30)])
def test_the_simulated_power_matches_the_analytic_power(measured, d, n):
    """The primary test alone, simulated, against the noncentral-t power at the same d_z (the
    Wilcoxon test has about 95 % of the t test's efficiency on normal data)."""
    if n == 100 and f"d = {d}" in measured["power"]:
        p = measured["power"][f"d = {d}"]
    else:
        p = cal.power_at(cal.SimulationModel(n_tweets=n, tie_rate=0.3), d, EV, 2_000,
                         EV.gate_simulation_resamples, np.random.default_rng(2))
    assert p["analytic_power"] == pytest.approx(paired_power(d, n, EV.alpha))
    assert abs(p["significance_rate"] - p["analytic_power"]) <= 0.05, p


def test_the_gate_power_at_the_minimal_effect_is_about_half(measured):
    """The effect-size criterion asks the observed d to exceed min_cohens_d: at a true d equal
    to it the gate promotes about half the time, far below the t test's power."""
    p = measured["power"]["d = 0.3"]
    assert p["checks"]["effect_size"] == pytest.approx(0.5, abs=0.05)
    assert p["rate"] < p["analytic_power"] - 0.2 and p["weakest"] == "effect_size"


def test_simulated_statistics_are_compute_stats():
    rng = np.random.default_rng(5)
    a, b, y = cal.simulate_comparisons(cal.SimulationModel(n_tweets=40, tie_rate=0.3), 0.4, 3, rng)
    sims = cal.simulated_stats(a, b, y, EV, rng, 4_000)
    for i, sim in enumerate(sims):
        outcome = np.where(y[i] == 1.0, "win", np.where(y[i] == 0.5, "tie", "loss"))
        rows = pd.DataFrame({"tweet_id": [f"t{k}" for k in range(40)], "outcome": outcome, "position_flip": False,
                             "adapter_score": a[i], "base_score": b[i], "adapter_len": 80, "base_len": 80})
        real = compute_stats(rows, EV.model_copy(update={"bootstrap_resamples": 4_000}))
        for key in ("win_rate", "wins", "ties", "losses", "wilcoxon_p", "cohens_d", "relative_improvement",
                    "score_diff_mean", "n_tweets"):
            assert sim[key] == pytest.approx(real[key]), key
        for key in ("win_rate_ci_low", "win_rate_ci_high"):  # other resamples: close, not equal
            assert sim[key] == pytest.approx(real[key], abs=0.03), key


def _report(n: int, d: float | None, tie_rate: float, default_tie: float | None = None) -> dict:
    stats = {"base": {"n_tweets": n, "tie_rate": tie_rate, "cohens_d": d, "base_score_mean": 2.4,
                      "base_score_std": 0.7, "adapter_score_std": 0.7}}
    if default_tie is not None:
        stats["default"] = {"tie_rate": default_tie}
    return {"stats": stats}


def test_the_champion_sees_the_gate_at_the_measured_tweets_and_tie_rate():
    reports = {"default": _report(60, 0.1, 0.4), "r8": _report(60, 0.62, 0.5, default_tie=0.6)}
    small = EV.model_copy(update={"gate_simulations": 300})
    result = cal.champion_calibration(reports, "r8", 2, small)
    assert result["model"]["n_tweets"] == 60 and result["model"]["tie_rate"] == pytest.approx(0.5)
    assert result["model"]["comparisons"] == 2 and result["simulations"] == 300
    assert list(result["power"]) == ["d = 0.3", "d = 0.62 (r8)"]
    md = cal.calibration_markdown(result)
    assert len(md) < 1_000 and "A/A twin" in md and "60 test tweets" in md and "tie rate 0.50" in md
    figures = cal.calibration_figures(result)
    assert figures["false_promotion_upper95"] == result["false_promotion"]["ci_high"]
    assert figures["gate_power_best_d"] == result["power"]["d = 0.62 (r8)"]["rate"]
    # a best experiment with no positive effect: the power at min_cohens_d alone, and a sentence
    none = cal.champion_calibration({"default": _report(60, -0.2, 0.4)}, "default", 1, small)
    assert list(none["power"]) == ["d = 0.3"] and "shows no positive effect" in cal.calibration_markdown(none)
    assert cal.calibration_figures(none)["gate_power_best_d"] is None
    # nothing evaluated
    assert cal.champion_calibration({}, None, 1, small) is None
    assert "once an experiment has been evaluated" in cal.calibration_markdown(None)
    assert cal.calibration_figures(None)["false_promotion_rate"] is None
