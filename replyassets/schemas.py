"""Pandera data contracts for every stored table (no Dagster import here).

The Dagster side turns each model into a Dagster type with ``dagster_pandera`` so every
materialization is validated and failures show Pandera's failure cases in the UI; the
same models can validate a frame in a notebook or a test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from replyassets.settings import SLUG_RE

SLUG_PATTERN = SLUG_RE.pattern
REASONS_PATTERN = r"^([a-z0-9_]+(,[a-z0-9_]+)*)?$"


class RawPairs(pa.DataFrameModel):
    """``raw_tweets``: tweet/reply pairs that passed the collection filters, one row per reply."""

    query: Series[str] = pa.Field(
        str_matches=SLUG_PATTERN, description="Query name from config/queries.yaml (the partition key)"
    )
    source: Series[str] = pa.Field(description="Where the pair came from: replay (local exports) or apify")
    tweet_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="Id of the source tweet")
    tweet: Series[str] = pa.Field(description="Text of the source tweet, as collected")
    tweet_author: Series[str] = pa.Field(nullable=True, description="Handle of the tweet's author")
    tweet_author_followers: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=0, description="Followers of the tweet's author at collection time"
    )
    tweet_likes: Series[int] = pa.Field(ge=0, description="Likes of the source tweet at collection time")
    tweet_retweets: Series[int] = pa.Field(ge=0, description="Retweets of the source tweet at collection time")
    tweet_created_at: Series[pd.Timestamp] = pa.Field(description="When the tweet was posted (naive UTC)")
    reply_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="Id of the reply (one row per reply)")
    reply: Series[str] = pa.Field(description="Text of the reply, as collected")
    reply_author: Series[str] = pa.Field(nullable=True, description="Handle of the reply's author")
    reply_author_followers: Series[int] = pa.Field(
        ge=0, description="Followers of the reply's author at collection time"
    )
    reply_likes: Series[int] = pa.Field(ge=0, description="Likes of the reply at collection time (engagement)")
    reply_retweets: Series[int] = pa.Field(ge=0, description="Retweets of the reply at collection time")
    reply_created_at: Series[pd.Timestamp] = pa.Field(description="When the reply was posted (naive UTC)")
    reply_time_diff_seconds: Series[int] = pa.Field(
        description="Seconds between the tweet and the reply (reply_created_at - tweet_created_at)"
    )
    has_media: Series[bool] = pa.Field(description="The reply carries images or video")
    has_urls: Series[bool] = pa.Field(description="The reply contains links")
    lang: Series[str] = pa.Field(nullable=True, description="Language code the source reported for the reply")
    collected_at: Series[pd.Timestamp] = pa.Field(description="When this row was collected (naive UTC)")

    @pa.dataframe_check(description="a reply is stored once per query")
    def unique_reply_per_query(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["query", "reply_id"]).any()

    class Config:
        coerce = True
        strict = False
        name = "RawPairs"


class Rejections(pa.DataFrameModel):
    """``raw_tweet_rejections``: every item collection did not keep, with all its reasons."""

    query: Series[str] = pa.Field(
        str_matches=SLUG_PATTERN, description="Query name from config/queries.yaml (the partition key)"
    )
    source: Series[str] = pa.Field(description="Where the item came from: replay (local exports) or apify")
    stage: Series[str] = pa.Field(
        isin=["normalize", "tweet_filter", "reply_filter", "pairing", "source"],
        description="The collection stage that rejected the item",
    )
    item_kind: Series[str] = pa.Field(isin=["tweet", "reply", "item"], description="What was rejected")
    item_id: Series[str] = pa.Field(nullable=True, description="Id of the rejected item (empty when it had none)")
    tweet_id: Series[str] = pa.Field(nullable=True, description="The tweet a rejected reply belongs to, when known")
    reasons: Series[str] = pa.Field(
        str_length={"min_value": 1},
        str_matches=REASONS_PATTERN,
        description="Every rule the item broke: comma-separated rule codes",
    )
    detail: Series[str] = pa.Field(nullable=True, description="The offending item as JSON, truncated")
    collected_at: Series[pd.Timestamp] = pa.Field(description="When the item was collected (naive UTC)")

    class Config:
        coerce = True
        strict = False
        name = "Rejections"


class ValidatedPairs(RawPairs):
    """``validated_pairs``: every raw pair with each rule's verdict, scores and cleaned text."""

    tweet_clean: Series[str] = pa.Field(description="Tweet text after cleaning (entities decoded, contacts masked, @handles replaced, hashtags as words)")
    reply_clean: Series[str] = pa.Field(description="Reply text after the same cleaning: the text trained on")
    lang_confidence: Series[float] = pa.Field(
        ge=0, le=1, nullable=True, description="Language detector's confidence that the reply is English"
    )
    toxicity: Series[float] = pa.Field(
        ge=0, le=1, nullable=True, description="Toxicity score of the reply (higher: more toxic)"
    )
    meaningful_words: Series[int] = pa.Field(
        ge=0, description="Unique words in the reply that are not stop words"
    )
    generic_ratio: Series[float] = pa.Field(
        ge=0, le=1, description="Share of the reply's words that belong to generic phrases"
    )
    valid: Series[bool] = pa.Field(description="The pair passed every validation rule")
    reasons: Series[str] = pa.Field(
        str_matches=REASONS_PATTERN,
        description="Validation rules the pair broke, comma-separated (empty when valid)",
    )

    @pa.dataframe_check(description="valid rows carry no reasons; rejected rows carry at least one")
    def reasons_match_verdict(cls, df: pd.DataFrame) -> bool:
        return bool(((df["reasons"] == "") == df["valid"]).all())

    class Config:
        coerce = True
        strict = False
        name = "ValidatedPairs"


