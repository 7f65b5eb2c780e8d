"""Multiple comparisons (Holm), the verdict with an adjusted p-value, and the promotion gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as hst

from replyassets.core.stats import (
    compute_stats,
    holm_bonferroni,
    promotion_gate,
    verdict,
)
from replyassets.settings import EvaluationSettings
from replyassets_tests.hypothesis_profiles import examples

S = EvaluationSettings(bootstrap_resamples=2000)


# --------------------------------------------------------------------------- Holm-Bonferroni


def test_holm_hand_computed():
    # sorted: a 0.01 (x3 = 0.03), c 0.03 (x2 = 0.06), b 0.04 (x1 = 0.04 -> monotone: 0.06)
    got = holm_bonferroni({"a": 0.01, "b": 0.04, "c": 0.03})
    assert got == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})
    assert list(got) == ["a", "b", "c"]  # the input's keys and order


def test_holm_none_passes_through_and_does_not_count():
    got = holm_bonferroni({"a": 0.01, "skipped": None, "c": 0.04})
    assert got["skipped"] is None
    assert got["a"] == pytest.approx(0.02) and got["c"] == pytest.approx(0.04)  # m = 2, not 3
    assert holm_bonferroni({}) == {} and holm_bonferroni({"x": None}) == {"x": None}
    assert holm_bonferroni({"only": 0.03}) == {"only": 0.03}


def test_holm_caps_at_one_and_ties():
    assert holm_bonferroni({"a": 0.6, "b": 0.7}) == {"a": 1.0, "b": 1.0}
    assert holm_bonferroni({"a": 0.02, "b": 0.02}) == pytest.approx({"a": 0.04, "b": 0.04})
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            holm_bonferroni({"a": 0.01, "b": bad})


def _step_down_rejections(p: dict[str, float], alpha: float) -> set[str]:
    """Holm's procedure as published: reject p_(1), p_(2), ... while p_(i) <= alpha / (m - i + 1)."""
    order = sorted(p, key=p.get)
    rejected = set()
    for i, k in enumerate(order):
        if p[k] > alpha / (len(order) - i):
            break
        rejected.add(k)
    return rejected


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@hsettings(max_examples=examples(150))
@given(hst.lists(hst.floats(0.0, 1.0), min_size=1, max_size=8), hst.sampled_from([0.01, 0.05, 0.1]))
def test_holm_properties(ps, alpha):
    raw = {f"k{i}": p for i, p in enumerate(ps)}
    adj = holm_bonferroni(raw)
    assert all(raw[k] <= adj[k] <= 1.0 for k in raw)
    order = sorted(raw, key=raw.get)
    assert [adj[k] for k in order] == sorted(adj[k] for k in order)  # monotone in the raw order
    # rejecting where the adjusted p <= alpha is exactly Holm's step-down procedure
    # (ties at the boundary aside: floating products may differ by an ulp)
    if all(abs(adj[k] - alpha) > 1e-12 for k in raw):
        assert {k for k in raw if adj[k] <= alpha} == _step_down_rejections(raw, alpha)


# --------------------------------------------------------------------------- verdict with adjusted p


def _good_stats():
    rng = np.random.default_rng(1)
    base = rng.integers(3, 6, 60).astype(float)
    n = 60
    df = pd.DataFrame({
        "outcome": ["win"] * 45 + ["tie"] * 10 + ["loss"] * 5, "position_flip": [False] * n,
        "base_score": base, "adapter_score": base + rng.integers(1, 4, n),
        "base_len": [50] * n, "adapter_len": [50] * n, "tweet_id": [f"t{i}" for i in range(n)],
    })
    return compute_stats(df, S)


