"""Leaderboard rows, the champion candidate, evaluation prompts and training slots (pure parts)."""

from __future__ import annotations

import multiprocessing as mp
import time

import pandas as pd
import pytest

from replyassets.defs.leaderboard import choose_candidate, leaderboard_rows


def _report(win, lo, hi, p, curated="c1", retrieval=0.6, tweets=30):
    return {"curated_set_hash": curated, "p_raw": p, "verdict": {"label": "not shown better"},
            "stats": {"base": {"win_rate": win, "win_rate_ci_low": lo, "win_rate_ci_high": hi, "n_tweets": tweets,
                               "lc_win_rate": win},
                      "retrieval": {"win_rate": retrieval}}}


def test_one_row_per_experiment_with_holm_within_each_curated_set():
    reports = {
        "default": _report(0.62, 0.55, 0.70, 0.01),
        "r8": _report(0.58, 0.49, 0.66, 0.04),
        "twin": _report(0.52, 0.44, 0.60, 0.03),
        "old": _report(0.70, 0.60, 0.80, 0.02, curated="c0"),
    }
    adapters = {n: {"final_train_loss": 1.0, "final_eval_loss": 1.2, "recipe": n, "cost_usd": 0.0,
                    "train_tokens_per_s": 500.0} for n in [*reports, "untested"]}
    board = leaderboard_rows(reports, adapters, champion="default")
    assert sorted(board["experiment"]) == ["default", "old", "r8", "twin", "untested"]
    by = board.set_index("experiment")
    # Holm over the three experiments of curated set c1: 0.01*3, max(0.03*2, 0.03), max(0.04, 0.06)
    assert by.loc["default", "p_holm"] == pytest.approx(0.03)
    assert by.loc["twin", "p_holm"] == pytest.approx(0.06)
    assert by.loc["r8", "p_holm"] == pytest.approx(0.06)
    assert by.loc["old", "p_holm"] == pytest.approx(0.02) and by.loc["old", "comparisons"] == 1
    assert by.loc["default", "comparisons"] == 3
    assert bool(by.loc["default", "champion"]) and not by.loc["r8", "champion"]
    assert by.loc["untested", "verdict"] == "not evaluated" and pd.isna(by.loc["untested", "win_rate"])
    assert by.loc["r8", "win_rate_vs_retrieval"] == pytest.approx(0.6)
    assert list(board["experiment"])[0] == "old"  # sorted by the lower end of the interval


def test_candidate_is_the_best_non_champion():
    board = leaderboard_rows({"default": _report(0.62, 0.55, 0.70, 0.01), "r8": _report(0.58, 0.49, 0.66, 0.04),
                              "twin": _report(0.60, 0.52, 0.69, 0.03)}, {}, champion="default")
    assert choose_candidate(board, "default") == "twin"
    assert choose_candidate(board, None) == "default"
    assert choose_candidate(board.iloc[0:0], None) is None


def test_evaluation_tweets_are_exactly_the_test_split_by_id():
    from replyassets.core.curate import tweet_split
    from replyassets.core.eval_prompts import evaluation_tweets
    from replyassets.settings import CurationSettings

    settings = CurationSettings()
    ids = [f"t{i}" for i in range(400)]
    collected = pd.DataFrame({"tweet_id": ids * 2, "tweet_clean": [f"tweet number {i}" for i in range(400)] * 2})
    test_ids = [t for t in ids if tweet_split(t, settings) == "test"]
    train_ids = [t for t in ids if tweet_split(t, settings) == "train"]
    curated = pd.DataFrame({"tweet_id": [test_ids[0], train_ids[0]], "split": ["test", "train"], "rank": [1, 2],
                            "train_reply": ["a real reply", "another"]})
    out = evaluation_tweets(collected, curated, settings, limit=10_000)
    assert set(out["tweet_id"]) == set(test_ids) and out["tweet_id"].is_unique
    assert out.iloc[0]["tweet_id"] == test_ids[0] and out.iloc[0]["reference"] == "a real reply"  # curated first
    assert out["reference"].iloc[1:].isna().all()
    assert all("tweet number" in p for p in out["prompt"])
    assert len(evaluation_tweets(collected, curated, settings, limit=5)) == 5
    # A tweet the curated set put in train (small sets may move one) is never a prompt, and a
    # curated test tweet always is, whatever its id alone would say.
    moved = curated.assign(split=["train", "test"])
    out = evaluation_tweets(collected, moved, settings, limit=10_000)
    assert test_ids[0] not in set(out["tweet_id"]) and train_ids[0] in set(out["tweet_id"])
    assert out.iloc[0]["tweet_id"] == train_ids[0]


@pytest.mark.parametrize(("limit", "overlap"), [(1, False), (2, True)])
def test_training_slots_limit_concurrency_across_processes(tmp_path, limit, overlap):
    from replyassets_tests.evaluate import slot_worker

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=slot_worker.hold_and_meet, args=(tmp_path, limit, barrier, 15.0, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    met = [q.get(timeout=5) for _ in procs]
    # Both holders met inside their slots only when two slots exist.
    assert all(met) is overlap and any(met) is overlap, met


def test_a_killed_holder_frees_its_slot(tmp_path):
    from replyassets.core.slots import slot

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    from replyassets_tests.evaluate import slot_worker

    holder = ctx.Process(target=slot_worker.hold_and_tell, args=(tmp_path, q))
    holder.start()
    assert q.get(timeout=60) == "acquired"
    holder.kill()
    holder.join(10)
    with slot(tmp_path, 1, poll_s=0.05):  # would wait forever if the lock outlived its process
        pass
