"""The shipped sample has engagement signal: its likes follow the documented model in
scripts/make_sample.py, so preference pairs exist and the chosen replies differ measurably."""

from __future__ import annotations

import random
import sys

import pandas as pd
import pytest

from replyassets.settings import (
    PROJECT_ROOT,
    PreferenceSettings,
    get_settings,
    load_queries,
)

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import make_sample  # noqa: E402


def test_like_model_rewards_the_documented_qualities_and_early_posting():
    plain = "Shipping small changes keeps reviews quick and rollbacks cheap."
    asks = plain + " How do you handle flaky tests?"
    specific = "We cut deploys to 15 minutes by shipping small changes."
    bare = "Hard agree. " + plain
    assert make_sample.reply_quality(asks) > make_sample.reply_quality(plain)
    assert make_sample.reply_quality(specific) > make_sample.reply_quality(plain)
    assert make_sample.reply_quality(bare) < make_sample.reply_quality(plain)

    def likes(text, delay):  # the same noise draw for every text
        return make_sample.clean_reply_likes(text, delay, random.Random(5))

    assert likes(asks, 3600) > likes(plain, 3600) > likes(bare, 3600)
    assert likes(plain, 600) > likes(plain, 2 * 86400)
    assert 6 <= likes(bare, 3 * 86400) and likes(asks + " We did 3x.", 420) <= 480


@pytest.fixture(scope="module")
def sample_replies():
    from replyassets.core.collect import collect_partition
    from replyassets.core.validate import validate_pairs
    from replyassets.scorers.language import LanguageScorer
    from replyassets.scorers.toxicity import make_toxicity_scorer
    from replyassets.sources.replay import ReplaySource

    s = get_settings("local")
    source = ReplaySource(PROJECT_ROOT / "data" / "sample")
    frames = [collect_partition(q, source, q.collection_settings(s.collection)).pairs
              for q in load_queries(PROJECT_ROOT / "config" / "queries.yaml")]
    pairs = pd.concat(frames, ignore_index=True).drop_duplicates("reply_id").reset_index(drop=True)
    validated = validate_pairs(pairs, s.validation, LanguageScorer.from_settings(s.validation), make_toxicity_scorer("local"))
    return validated[validated["valid"]].assign(kept=True).reset_index(drop=True)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_the_shipped_sample_yields_pairs_whose_chosen_replies_differ(sample_replies):
    from scipy.stats import spearmanr

    from replyassets.core.preference import build_preferences

    df = sample_replies
    rho_quality = spearmanr(df["reply"].map(make_sample.reply_quality), df["reply_likes"]).statistic
    rho_delay = spearmanr(df["reply_time_diff_seconds"], df["reply_likes"]).statistic
    assert rho_quality > 0.25 and rho_delay < -0.25, (rho_quality, rho_delay)
    res = build_preferences(df, PreferenceSettings(), lambda t: "train")
    tweets = res.pairs["tweet_id"].nunique()
    assert len(res.pairs) >= 300 and tweets >= 150, (len(res.pairs), tweets)
    assert res.rejected_by_rule["exposure"] > 0  # earlier replies do collect more likes: the rule bites
    better = (res.pairs["chosen"].map(make_sample.reply_quality) - res.pairs["rejected"].map(make_sample.reply_quality))
    assert (better > 0).mean() > 0.5 and (better < 0).mean() < 0.3, better.describe()
    # the exposure rule held: no chosen reply was posted before its rejected one
    assert (res.pairs["chosen_created_at"] >= res.pairs["rejected_created_at"]).all()