def test_verdict_uses_the_adjusted_p():
    stats = _good_stats()
    raw = stats["wilcoxon_p"]
    assert raw < 1e-6
    plain = verdict(stats, S)
    assert plain["passed"] and plain["comparisons"] == 1
    sig = plain["criteria"]["significance"]
    assert sig["value"] == raw and sig["raw_p"] == raw and sig["adjusted_p"] is None
    # an adjusted p above alpha fails the criterion, however small the raw p
    v = verdict(stats, S, adjusted_p=0.06, comparisons=3)
    sig = v["criteria"]["significance"]
    assert sig["passed"] is False and sig["value"] == 0.06 and sig["raw_p"] == raw and sig["adjusted_p"] == 0.06
    assert v["comparisons"] == 3 and not v["passed"] and v["label"] == "not shown better"
    assert "Holm-adjusted over 3 comparisons" in sig["note"] and "adjusted" in sig["threshold"]
    v_ok = verdict(stats, S, adjusted_p=0.04, comparisons=3)
    assert v_ok["passed"] and v_ok["criteria"]["significance"]["value"] == 0.04
    # keys the report and the Dagster side read
    assert {"label", "passed", "success", "criteria", "criteria_passed", "criteria_total", "summary",
            "insufficient_data", "comparisons"} <= set(v)
    assert set(v["criteria"]) == {"significance", "effect_size", "improvement", "interval_excludes_zero"}
    # a raw p used across several comparisons says so
    assert "not adjusted" in verdict(stats, S, comparisons=2)["criteria"]["significance"]["note"]


def test_verdict_refuses_an_adjusted_p_that_cannot_be_one():
    stats = {**_good_stats(), "wilcoxon_p": 0.02}
    with pytest.raises(ValueError, match="below the raw"):
        verdict(stats, S, adjusted_p=0.01, comparisons=2)
    with pytest.raises(ValueError):
        verdict(stats, S, adjusted_p=1.5)
    with pytest.raises(ValueError):
        verdict(stats, S, comparisons=0)


def test_holm_then_verdict_end_to_end():
    stats = _good_stats()
    adjusted = holm_bonferroni({"r8": stats["wilcoxon_p"], "r16": 0.03, "r32": None})
    v = verdict(stats, S, adjusted_p=adjusted["r8"], comparisons=2)
    assert v["passed"] and v["criteria"]["significance"]["value"] == pytest.approx(2 * stats["wilcoxon_p"])


# --------------------------------------------------------------------------- promotion gate


CRITERIA = ("significance", "effect_size", "improvement", "interval_excludes_zero")


def base_verdict(failed: tuple[str, ...] = (), insufficient: bool = False) -> dict:
    crit = {k: {"value": 0.0, "threshold": "", "passed": (None if insufficient else k not in failed), "note": ""}
            for k in CRITERIA}
    ok = not failed and not insufficient
    return {"passed": ok, "success": ok, "label": "adapter better" if ok else "not shown better",
            "insufficient_data": insufficient, "criteria": crit, "criteria_passed": sum(bool(c["passed"]) for c in crit.values()),
            "criteria_total": 4, "comparisons": 1, "summary": ""}


def beats(lo: float | None, hi: float | None, wr: float = 0.6) -> dict:
    return {"win_rate": wr, "win_rate_ci_low": lo, "win_rate_ci_high": hi, "n_tweets": 100}


def check(gate: dict, name: str) -> dict:
    return next(c for c in gate["checks"] if c["check"] == name)


# Every r8 below beats the default recipe unless a test says otherwise.
OK_VS_DEFAULT = {"win_rate": 0.6, "win_rate_ci_low": 0.52, "win_rate_ci_high": 0.7, "n_tweets": 100}


def gate(*args, vs_default=OK_VS_DEFAULT, **kwargs) -> dict:
    return promotion_gate(*args, vs_default=vs_default, **kwargs)


def test_gate_promotes_when_everything_passes():
    g = gate("r8", base_verdict(), beats(0.55, 0.7), beats(0.51, 0.70), "default")
    assert g["promote"] and g["candidate"] == "r8" and g["champion"] == "default"
    assert [c["check"] for c in g["checks"]] == ["beats_base", "beats_retrieval", "beats_default", "beats_champion"]
    assert all(c["passed"] for c in g["checks"])
    assert g["reason"] == ("promote r8: it beats the base model, the retrieval baseline and the champion default")


@pytest.mark.parametrize("failed", [(k,) for k in CRITERIA] + [("effect_size", "improvement")])
def test_gate_refuses_any_failed_base_criterion(failed):
    g = gate("r8", base_verdict(failed), beats(0.55, 0.7), beats(0.6, 0.8), "default")
    assert not g["promote"] and check(g, "beats_base")["passed"] is False
    assert all(k in check(g, "beats_base")["detail"] for k in failed)
    assert g["reason"].startswith("stays with default: r8 does not beat the base model (failed: ")