class DedupedPairs(ValidatedPairs):
    """``deduped_pairs``: every validated pair with the global dedup decision."""

    kept: Series[bool] = pa.Field(description="The pair survives deduplication (valid and not a duplicate)")
    duplicate_of: Series[str] = pa.Field(
        nullable=True, description="reply_id of the kept pair this one duplicates (empty when not a duplicate)"
    )
    similarity: Series[float] = pa.Field(
        nullable=True,
        ge=-1.0001,
        le=1.0001,
        description="Cosine similarity of the reply's embedding to the kept duplicate's",
    )
    dup_kind: Series[str] = pa.Field(
        nullable=True, isin=["exact", "semantic"], description="How the duplicate was found"
    )

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

    reply_id: Series[str] = pa.Field(unique=True, description="Id of the reply")
    tweet_id: Series[str] = pa.Field(description="Id of the source tweet (splits are grouped by it)")
    query: Series[str] = pa.Field(description="Query the pair was collected for")
    reply_author: Series[str] = pa.Field(nullable=True, description="Handle of the reply's author")
    prompt: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="The user turn the model sees: the prompt template around the tweet"
    )
    train_reply: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="The assistant turn trained on: the cleaned or reviewer-edited reply"
    )
    quality_score: Series[float] = pa.Field(
        description="Weighted engagement, author credibility and timing, each on a log scale in [0, 1]"
    )
    rank: Series[int] = pa.Field(ge=1, description="Position by quality_score (1 = best)")
    split: Series[str] = pa.Field(isin=["train", "eval", "test"], description="Which split the pair belongs to")
    review_status: Series[str] = pa.Field(
        isin=["kept", "edited", "pending"], description="Manual review outcome so far"
    )

    @pa.dataframe_check(description="no tweet appears in two splits")
    def splits_grouped_by_tweet(cls, df: pd.DataFrame) -> bool:
        return bool((df.groupby("tweet_id")["split"].nunique() <= 1).all())

    class Config:
        coerce = True
        strict = False
        name = "CuratedSet"


class PreferencePairs(pa.DataFrameModel):
    """``preference_pairs``: (chosen, rejected) replies to one tweet, from likes (core/preference.py)."""

    pair_id: Series[str] = pa.Field(unique=True, description="chosen reply id > rejected reply id")
    tweet_id: Series[str] = pa.Field(description="The source tweet both replies answer")
    split: Series[str] = pa.Field(
        isin=["train", "eval", "test"], description="The curated set's split of the tweet (same assignment function)"
    )
    prompt: Series[str] = pa.Field(str_length={"min_value": 1}, description="The user turn, as in curated_set")
    chosen: Series[str] = pa.Field(str_length={"min_value": 1}, description="The reply readers liked more")
    rejected: Series[str] = pa.Field(str_length={"min_value": 1}, description="The reply readers liked less")
    chosen_likes: Series[int] = pa.Field(ge=0, description="Likes of the chosen reply (at least preference.min_likes)")
    rejected_likes: Series[int] = pa.Field(ge=0, description="Likes of the rejected reply")
    engagement_ratio: Series[float] = pa.Field(
        nullable=True, ge=1.0,
        description="Chosen / rejected engagement: at least preference.min_like_ratio (empty when the rejected has 0)",
    )
    chosen_created_at: Series[pd.Timestamp] = pa.Field(description="When the chosen reply was posted")
    rejected_created_at: Series[pd.Timestamp] = pa.Field(description="When the rejected reply was posted")

    @pa.dataframe_check(description="exposure rule: the chosen reply was posted no earlier than the rejected one")
    def chosen_not_earlier(cls, df: pd.DataFrame) -> bool:
        return bool((df["chosen_created_at"] >= df["rejected_created_at"]).all())

    @pa.dataframe_check(description="no tweet appears in two splits")
    def splits_grouped_by_tweet(cls, df: pd.DataFrame) -> bool:
        return bool((df.groupby("tweet_id")["split"].nunique() <= 1).all())

    class Config:
        coerce = True
        strict = False
        name = "PreferencePairs"


