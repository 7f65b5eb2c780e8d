"""Collect one query partition: search -> normalize -> tweet filters -> replies -> pairs.

Pure logic (no Dagster): the ``raw_tweets`` asset, the ``replyassets normalize`` CLI and
the tests share this function. Flow::

    source.search_tweets (or the checkpoint's saved search)
      -> normalize_item -> tweet_reasons            (rejections: stage normalize / tweet_filter)
      -> per kept tweet: checkpoint replies, else source.fetch_replies + checkpoint.save
      -> normalize_item -> reply_reasons            (stage normalize / reply_filter)
      -> source.unclaimed_replies, when the source has it (replay: the export's replies
         that no kept tweet claimed)                (stage pairing, see below)
      -> one pair per reply id -> apply_author_cap  (reason author_cap)

Nothing vanishes: every item the source hands over is a pair or a rejected row, and
``funnel["items_in"]`` counts them all (tweet items + fetched replies + unclaimed replies).
An unclaimed reply is rejected at stage ``pairing`` with every code that applies:

* ``reply_to_reply``: it answers a reply (its in-reply-to id is a reply seen in this run);
* ``parent_filtered``: its tweet (in-reply-to or conversation id) is in the search result
  but was rejected (normalize, tweet filters, tweet budget);
* ``orphan_reply``: neither: its tweet is not in the source's data at all.

Pairs are unique by ``reply_id``: a reply seen twice (twice in one conversation, or under
two tweets) becomes one pair; later copies are rejected as ``duplicate_reply_id``.
Tweets are unique by id (``duplicate_tweet_id``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from replyassets.core.checkpoint import SEARCH_KEY, CheckpointStore, split_saved
from replyassets.core.columns import (
    PAIR_COLUMNS,
    REJECTION_COLUMNS,
    join_reasons,
    split_reasons,
)
from replyassets.core.filters import apply_author_cap, reply_reasons, tweet_reasons
from replyassets.core.normalize import DamagedInput, normalize_item
from replyassets.settings import CollectionSettings, QuerySpec
from replyassets.sources.base import SourceError, TweetSource

DETAIL_MAX_CHARS = 2000


@dataclass
class CollectResult:
    pairs: pd.DataFrame          # exactly PAIR_COLUMNS, those dtypes
    rejections: pd.DataFrame     # exactly REJECTION_COLUMNS
    funnel: dict[str, Any] = field(default_factory=dict)
    fetched_tweets: int = 0      # tweets whose replies were fetched from the source in this run
    resumed_tweets: int = 0      # tweets whose replies came from the checkpoint
    cost_usd: float = 0.0        # source cost of this run (0 for replay)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _detail(item: Any) -> str:
    if isinstance(item, DamagedInput):
        item = item.as_dict()
    try:
        s = json.dumps(item, ensure_ascii=True, default=str, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError, OverflowError):
        s = f"<unserializable {type(item).__name__}>"
    return s if len(s) <= DETAIL_MAX_CHARS else s[: DETAIL_MAX_CHARS - 3] + "..."


def _as_list(items: Any, what: str, query: str) -> list:
    if items is None:
        return []
    if not isinstance(items, list):
        raise SourceError(f"query {query!r}: {what} returned {type(items).__name__}, expected a list of items")
    return items


def empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in PAIR_COLUMNS.items()})


def empty_rejections() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in REJECTION_COLUMNS.items()})


def pairs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_pairs()
    df = pd.DataFrame.from_records(rows, columns=list(PAIR_COLUMNS))
    return df.astype(PAIR_COLUMNS)


def rejections_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_rejections()
    df = pd.DataFrame.from_records(rows, columns=list(REJECTION_COLUMNS))
    return df.astype(REJECTION_COLUMNS)


def collect_partition(
    query: QuerySpec,
    source: TweetSource,
    settings: CollectionSettings,
    checkpoint: CheckpointStore | None = None,
    collected_at: datetime | None = None,
) -> CollectResult:
    """Collect ``query`` from ``source``. Raises ``SourceError`` when the source fails
    (what was fetched before the failure is in the checkpoint); bad *items* never raise."""
    settings = query.collection_settings(settings)
    collected_at = collected_at or _utcnow()
    qname = query.name
    src = getattr(source, "name", type(source).__name__)
    cost_before = _cost(source)
    saved_search, saved, legacy_search = split_saved(checkpoint.load(qname) if checkpoint is not None else {})

    rejections: list[dict[str, Any]] = []
    reason_counts: dict[str, int] = {}

    def reject(stage: str, kind: str, item_id: str | None, tweet_id: str | None, reasons: list[str], item: Any) -> None:
        for r in dict.fromkeys(reasons):
            reason_counts[r] = reason_counts.get(r, 0) + 1
        rejections.append({
            "query": qname, "source": src, "stage": stage, "item_kind": kind,
            "item_id": item_id, "tweet_id": tweet_id, "reasons": join_reasons(reasons),
            "detail": _detail(item), "collected_at": collected_at,
        })

    # 1. search (or the saved search of an interrupted run)
    if saved_search is not None:
        raw_tweets = saved_search
        searched = False
        if legacy_search and checkpoint is not None:
            checkpoint.save(qname, SEARCH_KEY, raw_tweets)   # under the current key, before any reply
    else:
        raw_tweets = _as_list(source.search_tweets(query, settings), "search_tweets", qname)
        searched = True
        if checkpoint is not None:
            checkpoint.save(qname, SEARCH_KEY, raw_tweets)

    # 2. normalize + tweet filters
    tweets: list[dict[str, Any]] = []
    seen_tweets: set[str] = set()
    filtered_tweets: set[str] = set()  # ids of searched items that did not become source tweets
    for item in raw_tweets:
        rec, reasons = normalize_item(item, source=src)
        if rec is None:
            kind = "item" if isinstance(item, DamagedInput) else "tweet"
            guess = _guess_id(item)
            if guess is not None:
                filtered_tweets.add(guess)
            reject("normalize", kind, guess, None, reasons, item)
            continue
        reasons = tweet_reasons(rec, settings)
        if rec["id"] in seen_tweets:
            reasons.append("duplicate_tweet_id")
        if reasons:
            filtered_tweets.add(rec["id"])
            reject("tweet_filter", "tweet", rec["id"], rec["id"], reasons, item)
            continue
        seen_tweets.add(rec["id"])
        tweets.append(rec)
    if len(tweets) > settings.max_tweets_per_query:
        for rec in tweets[settings.max_tweets_per_query:]:
            filtered_tweets.add(rec["id"])
            reject("tweet_filter", "tweet", rec["id"], rec["id"], ["over_tweet_budget"], rec)
        tweets = tweets[: settings.max_tweets_per_query]
    filtered_tweets -= {t["id"] for t in tweets}  # a kept id is not filtered (its duplicates were)

    # 3. replies per kept tweet (checkpoint first), 4. normalize + reply filters
    candidates: list[dict[str, Any]] = []   # reply records that passed, with their tweet
    seen_replies: set[str] = set()
    reply_ids: set[str] = set()              # every normalized reply of this run
    fetched = resumed = reply_items_in = 0
    for tweet in tweets:
        tid = tweet["id"]
        if tid in saved:
            raw_replies = saved[tid]
            resumed += 1
        else:
            raw_replies = _as_list(source.fetch_replies(query, tweet, settings), "fetch_replies", qname)
            fetched += 1
            if checkpoint is not None:
                checkpoint.save(qname, tid, raw_replies)
        reply_items_in += len(raw_replies)
        for item in raw_replies:
            rec, reasons = normalize_item(item, source=src)
            if rec is None:
                reject("normalize", "reply", _guess_id(item), tid, reasons, item)
                continue
            reply_ids.add(rec["id"])
            reasons = reply_reasons(rec, tweet, settings)
            if rec["id"] in seen_replies:
                reasons.append("duplicate_reply_id")
            if reasons:
                reject("reply_filter", "reply", rec["id"], tid, reasons, item)
                continue
            seen_replies.add(rec["id"])
            rec["_tweet"] = tweet
            rec["_raw"] = item
            candidates.append(rec)

    # 4b. replies no kept tweet claimed (sources holding a whole export): rejected, never dropped
    unclaimed: list[Any] = []
    unclaimed_replies = getattr(source, "unclaimed_replies", None)
    if callable(unclaimed_replies):
        covered = {k for t in tweets for k in (t["id"], t["conversation_id"]) if k is not None}
        unclaimed = _as_list(unclaimed_replies(query, covered), "unclaimed_replies", qname)
    records = [normalize_item(item, source=src) for item in unclaimed]
    reply_ids.update(rec["id"] for rec, _ in records if rec is not None)
    for item, (rec, reasons) in zip(unclaimed, records, strict=True):
        if rec is None:
            reject("normalize", "reply", _guess_id(item), None, reasons, item)
            continue
        codes, tweet_id = pairing_reasons(rec, reply_ids, filtered_tweets)
        reject("pairing", "reply", rec["id"], tweet_id, codes, item)

    # 5. per-author cap, deterministic (most liked first)
    kept, capped = apply_author_cap(candidates, settings.max_replies_per_author)
    for rec in capped:
        reject("reply_filter", "reply", rec["id"], rec["_tweet"]["id"], ["author_cap"], rec["_raw"])

    rows = [_pair_row(qname, src, rec, collected_at) for rec in kept]
    pairs = pairs_frame(rows)
    rej = rejections_frame(rejections)
    cost = max(0.0, _cost(source) - cost_before)
    funnel = {
        "items_in": len(raw_tweets) + reply_items_in + len(unclaimed),
        "tweet_items_in": len(raw_tweets),
        "tweets_kept": len(tweets),
        "reply_items_in": reply_items_in,
        "unclaimed_reply_items": len(unclaimed),
        "pairs_kept": len(rows),
        "rejected": len(rejections),
        "rejected_by_reason": dict(sorted(reason_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "rejected_by_stage": {s: int(n) for s, n in rej["stage"].value_counts().sort_index().items()} if len(rej) else {},
        "searched": searched,
        "fetched_tweets": fetched,
        "resumed_tweets": resumed,
        "cost_usd": round(cost, 6),
    }
    return CollectResult(pairs=pairs, rejections=rej, funnel=funnel, fetched_tweets=fetched,
                         resumed_tweets=resumed, cost_usd=cost)


def pairing_reasons(reply: dict[str, Any], reply_ids: set[str], filtered_tweets: set[str]) -> tuple[list[str], str | None]:
    """Why a normalized reply that no kept tweet claimed cannot become a pair (codes in the
    module docstring), and the tweet it belongs to as far as it says: the filtered parent,
    else its conversation id, else its in-reply-to id, never the id of a reply (None then)."""
    rid = reply["id"]
    parent, conv = reply["in_reply_to_id"], reply["conversation_id"]
    codes: list[str] = []
    if parent is not None and parent != rid and parent in reply_ids:
        codes.append("reply_to_reply")
    filtered = [p for p in (parent, conv) if p is not None and p != rid and p in filtered_tweets]
    if filtered:
        codes.append("parent_filtered")
    if not codes:
        codes.append("orphan_reply")
    if filtered:
        return codes, filtered[0]
    tweet = next((p for p in (conv, parent) if p is not None and p != rid and p not in reply_ids), None)
    return codes, tweet


def reason_counts(rejections: pd.DataFrame) -> dict[str, int]:
    """Rejected items per reason code (an item counts once per code), most frequent first,
    ties by code: what ``funnel["rejected_by_reason"]`` says, recomputed from the frame."""
    counts: dict[str, int] = {}
    if len(rejections):
        for reasons in rejections["reasons"].fillna("").astype(str):
            for code in dict.fromkeys(split_reasons(reasons)):
                counts[code] = counts.get(code, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def funnel_rows(funnel: dict[str, Any], rejections: pd.DataFrame) -> list[dict[str, Any]]:
    """The ``raw_tweets`` funnel table: one ``{"stage", "count"}`` row per number of
    ``funnel`` (booleans and nested dicts left out), then ``rejected: <code>`` per reason."""
    rows = [{"stage": k, "count": int(v)} for k, v in funnel.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    rows += [{"stage": f"rejected: {code}", "count": n} for code, n in reason_counts(rejections).items()]
    return rows


def _cost(source: Any) -> float:
    try:
        return float(source.estimated_cost_usd())
    except (AttributeError, TypeError, ValueError):
        return 0.0


def _guess_id(item: Any) -> str | None:
    if isinstance(item, dict):
        for k in ("id_str", "id", "tweet_id", "reply_id"):
            v = item.get(k)
            if isinstance(v, str) and 0 < len(v) <= 64:
                return v.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates -> storable text
            if isinstance(v, int) and not isinstance(v, bool):
                return str(v)
    return None


def _pair_row(query: str, source: str, reply: dict[str, Any], collected_at: datetime) -> dict[str, Any]:
    tweet = reply["_tweet"]
    return {
        "query": query,
        "source": source,
        "tweet_id": tweet["id"],
        "tweet": tweet["text"],
        "tweet_author": tweet["author"],
        "tweet_author_followers": tweet["author_followers"],
        "tweet_likes": tweet["likes"],
        "tweet_retweets": tweet["retweets"],
        "tweet_created_at": tweet["created_at"],
        "reply_id": reply["id"],
        "reply": reply["text"],
        "reply_author": reply["author"],
        "reply_author_followers": reply["author_followers"],
        "reply_likes": reply["likes"],
        "reply_retweets": reply["retweets"],
        "reply_created_at": reply["created_at"],
        "reply_time_diff_seconds": int((reply["created_at"] - tweet["created_at"]).total_seconds()),
        "has_media": reply["has_media"],
        "has_urls": reply["has_urls"],
        "lang": reply["lang"],
        "collected_at": collected_at,
    }
