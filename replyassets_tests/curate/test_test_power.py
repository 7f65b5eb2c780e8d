"""curated_set's WARN check test_power and the explanation of an empty curated set."""

from __future__ import annotations

import pandas as pd

from replyassets.core.quality_checks import check_test_power, why_curated_empty
from replyassets.core.stats import paired_power, required_units
from replyassets.settings import Settings


def _curated(n_test: int, n_train: int) -> pd.DataFrame:
    rows = [{"tweet_id": f"t{i}", "tweet": f"tweet {i}", "split": "test" if i < n_test else "train",
             "rank": i + 1, "train_reply": f"reply {i}"} for i in range(n_test + n_train)]
    return pd.DataFrame(rows)


def test_too_few_test_tweets_say_how_many_more_to_collect():
    s = Settings()
    out = check_test_power(_curated(11, 40), s)
    assert not out.passed
    assert required_units(0.3, 0.8, 0.05) == 90 == out.metadata["tweets_needed"]
    assert out.metadata["test_tweets"] == 11 and out.metadata["more_test_tweets_needed"] == 79
    assert out.metadata["more_tweets_to_collect"] == 790  # 79 more test tweets at a test share of 0.1
    assert out.metadata["power"] == round(paired_power(0.3, 11, 0.05), 4) < 0.2
    assert "evaluation.min_cohens_d = 0.3 (default in replyassets/settings.py)" in out.description
    assert "collect about 790 more tweets" in out.description
    assert "curation.split_test = 0.1 (default in replyassets/settings.py)" in out.description


def test_collected_tweets_count_and_the_cap_is_named():
    s = Settings()
    curated = _curated(2, 3)
    collected = pd.DataFrame({"tweet_id": [f"c{i}" for i in range(3000)], "tweet": ["a tweet"] * 3000})
    out = check_test_power(curated, s, collected=collected)
    # about 10 % of 3,000 collected tweets hash into the test split: well over the 90 needed
    assert out.passed and out.metadata["test_tweets"] >= 90, out.description
    capped = s.model_copy(update={"evaluation": s.evaluation.model_copy(update={"max_test_tweets": 50})})
    out = check_test_power(curated, capped, collected=collected)
    assert not out.passed and out.metadata["test_tweets"] == 50
    assert "evaluation.max_test_tweets = 50" in out.description and "raise it" in out.description


def test_why_curated_empty_names_the_rules_and_their_settings():
    s = Settings()
    deduped = pd.DataFrame({
        "valid": [False, False, False, True],
        "kept": [False, False, False, False],
        "reasons": ["toxicity", "toxicity,length", "language", ""],
        "dup_kind": [None, None, None, "semantic"],
    })
    text = why_curated_empty(deduped, s)
    assert text.startswith("4 pairs in deduped_pairs")
    assert "toxicity [validation]: validation.max_toxicity = 0.3 (default in replyassets/settings.py) removed 2" in text
    assert "semantic_duplicate [dedup]: dedup.similarity_threshold = 0.9" in text
    assert "deduped_pairs is empty" in why_curated_empty(deduped.iloc[0:0], s)