class PreferenceKto(pa.DataFrameModel):
    """``preference_kto``: single replies labelled desirable/undesirable by engagement rank."""

    reply_id: Series[str] = pa.Field(unique=True, description="Id of the reply")
    tweet_id: Series[str] = pa.Field(description="The source tweet")
    split: Series[str] = pa.Field(isin=["train", "eval", "test"], description="The curated set's split of the tweet")
    prompt: Series[str] = pa.Field(str_length={"min_value": 1}, description="The user turn, as in curated_set")
    completion: Series[str] = pa.Field(str_length={"min_value": 1}, description="The reply")
    label: Series[bool] = pa.Field(description="Desirable (top half by engagement in its tweet) or not (bottom half)")
    engagement_rank: Series[int] = pa.Field(ge=1, description="1 = most engagement among the tweet's replies")

    class Config:
        coerce = True
        strict = False
        name = "PreferenceKto"


class RewardModelArtifact(pa.DataFrameModel):
    """``reward_model``: the fitted Bradley-Terry model itself, one row (core/reward_model.py)."""

    model_sha256: Series[str] = pa.Field(unique=True, str_length={"min_value": 64, "max_value": 64},
                                         description="sha256 of model_json: the judge's identity")
    training_set_hash: Series[str] = pa.Field(description="Content hash of the training pairs (train split)")
    model_json: Series[str] = pa.Field(str_length={"min_value": 2},
                                       description="The model: weights, feature scale, training tweet ids and hashes")
    validation_json: Series[str] = pa.Field(description="Its agreement with likes on the test split's pairs, with the interval")

    class Config:
        coerce = True
        strict = False
        name = "RewardModelArtifact"


class ReviewDecisions(pa.DataFrameModel):
    """``review_decisions``: written by ``replyassets review``; keyed by reply id."""

    reply_id: Series[str] = pa.Field(unique=True, description="Id of the reviewed reply")
    decision: Series[str] = pa.Field(isin=["keep", "reject", "edit"], description="The reviewer's decision")
    edited_reply: Series[str] = pa.Field(
        nullable=True, description="The reviewer's text for an edit decision (empty otherwise)"
    )

    class Config:
        coerce = True
        strict = False
        name = "ReviewDecisions"


# --------------------------------------------------------------------------- storage types

_INT_TYPES = {1: "TINYINT", 2: "SMALLINT", 4: "INTEGER", 8: "BIGINT"}
_UINT_TYPES = {1: "UTINYINT", 2: "USMALLINT", 4: "UINTEGER", 8: "UBIGINT"}
_TIMESTAMP_TYPES = {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}


def duckdb_type(dtype: object) -> str | None:
    """The DuckDB column type of a pandera or pandas dtype: the one mapping from a table's
    contract (or a frame's column) to its stored type, the same type DuckDB gives a non-empty
    frame's column of that dtype. ``dtype`` is a pandera ``DataType``, a pandas/numpy dtype, or
    its name (``"str"``, ``"int64"``, ``"Int64"``, ``"datetime64[ns]"``, ``"bool"``,
    ``"float64"``: the names ``dagster_pandera`` records on a Dagster type).

    Returns None for ``object`` (a column of arbitrary Python values has no type of its own:
    the caller decides). Raises ``ValueError`` for a dtype with no DuckDB counterpart."""
    name = str(dtype)
    try:
        dt = pd.api.types.pandas_dtype("str" if name == "string" else name)
    except TypeError as exc:
        raise ValueError(f"no DuckDB type for dtype {name!r}") from exc
    kind = getattr(dt, "kind", None)
    if isinstance(dt, pd.DatetimeTZDtype):
        return "TIMESTAMP WITH TIME ZONE"
    if isinstance(dt, pd.StringDtype) or kind == "U":
        return "VARCHAR"
    if kind == "O":
        return None
    if kind == "b":
        return "BOOLEAN"
    if kind == "i":
        return _INT_TYPES[dt.itemsize]
    if kind == "u":
        return _UINT_TYPES[dt.itemsize]
    if kind == "f":
        return {2: "FLOAT", 4: "FLOAT", 8: "DOUBLE"}[dt.itemsize]
    if kind == "M":
        unit = np.datetime_data(dt)[0]
        if unit in _TIMESTAMP_TYPES:
            return _TIMESTAMP_TYPES[unit]
    if kind == "m":
        return "INTERVAL"
    raise ValueError(f"no DuckDB type for dtype {name!r}")
