"""The pairing rules of core/preference.py on hand-built tweets."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from replyassets.core.preference import (
    PreferenceError,
    build_preferences,
    dpo_record,
    kto_record,
    likes_agreement,
    likes_agreement_items,
    same_reply_pairs,
    split_conflicts,
)
from replyassets.settings import PreferenceSettings

T0 = datetime(2025, 9, 1, 8, 0, 0)


def reply(tweet_id, reply_id, likes, minutes, text=None, followers=1000, valid=True, kept=True, query="q"):
    return {
        "tweet_id": tweet_id, "reply_id": reply_id, "reply_likes": likes,
        "reply_created_at": T0 + timedelta(minutes=minutes), "reply_author_followers": followers,
        "reply_clean": text or f"reply {reply_id} with some distinct words about {tweet_id}",
        "reply": text or f"reply {reply_id}", "tweet": f"tweet {tweet_id}", "tweet_clean": f"tweet {tweet_id}",
        "valid": valid, "kept": kept, "query": query,
    }


def build(rows, split_of=lambda t: "train", **kw):
    return build_preferences(pd.DataFrame(rows), PreferenceSettings(**kw), split_of)


def pair_ids(res):
    return set(res.pairs["pair_id"])


def test_ratio_rule_keeps_a_clear_gap_only():
    res = build([reply("t1", "a", 40, 10), reply("t1", "b", 20, 5), reply("t1", "c", 21, 5)])
    # a vs b: 40 >= 2 * 20 and a posted later -> pair; a vs c: 40 < 42 -> like_ratio; c vs b: 21 < 40
    assert pair_ids(res) == {"a>b"}
    assert res.rejected_by_rule["like_ratio"] == 2
    assert res.candidate_pairs == 3


def test_exposure_rule_drops_a_winner_that_was_posted_earlier():
    res = build([reply("t1", "early", 100, 5), reply("t1", "late", 10, 60)])
    assert res.pairs.empty and res.rejected_by_rule["exposure"] == 1
    res = build([reply("t1", "early", 10, 5), reply("t1", "late", 100, 60)])
    assert pair_ids(res) == {"late>early"}
    row = res.pairs.iloc[0]
    assert row["chosen_created_at"] >= row["rejected_created_at"]


def test_same_minute_counts_as_no_earlier():
    res = build([reply("t1", "a", 50, 30), reply("t1", "b", 10, 30)])
    assert pair_ids(res) == {"a>b"}


def test_min_likes_applies_to_the_chosen_reply():
    res = build([reply("t1", "a", 8, 60), reply("t1", "b", 3, 5)], min_likes=10)
    assert res.pairs.empty and res.rejected_by_rule["min_likes"] == 1
    res = build([reply("t1", "a", 8, 60), reply("t1", "b", 3, 5)], min_likes=8)
    assert pair_ids(res) == {"a>b"}


def test_per_tweet_cap_keeps_the_largest_ratios():
    rows = [reply("t1", "top", 400, 100)] + [reply("t1", f"r{i}", 10 + i * 10, i) for i in range(5)]
    res = build(rows, max_pairs_per_tweet=2)
    # Passing pairs: top over each of r0..r4 (8x-40x, posted later): 5; r4 over r0, r1; r3 over r0,
    # r1; r2 over r0; r1 over r0: 6 more (r4 over r2, r3 over r2... fall under 2x). The cap keeps the
    # two largest ratios, top over r0 (40x) and over r1 (20x); the other 9 are counted against it.
    assert pair_ids(res) == {"top>r0", "top>r1"}
    assert res.rejected_by_rule["per_tweet_cap"] == 9
    assert (res.pairs.groupby("tweet_id").size() <= 2).all()


def test_invalid_duplicate_and_review_rejected_replies_never_pair():
    rows = [reply("t1", "good", 100, 60), reply("t1", "invalid", 5, 1, valid=False, kept=False),
            reply("t1", "dup", 5, 1, kept=False), reply("t1", "vetoed", 5, 1), reply("t1", "ok", 6, 2)]
    decisions = pd.DataFrame({"reply_id": ["vetoed"], "decision": ["reject"], "edited_reply": [None]})
    res = build_preferences(pd.DataFrame(rows), PreferenceSettings(), lambda t: "train", decisions=decisions)
    assert pair_ids(res) == {"good>ok"}
    assert res.replies_excluded == {"not_valid": 1, "duplicate": 1, "review_rejected": 1}
    used = set(res.pairs["chosen_reply_id"]) | set(res.pairs["rejected_reply_id"]) | set(res.kto["reply_id"])
    assert used.isdisjoint({"invalid", "dup", "vetoed"})


def test_review_edit_is_the_text_trained_on():
    rows = [reply("t1", "a", 100, 60), reply("t1", "b", 5, 1)]
    decisions = pd.DataFrame({"reply_id": ["a"], "decision": ["edit"], "edited_reply": ["an edited reply text"]})
    res = build_preferences(pd.DataFrame(rows), PreferenceSettings(), lambda t: "train", decisions=decisions)
    assert res.pairs.iloc[0]["chosen"] == "an edited reply text"


def test_follower_normalization_changes_who_wins():
    # a big account gets 100 likes from 100k followers (1 per 1k); a small one 30 from 2k (15 per 1k)
    rows = [reply("t1", "big", 100, 5, followers=100_000), reply("t1", "small", 30, 60, followers=2_000)]
    raw = build(rows)
    assert raw.pairs.empty and raw.rejected_by_rule["exposure"] == 1  # big wins on raw likes, posted first
    norm = build(rows, normalize_by_followers=True)
    assert pair_ids(norm) == {"small>big"}
    assert norm.pairs.iloc[0]["engagement_ratio"] == pytest.approx(15.0)


def test_identical_texts_are_never_a_pair():
    res = build([reply("t1", "a", 100, 60, text="Same words here."), reply("t1", "b", 5, 1, text="same  words HERE.")])
    assert res.pairs.empty and res.rejected_by_rule["same_text"] == 1


def test_pairs_take_the_split_function_and_never_cross_tweets():
    rows = [reply("t1", "a", 100, 60), reply("t1", "b", 5, 1), reply("t2", "c", 100, 60), reply("t2", "d", 5, 1)]
    res = build(rows, split_of=lambda t: {"t1": "train", "t2": "test"}[t])
    assert dict(zip(res.pairs["tweet_id"], res.pairs["split"], strict=True)) == {"t1": "train", "t2": "test"}
    assert split_conflicts(res.pairs) == []
    bad = res.pairs.copy()
    bad.loc[bad["tweet_id"] == "t1", "split"] = "test"
    curated = pd.DataFrame({"tweet_id": ["t1"], "split": ["train"]})
    assert split_conflicts(bad, curated) == ["t1"]
    assert same_reply_pairs(res.pairs) == []
    forged = res.pairs.copy()
    forged.loc[0, "rejected"] = forged.loc[0, "chosen"].upper()
    assert same_reply_pairs(forged) == [forged.loc[0, "pair_id"]]


def test_kto_view_labels_by_rank_within_the_tweet():
    rows = [reply("t1", n, likes, i) for i, (n, likes) in enumerate([("a", 90), ("b", 40), ("c", 20), ("d", 10), ("e", 5)])]
    res = build(rows)
    labels = dict(zip(res.kto["reply_id"], res.kto["label"], strict=True))
    assert labels == {"a": True, "b": True, "d": False, "e": False}  # c, the middle of five, is left out
    tied = build([reply("t2", "x", 10, 1), reply("t2", "y", 10, 2)])
    assert tied.kto.empty  # equal engagement: the order between them is arbitrary


def test_missing_columns_fail_clearly():
    with pytest.raises(PreferenceError, match="reply_likes"):
        build_preferences(pd.DataFrame({"tweet_id": ["t"], "reply_id": ["r"]}), PreferenceSettings(), lambda t: "train")


def test_training_records_have_the_program_format():
    res = build([reply("t1", "a", 100, 60), reply("t1", "b", 5, 1)])
    rec = dpo_record(res.pairs.iloc[0].to_dict())
    assert rec["prompt"][0]["role"] == "user" and "tweet t1" in rec["prompt"][0]["content"]
    assert rec["chosen"] == [{"role": "assistant", "content": res.pairs.iloc[0]["chosen"]}]
    assert rec["rejected"][0]["content"] != rec["chosen"][0]["content"]
    k = kto_record(res.kto.iloc[0].to_dict())
    assert k["label"] is True and k["completion"][0]["role"] == "assistant"


def test_likes_agreement_on_a_hand_made_case():
    rows = []
    for t in range(8):
        rows += [reply(f"t{t}", f"c{t}", 100, 60), reply(f"t{t}", f"r{t}", 5, 1), reply(f"t{t}", f"m{t}", 20, 30)]
    res = build(rows, split_of=lambda t: "test")
    items = likes_agreement_items(res.pairs)
    assert len(items) == 8  # one pair per tweet: the tweet is the unit
    assert set(items["adapter_reply"].str.extract(r"reply (\w+)")[0]) == {f"c{t}" for t in range(8)}
    assert set(items["base_reply"].str.extract(r"reply (\w+)")[0]) == {f"r{t}" for t in range(8)}  # the 20x gap
    outcomes = ["win"] * 6 + ["tie", "loss"]
    judged = pd.DataFrame({"outcome": outcomes, "position_flip": [False] * 6 + [True, False]})
    a = likes_agreement(judged, resamples=4000)
    assert a["agreement"] == pytest.approx((6 + 0.5) / 8)
    assert (a["agree"], a["disagree"], a["ties"], a["position_flips"]) == (6, 1, 1, 1)
    assert 0.5 < a["ci_low"] < a["agreement"] < a["ci_high"] <= 1.0
    assert a["better_than_chance"] is True
    coin = likes_agreement(pd.DataFrame({"outcome": ["win", "loss"] * 4, "position_flip": [False] * 8}))
    assert coin["agreement"] == 0.5 and coin["better_than_chance"] is False
    assert likes_agreement(pd.DataFrame({"outcome": [], "position_flip": []}))["agreement"] is None
