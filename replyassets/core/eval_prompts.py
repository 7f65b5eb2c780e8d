"""Which tweets an evaluation asks the models to reply to (no Dagster here).

Every collected tweet that the split function (``core.curate.tweet_split``, a function of the
tweet id alone) assigns to the test split is an evaluation prompt, whether or not one of its
replies made it into the curated set: the judge needs no reference reply, and twenty-odd
curated test tweets cannot show a paired effect of d = 0.3 (that needs about 90). Curated
tweets of the test split come first (they have a reference reply), then the others, by tweet
id; at most ``limit`` tweets. No tweet of the train or eval split is ever a prompt.
"""

from __future__ import annotations

import pandas as pd

from replyassets.core.curate import render_prompt, tweet_split
from replyassets.settings import CurationSettings, EvaluationSettings

COLUMNS = ["tweet_id", "tweet", "prompt", "reference"]


def decoding_seeds(settings: EvaluationSettings) -> list[int]:
    """The decoding seeds every generation of an evaluation uses (one generation per tweet and
    seed): ``generation_seed``, ``generation_seed + 1``, ... (``decoding_seeds`` of them)."""
    return [settings.generation_seed + k for k in range(settings.decoding_seeds)]


def evaluation_tweets(
    collected: pd.DataFrame, curated: pd.DataFrame, settings: CurationSettings, limit: int
) -> pd.DataFrame:
    """One row per test tweet: ``tweet_id``, ``tweet`` (cleaned text), ``prompt``, ``reference``.

    ``collected``: rows with ``tweet_id`` and ``tweet_clean`` (or ``tweet``), e.g. deduped_pairs;
    ``curated``: curated_set (its ``split``, ``rank`` and ``train_reply`` give references).
    """
    text_col = "tweet_clean" if "tweet_clean" in collected.columns else "tweet"
    tweets = (
        collected[["tweet_id", text_col]].dropna().astype({"tweet_id": str})
        .drop_duplicates("tweet_id").rename(columns={text_col: "tweet"})
    )
    tweets = tweets[tweets["tweet"].str.strip().str.len() > 0]
    refs = pd.Series(dtype="object")
    curated_split: dict[str, str] = {}
    if len(curated):
        cur = curated.astype({"tweet_id": str})
        curated_split = dict(zip(cur["tweet_id"], cur["split"], strict=True))
        refs = cur[cur["split"] == "test"].sort_values("rank").drop_duplicates("tweet_id").set_index("tweet_id")["train_reply"]
    # The curated set's own assignment wins for its tweets (on sets too small for the blocking
    # checks it may move a tweet to fill an empty split): no train or eval tweet is a prompt.
    tweets = tweets[tweets["tweet_id"].map(lambda t: curated_split.get(t) or tweet_split(t, settings)) == "test"]
    tweets = tweets.assign(reference=tweets["tweet_id"].map(refs), curated=tweets["tweet_id"].isin(refs.index))
    tweets = tweets.sort_values(["curated", "tweet_id"], ascending=[False, True]).head(int(limit))
    tweets["prompt"] = [render_prompt(settings.prompt_template, t) for t in tweets["tweet"]]
    return tweets[COLUMNS].reset_index(drop=True)