def test_gate_refuses_insufficient_data_against_base():
    g = gate("r8", base_verdict(insufficient=True), beats(0.55, 0.7), None, None)
    assert not g["promote"] and check(g, "beats_base")["detail"] == "insufficient data"
    # the champion itself, re-evaluated, that no longer passes is not confirmed
    again = gate("r8", base_verdict(("significance",)), beats(0.55, 0.7), None, "r8")
    assert not again["promote"] and again["reason"].startswith("r8 is not confirmed as champion: r8 does not beat")


def test_gate_retrieval_baseline():
    ok = gate("r8", base_verdict(), beats(0.51, 0.7), None, None)
    assert ok["promote"] and check(ok, "beats_champion")["passed"]
    no = gate("r8", base_verdict(), beats(0.45, 0.6, wr=0.52), None, None)
    assert not no["promote"] and check(no, "beats_retrieval")["passed"] is False
    assert no["reason"] == ("stays with the base model: r8 does not beat the retrieval baseline "
                            "(win rate 0.52, interval 0.45-0.60 includes 0.5)")
    below = gate("r8", base_verdict(), beats(0.2, 0.4, wr=0.3), None, None)
    assert "below 0.5" in check(below, "beats_retrieval")["detail"]
    exactly = gate("r8", base_verdict(), beats(0.5, 0.7), None, None)
    assert not exactly["promote"]  # the interval must exclude 0.5


def test_gate_beats_champion_crafted_intervals():
    yes = gate("r8", base_verdict(), beats(0.6, 0.8), beats(0.51, 0.70), "default")
    assert yes["promote"]
    no = gate("r8", base_verdict(), beats(0.6, 0.8), beats(0.49, 0.70, wr=0.6), "default")
    assert not no["promote"] and check(no, "beats_champion")["passed"] is False
    assert check(no, "beats_base")["passed"] and check(no, "beats_retrieval")["passed"]
    assert no["reason"] == ("stays with default: r8 does not beat the champion default "
                            "(win rate 0.60, interval 0.49-0.70 includes 0.5)")


def test_gate_missing_required_comparisons_fail_clearly():
    no_retrieval = gate("r8", base_verdict(), None, beats(0.6, 0.8), "default")
    assert not no_retrieval["promote"]
    assert check(no_retrieval, "beats_retrieval")["detail"] == "no comparison against the retrieval baseline was run"
    assert "was not compared with the retrieval baseline" in no_retrieval["reason"]
    no_champion = gate("r8", base_verdict(), beats(0.6, 0.8), None, "default")
    assert not no_champion["promote"] and "was not compared with the champion default" in no_champion["reason"]
    no_interval = gate("r8", base_verdict(), beats(None, None, wr=1.0), None, None)
    assert not no_interval["promote"] and "no interval" in check(no_interval, "beats_retrieval")["detail"]
    nothing = gate("r8", None, None, None, None)  # type: ignore[arg-type]
    assert not nothing["promote"] and sum(not c["passed"] for c in nothing["checks"]) == 2
    # several failures: one sentence naming each
    both = gate("r8", base_verdict(("effect_size",)), beats(0.4, 0.6), None, "default")
    assert both["reason"] == (
        "stays with default: r8 does not beat the base model (failed: effect_size), does not beat the "
        "retrieval baseline (win rate 0.60, interval 0.40-0.60 includes 0.5) and was not compared with "
        "the champion default")


def test_gate_candidate_equal_to_champion_is_not_compared_with_itself():
    # no vs_champion given and none needed; a vs_champion that would fail is ignored
    g = gate("r8", base_verdict(), beats(0.6, 0.8), None, "r8")
    assert g["promote"] and check(g, "beats_champion")["passed"]
    assert "not compared with itself" in check(g, "beats_champion")["detail"]
    g2 = gate("r8", base_verdict(), beats(0.6, 0.8), beats(0.3, 0.5), "r8")
    assert g2["promote"]
    assert g2["reason"] == "promote r8: it beats the base model, the retrieval baseline and the default recipe default"


def test_gate_on_real_stats():
    stats = _good_stats()
    v = verdict(stats, S, adjusted_p=holm_bonferroni({"r8": stats["wilcoxon_p"], "r16": 0.5})["r8"], comparisons=2)
    g = gate("r8", v, stats, stats, "r16")
    assert g["promote"], g["reason"]


# --------------------------------------------------------------------------- the default recipe and its A/A twin


