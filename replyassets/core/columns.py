"""Column contracts shared by every stage (plain Python; Pandera models live in replyassets.schemas).

Timestamps are naive UTC (``datetime64[ns]``). Ids are strings. Reasons are stored as a
comma-separated string of rule codes (``""`` when nothing was wrong) so DuckDB can query
them with ``string_split(reasons, ',')`` or ``reasons LIKE '%code%'``.
"""

from __future__ import annotations

# The prototype's raw pair format (docs/design.md, "Baselines") plus query/source/has_media/has_urls/lang/collected_at.
PAIR_COLUMNS: dict[str, str] = {
    "query": "string",
    "source": "string",
    "tweet_id": "string",
    "tweet": "string",
    "tweet_author": "string",
    "tweet_author_followers": "Int64",
    "tweet_likes": "int64",
    "tweet_retweets": "int64",
    "tweet_created_at": "datetime64[ns]",
    "reply_id": "string",
    "reply": "string",
    "reply_author": "string",
    "reply_author_followers": "int64",
    "reply_likes": "int64",
    "reply_retweets": "int64",
    "reply_created_at": "datetime64[ns]",
    "reply_time_diff_seconds": "int64",
    "has_media": "bool",
    "has_urls": "bool",
    "lang": "string",
    "collected_at": "datetime64[ns]",
}

# One row per item a stage rejected before it could become a pair.
REJECTION_COLUMNS: dict[str, str] = {
    "query": "string",
    "source": "string",
    "stage": "string",        # normalize | tweet_filter | reply_filter
    "item_kind": "string",    # tweet | reply | item
    "item_id": "string",      # may be null when the item has no usable id
    "tweet_id": "string",     # the tweet a reply belongs to, when known
    "reasons": "string",      # comma-separated rule codes
    "detail": "string",       # the offending item, JSON, truncated
    "collected_at": "datetime64[ns]",
}


def join_reasons(reasons: list[str] | tuple[str, ...]) -> str:
    return ",".join(dict.fromkeys(r for r in reasons if r))


def split_reasons(reasons: str | None) -> list[str]:
    return [r for r in (reasons or "").split(",") if r]
