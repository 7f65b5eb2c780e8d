"""The human sheet puts the judge's unsure items first; the report shows and flags the judge
checked against likes; judge_pairs can skip scores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from replyassets.core.human_eval import export_sheet, import_ratings
from replyassets.core.judging import judge_pairs
from replyassets.core.preference import likes_agreement
from replyassets.core.report import JUDGE_LIKES_KEY, judge_likes_flag, write_report
from replyassets.core.stats import compute_stats, verdict
from replyassets.judges.offline import OfflineJudge
from replyassets.settings import EvaluationSettings, ValidationSettings


def _offline_kwargs() -> dict:
    """The offline judge's settings (it has no defaults of its own)."""
    ev, v = EvaluationSettings(), ValidationSettings()
    return {"tie_margin": ev.offline_tie_margin, "min_chars": v.min_chars, "max_chars": v.max_chars}

def judged(n: int = 12) -> pd.DataFrame:
    rows = []
    for i in range(n):
        unsure = i % 4 == 1
        rows.append({
            "item_id": f"i{i}", "tweet": f"tweet {i}", "base_reply": f"base reply {i}", "adapter_reply": f"adapter reply {i}",
            "outcome": "tie" if i % 4 == 1 else ("win" if i % 2 else "loss"),
            "position_flip": bool(i % 6 == 3), "unsure": unsure or i % 6 == 3,
        })
    return pd.DataFrame(rows)


def test_unsure_items_come_first_in_the_sheet(tmp_path):
    items = judged()
    expected = set(items.loc[items["unsure"], "item_id"])
    assert len(expected) == 4  # ties: i1, i5, i9; flips: i3, i9
    out = export_sheet(items.drop(columns=["unsure"]), tmp_path, seed=7)
    sheet = pd.read_csv(out["sheet"], dtype=str)
    key = pd.read_csv(out["key"], dtype=str).set_index("pair_id")
    order = [key.loc[p, "item_id"] for p in sheet["pair_id"]]
    assert set(order[: len(expected)]) == expected
    assert set(order[len(expected):]) == set(items["item_id"]) - expected
    assert out["judge_unsure"] == len(expected)
    assert key["judge_unsure"].map({"True": True, "False": False}).sum() == len(expected)
    assert "judge" not in " ".join(sheet.columns) and "outcome" not in sheet.columns
    # the order within each part is still shuffled by the seed
    other = export_sheet(items.drop(columns=["unsure"]), tmp_path / "b", seed=8)
    key_b = pd.read_csv(other["key"], dtype=str).set_index("pair_id")
    order_b = [key_b.loc[p, "item_id"] for p in pd.read_csv(other["sheet"], dtype=str)["pair_id"]]
    assert order_b != order and set(order_b[:4]) == expected
    # an unjudged item list keeps the plain random order, and the key still imports
    plain = export_sheet(items[["item_id", "tweet", "base_reply", "adapter_reply"]], tmp_path / "c", seed=7)
    assert plain["judge_unsure"] == 0
    sheet_c = pd.read_csv(plain["sheet"], dtype=str).assign(preferred="1", rater_id="r1")
    sheet_c.to_csv(tmp_path / "filled.csv", index=False)
    ratings, problems = import_ratings(tmp_path / "filled.csv", plain["key"])
    assert len(ratings) == 12 and problems.empty


def test_judge_pairs_without_scores_asks_only_the_two_orders():
    items = [{"item_id": "a", "tweet": "What is your deploy strategy on Fridays?",
              "base_reply": "lol", "adapter_reply": "We deploy on Fridays with feature flags and a fast rollback."}]
    calls = []

    class Counting(OfflineJudge):
        def compare(self, *a, **k):
            calls.append("compare")
            return super().compare(*a, **k)

        def score(self, *a, **k):
            calls.append("score")
            return super().score(*a, **k)

    df = judge_pairs(Counting(**_offline_kwargs()), items, scores=False)
    assert calls == ["compare", "compare"]
    assert df["base_score"].isna().all() and df.loc[0, "outcome"] in ("win", "tie", "loss")
    assert df.loc[0, "cached_calls"] == 0
    calls.clear()
    judge_pairs(Counting(**_offline_kwargs()), items)
    assert sorted(calls) == ["compare", "compare", "score", "score"]


def _report(tmp_path: Path, agreement: dict) -> str:
    items = judge_pairs(OfflineJudge(**_offline_kwargs()), [
        {"item_id": f"x{i}", "tweet": f"tweet {i} about tests", "base_reply": "short one here ok",
         "adapter_reply": f"a longer reply about tests number {i}"} for i in range(6)])
    s = EvaluationSettings(bootstrap_resamples=200)
    stats = compute_stats(items, s)
    paths = write_report(tmp_path, {**stats, "verdict": verdict(stats, s)}, items, {}, {JUDGE_LIKES_KEY: agreement})
    return Path(paths["markdown"]).read_text()


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_report_flags_a_judge_no_better_than_chance(tmp_path):
    chance = likes_agreement(pd.DataFrame({"outcome": ["win", "loss", "tie", "win", "loss", "loss"],
                                           "position_flip": [False] * 6}))
    md = _report(tmp_path / "a", chance)
    assert "The judge against real likes" in md and "JUDGE FLAG" in md
    assert judge_likes_flag(chance) and "no better than chance" in judge_likes_flag(chance)
    good = likes_agreement(pd.DataFrame({"outcome": ["win"] * 18 + ["tie", "loss"], "position_flip": [False] * 20}))
    assert good["better_than_chance"] and judge_likes_flag(good) is None
    md = _report(tmp_path / "b", good)
    assert "JUDGE FLAG" not in md and "| better than chance | yes |" in md
    none = likes_agreement(pd.DataFrame({"outcome": [], "position_flip": []}))
    assert "could not be checked" in judge_likes_flag(none)