def _twin_reports(twin_vs_default: dict | None, default_curated: str = "c1") -> dict[str, dict]:
    """comparisons.json of the default and its A/A twin: the twin has the better interval
    against the base model (noise), and its comparison with the default holds 0.5."""
    def rep(name, lo, hi, curated, extra=None):
        stats = {"base": {"win_rate": (lo + hi) / 2, "win_rate_ci_low": lo, "win_rate_ci_high": hi, "n_tweets": 100},
                 "retrieval": beats(0.55, 0.7), **(extra or {})}
        return {"experiment": name, "curated_set_hash": curated, "p_raw": 0.001, "stats": stats,
                "verdict": {"label": "adapter better"},
                "opponents": {"base": None, "retrieval": None, **({"default": "default"} if extra else {})}}
    return {"default": rep("default", 0.60, 0.75, default_curated),
            "default-seed43": rep("default-seed43", 0.62, 0.78, "c1",
                                  {"default": twin_vs_default} if twin_vs_default is not None else None)}


def test_gate_refuses_the_twin_leading_the_board_and_promotes_the_default():
    from replyassets.defs.leaderboard import (
        candidates_in_order,
        choose_candidate,
        default_comparison,
        leaderboard_rows,
    )

    reports = _twin_reports(beats(0.44, 0.60, wr=0.52))
    board = leaderboard_rows(reports, {}, champion=None)
    # the twin has the higher interval against the base model, but the board is in gate order:
    # the default passes 3 of the 4 checks, its twin 2 (it does not beat the default)
    assert choose_candidate(board, None) == "default"
    assert list(board["gate"]) == ["refused", "refused"]
    vs_default, missing = default_comparison(reports, "default-seed43")
    assert vs_default == beats(0.44, 0.60, wr=0.52) and missing is None
    twin = promotion_gate("default-seed43", base_verdict(), beats(0.55, 0.7), None, None,
                          vs_default=vs_default, default="default", default_missing=missing)
    assert not twin["promote"] and check(twin, "beats_default")["passed"] is False
    assert check(twin, "beats_base")["passed"] and check(twin, "beats_retrieval")["passed"]
    assert twin["reason"] == ("stays with the base model: default-seed43 does not beat the default recipe default "
                              "(win rate 0.52, interval 0.44-0.60 includes 0.5)")
    # the default itself is not compared with itself and is promoted
    assert candidates_in_order(board, None) == ["default", "default-seed43"]
    assert default_comparison(reports, "default") == (None, None)
    dflt = promotion_gate("default", base_verdict(), beats(0.55, 0.7), None, None, vs_default=None, default="default")
    assert dflt["promote"] and check(dflt, "beats_default")["detail"] == "default is the default recipe"
    assert dflt["reason"] == "promote default: it beats the base model and the retrieval baseline"
    # a twin that does beat the default (its interval above 0.5) may be promoted, naming it
    ok = promotion_gate("default-seed43", base_verdict(), beats(0.55, 0.7), None, None, vs_default=beats(0.51, 0.7))
    assert ok["promote"] and ok["reason"] == ("promote default-seed43: it beats the base model, the retrieval "
                                              "baseline and the default recipe default")
    below = promotion_gate("default-seed43", base_verdict(), beats(0.55, 0.7), None, None, vs_default=beats(0.3, 0.45))
    assert not below["promote"] and "below 0.5" in check(below, "beats_default")["detail"]


def test_gate_refuses_when_the_default_was_not_evaluated_on_the_curated_set():
    from replyassets.defs.leaderboard import default_comparison

    reports = _twin_reports(beats(0.6, 0.8), default_curated="c0")  # default evaluated on another set only
    vs_default, missing = default_comparison(reports, "default-seed43")
    assert vs_default is None and missing == "default was not evaluated on curated set c1"
    g = promotion_gate("default-seed43", base_verdict(), beats(0.55, 0.7), None, None,
                       vs_default=vs_default, default_missing=missing)
    assert not g["promote"]
    assert g["reason"] == ("stays with the base model: default-seed43 cannot be compared with the default recipe "
                           "default (default was not evaluated on curated set c1)")
    no_default = {k: v for k, v in reports.items() if k != "default"}
    assert default_comparison(no_default, "default-seed43")[1] == "default was not evaluated on curated set c1"
    # the default evaluated on the set, but this report holds no comparison with it
    reports = _twin_reports(None)
    assert default_comparison(reports, "default-seed43") == (None, None)
    g = promotion_gate("r8", base_verdict(), beats(0.55, 0.7), None, None)  # vs_default omitted: refused
    assert not g["promote"] and "was not compared with the default recipe default" in g["reason"]
