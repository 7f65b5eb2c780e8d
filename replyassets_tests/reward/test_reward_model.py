"""The reward model alone (core/reward_model.py, judges/reward_model.py): it learns a planted
signal, it is no better than chance without one, it refuses the tweets it trained on, and the
artifact round-trips. The encoder is a deterministic bag-of-words projection (a stand-in for the
sentence embedder, which these tests do not need)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from replyassets.core.reward_model import (
    RewardModel,
    RewardModelError,
    TrainedTweetError,
    fit,
    select_judge,
    validate,
)
from replyassets.judges.base import JudgeError
from replyassets.judges.reward_model import RewardModelJudge

DIM = 64
WORDS = ["ship", "deploy", "test", "users", "cost", "team", "code", "data", "build", "plan", "week", "idea"]


def encode(texts):
    """Sum of a fixed random vector per word, L2-normalised (like the sentence embedder's output)."""
    out = np.zeros((len(texts), DIM))
    for i, t in enumerate(texts):
        for w in str(t).lower().split():
            seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "little")
            out[i] += np.random.default_rng(seed).standard_normal(DIM)
        n = np.linalg.norm(out[i])
        out[i] = out[i] / n if n else out[i]
    return out.astype("float32")


def pairs(n_tweets: int, pairs_per_tweet: int, seed: int, planted: bool, prefix: str) -> pd.DataFrame:
    """Pairs whose chosen reply carries the word "thanks" (planted) or a coin decides (not)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_tweets):
        tweet = f"{prefix} tweet {i} about " + " ".join(rng.choice(WORDS, 3))
        for k in range(pairs_per_tweet):
            plain = " ".join(rng.choice(WORDS, 5))
            good = "thanks " + " ".join(rng.choice(WORDS, 4))
            chosen, rejected = good, plain
            if not planted and rng.random() < 0.5:
                chosen, rejected = rejected, chosen
            rows.append({"pair_id": f"{prefix}{i}-{k}", "tweet_id": f"{prefix}{i}", "tweet": tweet,
                         "chosen": chosen, "rejected": rejected})
    return pd.DataFrame(rows)


def test_it_learns_a_planted_signal_and_checks_it_on_held_out_tweets():
    train, test = pairs(80, 2, 1, True, "a"), pairs(40, 2, 2, True, "b")
    model = fit(train, encode, embedding_model="bow", regularization=1.0, held_out=test)
    v = validate(model, test, encode, resamples=1000, seed=0)
    assert v["tweets"] == 40 and v["pairs"] == 80
    assert v["agreement"] > 0.9 and v["ci_low"] > 0.8, v
    assert v["agree"] + v["ties"] + v["disagree"] == 80


def test_without_a_signal_its_interval_holds_chance():
    train, test = pairs(80, 2, 3, False, "a"), pairs(60, 2, 4, False, "b")
    model = fit(train, encode, embedding_model="bow", regularization=1.0)
    v = validate(model, test, encode, resamples=1000, seed=0)
    assert v["ci_low"] < 0.5 < v["ci_high"], v
    name, reason = select_judge(["reward_model", "offline"], v, 0.5)
    assert name == "offline" and "reward_model not used" in reason and "lower end not above 0.5" in reason


def test_it_refuses_the_tweets_it_trained_on():
    train, test = pairs(30, 2, 5, True, "a"), pairs(10, 2, 6, True, "b")
    model = fit(train, encode, embedding_model="bow")
    with pytest.raises(TrainedTweetError, match="trained on 2 of the tweets"):
        validate(model, pd.concat([test, train[train["tweet_id"].isin(["a0", "a1"])]]), encode, resamples=200, seed=0)
    # by text too (the judge sees texts only), whatever the case and spacing
    judge = RewardModelJudge(model, encode)
    with pytest.raises(JudgeError, match="held-out tweets only"):
        judge.compare("  " + train["tweet"].iloc[0].upper() + " ", "thanks a lot", "no")
    assert judge.compare(test["tweet"].iloc[0], "thanks code ship", "code ship plan").winner == "A"
    # a training tweet reposted under another id among the held-out tweets: its pairs are left
    # out of training, so the model may judge that text
    repost = train["tweet"].iloc[0]
    reposted = fit(train, encode, embedding_model="bow", held_out_tweets=["  " + repost.upper()])
    assert reposted.extra["left_out_shared_text"] == 2 and reposted.training_pairs == len(train) - 2
    assert "a0" not in reposted.training_tweet_ids
    assert RewardModelJudge(reposted, encode).compare(repost, "thanks code ship", "code ship plan").winner == "A"
    # training refuses a held-out set that shares a tweet with the training set
    with pytest.raises(RewardModelError, match="1 tweet\\(s\\) are in both"):
        fit(train, encode, embedding_model="bow", held_out=pd.concat([test, train.head(1)]))


def test_the_judge_has_no_position_bias_and_the_artifact_round_trips():
    model = fit(pairs(40, 2, 7, True, "a"), encode, embedding_model="bow")
    again = RewardModel.from_json(model.to_json())
    assert again == model and again.sha256 == model.sha256
    judge = RewardModelJudge(again, encode)
    tweet, a, b = "b tweet about users", "thanks team build", "team build week"
    judge.prepare([tweet, a, b])
    ab, ba = judge.compare(tweet, a, b), judge.compare(tweet, b, a)
    assert (ab.winner, ba.winner) == ("A", "B")
    assert 1 <= judge.score(tweet, b).value < judge.score(tweet, a).value <= 10
    assert model.training_set_hash in judge.prompt_version or model.training_set_hash[:16] in judge.prompt_version
    with pytest.raises(RewardModelError, match="not a replyassets-reward-model-v1"):
        RewardModel.from_json('{"weights": []}')


def test_select_judge_uses_the_reward_model_only_above_the_bound():
    good = {"agreement": 0.7, "ci_low": 0.6, "ci_high": 0.8, "tweets": 120, "pairs": 300}
    assert select_judge(["reward_model", "offline"], good, 0.5)[0] == "reward_model"
    assert select_judge(["anthropic", "reward_model"], good, 0.5)[0] == "anthropic"
    edge = {**good, "ci_low": 0.5}
    assert select_judge(["reward_model", "offline"], edge, 0.5)[0] == "offline"
    with pytest.raises(RewardModelError, match="no judge qualifies"):
        select_judge(["reward_model"], edge, 0.5)


def test_judges_agreement_counts_same_and_opposite_outcomes():
    from replyassets.core.preference import judges_agreement

    a = pd.DataFrame({"item_id": ["1", "2", "3", "4"], "outcome": ["win", "loss", "tie", "win"]})
    b = pd.DataFrame({"item_id": ["1", "2", "3", "4"], "outcome": ["win", "win", "tie", "invalid"]})
    (row,) = judges_agreement({"reward_model": a, "offline": b})
    assert row == {"judge_a": "reward_model", "judge_b": "offline", "items": 3,
                   "same_outcome": 2 / 3, "opposite": 1 / 3}
    assert judges_agreement({"offline": b}) == []


def test_evaluation_judges_setting_and_its_single_judge_form():
    from pydantic import ValidationError

    from replyassets.settings import EvaluationSettings, Settings

    assert EvaluationSettings(judge="offline").judges == ["offline"]
    assert EvaluationSettings(judges=["reward_model", "offline"]).fixed_judges == ["offline"]
    with pytest.raises(ValidationError, match="disagree"):
        EvaluationSettings(judge="offline", judges=["anthropic"])
    with pytest.raises(ValidationError, match="twice"):
        EvaluationSettings(judges=["offline", "offline"])
    with pytest.raises(ValidationError, match="judges"):
        EvaluationSettings(judges=["gpt"])
    local = Settings.model_validate({"evaluation": {"judges": ["reward_model", "offline"]}})
    assert local.reward_model.min_agreement_low == 0.5
