"""Pandera data contracts for every stored table (no Dagster import here).

The Dagster side turns each model into a Dagster type with ``dagster_pandera`` so every
materialization is validated and failures show Pandera's failure cases in the UI; the
same models can validate a frame in a notebook or a test.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from replyassets.settings import SLUG_RE

SLUG_PATTERN = SLUG_RE.pattern
REASONS_PATTERN = r"^([a-z0-9_]+(,[a-z0-9_]+)*)?$"


class RawPairs(pa.DataFrameModel):
    """``raw_tweets``: tweet/reply pairs that passed the collection filters, one row per reply."""

    query: Series[str] = pa.Field(str_matches=SLUG_PATTERN, description="query name (partition key)")
    source: Series[str] = pa.Field(description="replay | apify | ...")
    tweet_id: Series[str] = pa.Field(str_length={"min_value": 1})
    tweet: Series[str]
    tweet_author: Series[str] = pa.Field(nullable=True)
    tweet_author_followers: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    tweet_likes: Series[int] = pa.Field(ge=0)
    tweet_retweets: Series[int] = pa.Field(ge=0)
    tweet_created_at: Series[pd.Timestamp]
    reply_id: Series[str] = pa.Field(str_length={"min_value": 1})
    reply: Series[str]
    reply_author: Series[str] = pa.Field(nullable=True)
    reply_author_followers: Series[int] = pa.Field(ge=0)
    reply_likes: Series[int] = pa.Field(ge=0)
    reply_retweets: Series[int] = pa.Field(ge=0)
    reply_created_at: Series[pd.Timestamp]
    reply_time_diff_seconds: Series[int]
    has_media: Series[bool]
    has_urls: Series[bool]
    lang: Series[str] = pa.Field(nullable=True)
    collected_at: Series[pd.Timestamp]

    @pa.dataframe_check(description="a reply is stored once per query")
    def unique_reply_per_query(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["query", "reply_id"]).any()

    class Config:
        coerce = True
        strict = False
        name = "RawPairs"


class Rejections(pa.DataFrameModel):
    """``raw_tweet_rejections``: every item collection did not keep, with all its reasons."""

    query: Series[str] = pa.Field(str_matches=SLUG_PATTERN)
    source: Series[str]
    stage: Series[str] = pa.Field(isin=["normalize", "tweet_filter", "reply_filter", "pairing", "source"])
    item_kind: Series[str] = pa.Field(isin=["tweet", "reply", "item"])
    item_id: Series[str] = pa.Field(nullable=True)
    tweet_id: Series[str] = pa.Field(nullable=True)
    reasons: Series[str] = pa.Field(str_length={"min_value": 1}, str_matches=REASONS_PATTERN)
    detail: Series[str] = pa.Field(nullable=True)
    collected_at: Series[pd.Timestamp]

    class Config:
        coerce = True
        strict = False
        name = "Rejections"


class ValidatedPairs(RawPairs):
    """``validated_pairs``: every raw pair with each rule's verdict, scores and cleaned text."""

    tweet_clean: Series[str]
    reply_clean: Series[str]
    lang_confidence: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    toxicity: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    meaningful_words: Series[int] = pa.Field(ge=0)
    generic_ratio: Series[float] = pa.Field(ge=0, le=1)
    valid: Series[bool]
    reasons: Series[str] = pa.Field(str_matches=REASONS_PATTERN)

    @pa.dataframe_check(description="valid rows carry no reasons; rejected rows carry at least one")
    def reasons_match_verdict(cls, df: pd.DataFrame) -> bool:
        return bool(((df["reasons"] == "") == df["valid"]).all())

    class Config:
        coerce = True
        strict = False
        name = "ValidatedPairs"


class DedupedPairs(ValidatedPairs):
    """``deduped_pairs``: every validated pair with the global dedup decision."""

    kept: Series[bool]
    duplicate_of: Series[str] = pa.Field(nullable=True)
    similarity: Series[float] = pa.Field(nullable=True, ge=-1.0001, le=1.0001)
    dup_kind: Series[str] = pa.Field(nullable=True, isin=["exact", "semantic"])

    @pa.dataframe_check(description="only valid rows are kept")
    def kept_implies_valid(cls, df: pd.DataFrame) -> bool:
        return bool((~df["kept"] | df["valid"]).all())

    @pa.dataframe_check(description="a dropped duplicate names a kept row")
    def duplicate_of_is_kept(cls, df: pd.DataFrame) -> bool:
        kept_ids = set(df.loc[df["kept"], "reply_id"])
        dup = df["duplicate_of"].dropna()
        return bool(dup.isin(kept_ids).all())

    class Config:
        coerce = True
        strict = False
        name = "DedupedPairs"


class CuratedSet(pa.DataFrameModel):
    """``curated_set``: the ranked, reviewed, split training set."""

    reply_id: Series[str] = pa.Field(unique=True)
    tweet_id: Series[str]
    query: Series[str]
    reply_author: Series[str] = pa.Field(nullable=True)
    prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    train_reply: Series[str] = pa.Field(str_length={"min_value": 1})
    quality_score: Series[float]
    rank: Series[int] = pa.Field(ge=1)
    split: Series[str] = pa.Field(isin=["train", "eval", "test"])
    review_status: Series[str] = pa.Field(isin=["kept", "edited", "pending"])

    @pa.dataframe_check(description="no tweet appears in two splits")
    def splits_grouped_by_tweet(cls, df: pd.DataFrame) -> bool:
        return bool((df.groupby("tweet_id")["split"].nunique() <= 1).all())

    class Config:
        coerce = True
        strict = False
        name = "CuratedSet"


class ReviewDecisions(pa.DataFrameModel):
    """``review_decisions``: written by ``replyassets review``; keyed by reply id."""

    reply_id: Series[str] = pa.Field(unique=True)
    decision: Series[str] = pa.Field(isin=["keep", "reject", "edit"])
    edited_reply: Series[str] = pa.Field(nullable=True)

    class Config:
        coerce = True
        strict = False
        name = "ReviewDecisions"
