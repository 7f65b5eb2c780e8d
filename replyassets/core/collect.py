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
      -> kept tweets left without a pair            (stage pairing, no_reply_kept)

``funnel["rejected_by_rule"]`` counts the rejections per (stage, code), each with the
settings key, value and source file it applies (core/rule_settings.py).

Nothing vanishes: every item the source hands over is a pair, a rejected row, or the source
tweet of a pair, and ``funnel["items_in"]`` counts them all (tweet items + fetched replies +
unclaimed replies): ``items_in = pairs_kept + rejected + tweets_paired`` holds for every
partition (``funnel["identity"]`` states it with the figures). A tweet that passed its
filters but kept no reply is rejected at stage ``pairing`` as ``no_reply_kept``.
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
from types import SimpleNamespace
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
from replyassets.core.rule_settings import rule_rows, rule_text
from replyassets.settings import CollectionSettings, QuerySpec, ValidationSettings
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


class _Run:
    """The rejections of one collection, counted per reason code and per (stage, code)."""

    def __init__(self, query: QuerySpec, src: str, collected_at: datetime) -> None:
        self.query, self.src, self.collected_at = query, src, collected_at
        self.rows: list[dict[str, Any]] = []
        self.by_reason: dict[str, int] = {}
        self.by_rule: dict[tuple[str, str], int] = {}

    def reject(self, stage: str, kind: str, item_id: str | None, tweet_id: str | None,
               reasons: list[str], item: Any) -> None:
        for r in dict.fromkeys(reasons):
            self.by_reason[r] = self.by_reason.get(r, 0) + 1
            self.by_rule[(stage, r)] = self.by_rule.get((stage, r), 0) + 1
        self.rows.append({
            "query": self.query.name, "source": self.src, "stage": stage, "item_kind": kind,
            "item_id": item_id, "tweet_id": tweet_id, "reasons": join_reasons(reasons),
            "detail": _detail(item), "collected_at": self.collected_at,
        })


def collect_partition(
    query: QuerySpec,
    source: TweetSource,
    settings: CollectionSettings,
    checkpoint: CheckpointStore | None = None,
    collected_at: datetime | None = None,
    lengths: tuple[int, int] | None = None,
) -> CollectResult:
    """Collect ``query`` from ``source``. Raises ``SourceError`` when the source fails
    (what was fetched before the failure is in the checkpoint); bad *items* never raise."""
    settings = query.collection_settings(settings)
    min_chars, max_chars = lengths or (ValidationSettings().min_chars, ValidationSettings().max_chars)
    lengths = (min_chars, max_chars)
    src = getattr(source, "name", type(source).__name__)
    run = _Run(query, src, collected_at or _utcnow())
    cost_before = _cost(source)
    saved_search, saved, legacy_search = split_saved(checkpoint.load(query.name) if checkpoint is not None else {})
    raw_tweets, searched = _search(query, source, settings, checkpoint, saved_search, legacy_search)
    tweets, raw_of, filtered_tweets = _filter_tweets(run, raw_tweets, settings)
    replies = _fetch_replies(run, source, settings, checkpoint, tweets, saved, lengths)
    unclaimed = _reject_unclaimed(run, source, tweets, replies.reply_ids, filtered_tweets)
    # per-author cap, deterministic (most liked first)
    kept, capped = apply_author_cap(replies.candidates, settings.max_replies_per_author)
    for rec in capped:
        run.reject("reply_filter", "reply", rec["id"], rec["_tweet"]["id"], ["author_cap"], rec["_raw"])
    rows = [_pair_row(query.name, src, rec, run.collected_at) for rec in kept]
    paired = {r["tweet_id"] for r in rows}
    for t in tweets:  # a kept tweet without a pair is recorded, never dropped
        if t["id"] not in paired:
            run.reject("pairing", "tweet", t["id"], t["id"], ["no_reply_kept"], raw_of[t["id"]])
    cost = max(0.0, _cost(source) - cost_before)
    rej = rejections_frame(run.rows)
    funnel = {
        "items_in": len(raw_tweets) + replies.items_in + len(unclaimed),
        "tweet_items_in": len(raw_tweets),
        "tweets_kept": len(tweets),
        "tweets_paired": len(paired),
        "tweets_without_reply": len(tweets) - len(paired),
        "reply_items_in": replies.items_in,
        "unclaimed_reply_items": len(unclaimed),
        "pairs_kept": len(rows),
        "rejected": len(run.rows),
        "rejected_by_reason": dict(sorted(run.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        "rejected_by_stage": {s: int(n) for s, n in rej["stage"].value_counts().sort_index().items()} if len(rej) else {},
        # the collection rules' settings, and validation's length limits that collection applies
        "rejected_by_rule": rule_rows(run.by_rule, SimpleNamespace(
            collection=settings, validation=SimpleNamespace(min_chars=min_chars, max_chars=max_chars)), query),
        "searched": searched,
        "fetched_tweets": replies.fetched,
        "resumed_tweets": replies.resumed,
        "cost_usd": round(cost, 6),
    }
    funnel.update(item_identity(funnel))
    return CollectResult(pairs=pairs_frame(rows), rejections=rej, funnel=funnel,
                         fetched_tweets=replies.fetched, resumed_tweets=replies.resumed, cost_usd=cost)


def item_identity(funnel: dict[str, Any]) -> dict[str, Any]:
    """Every item in is a pair, a rejected row, or a source tweet of a pair:
    ``items_in = pairs_kept + rejected + tweets_paired``. Returns ``identity`` (the equation
    with this partition's figures) and ``identity_holds``."""
    items, pairs, rejected, paired = (int(funnel[k]) for k in ("items_in", "pairs_kept", "rejected", "tweets_paired"))
    holds = items == pairs + rejected + paired
    return {
        "identity": (f"items in {items} {'=' if holds else '!='} pairs {pairs} + rejections {rejected} "
                     f"+ tweets with pairs {paired}"),
        "identity_holds": holds,
    }


def _search(query: QuerySpec, source: TweetSource, settings: CollectionSettings,
            checkpoint: CheckpointStore | None, saved_search: Any, legacy_search: bool) -> tuple[list, bool]:
    """The search result (or the checkpoint's saved search of an interrupted run) and whether
    the source was asked; saved to the checkpoint before any reply is fetched."""
    if saved_search is not None:
        if legacy_search and checkpoint is not None:
            checkpoint.save(query.name, SEARCH_KEY, saved_search)   # under the current key
        return saved_search, False
    raw_tweets = _as_list(source.search_tweets(query, settings), "search_tweets", query.name)
    if checkpoint is not None:
        checkpoint.save(query.name, SEARCH_KEY, raw_tweets)
    return raw_tweets, True


def _filter_tweets(run: _Run, raw_tweets: list, settings: CollectionSettings
                   ) -> tuple[list[dict[str, Any]], dict[str, Any], set[str]]:
    """Normalize + tweet filters + tweet budget: (kept tweet records, raw item per kept id,
    ids of searched items that did not become source tweets)."""
    tweets: list[dict[str, Any]] = []
    raw_of: dict[str, Any] = {}
    filtered: set[str] = set()
    for item in raw_tweets:
        rec, reasons = normalize_item(item, source=run.src)
        if rec is None:
            kind = "item" if isinstance(item, DamagedInput) else "tweet"
            guess = _guess_id(item)
            if guess is not None:
                filtered.add(guess)
            run.reject("normalize", kind, guess, None, reasons, item)
            continue
        reasons = tweet_reasons(rec, settings)
        if rec["id"] in raw_of:
            reasons.append("duplicate_tweet_id")
        if reasons:
            filtered.add(rec["id"])
            run.reject("tweet_filter", "tweet", rec["id"], rec["id"], reasons, item)
            continue
        raw_of[rec["id"]] = item
        tweets.append(rec)
    for rec in tweets[settings.max_tweets_per_query:]:
        filtered.add(rec["id"])
        run.reject("tweet_filter", "tweet", rec["id"], rec["id"], ["over_tweet_budget"], rec)
    tweets = tweets[: settings.max_tweets_per_query]
    filtered -= {t["id"] for t in tweets}  # a kept id is not filtered (its duplicates were)
    return tweets, raw_of, filtered


@dataclass
class _Replies:
    candidates: list[dict[str, Any]] = field(default_factory=list)  # passed, with their tweet
    reply_ids: set[str] = field(default_factory=set)                # every normalized reply
    items_in: int = 0
    fetched: int = 0
    resumed: int = 0


def _fetch_replies(run: _Run, source: TweetSource, settings: CollectionSettings,
                   checkpoint: CheckpointStore | None, tweets: list[dict[str, Any]],
                   saved: dict[str, Any], lengths: tuple[int, int] | None = None) -> _Replies:
    """Replies per kept tweet (checkpoint first), normalized and filtered."""
    out = _Replies()
    seen: set[str] = set()
    qname = run.query.name
    for tweet in tweets:
        tid = tweet["id"]
        if tid in saved:
            raw_replies = saved[tid]
            out.resumed += 1
        else:
            raw_replies = _as_list(source.fetch_replies(run.query, tweet, settings), "fetch_replies", qname)
            out.fetched += 1
            if checkpoint is not None:
                checkpoint.save(qname, tid, raw_replies)
        out.items_in += len(raw_replies)
        for item in raw_replies:
            rec, reasons = normalize_item(item, source=run.src)
            if rec is None:
                run.reject("normalize", "reply", _guess_id(item), tid, reasons, item)
                continue
            out.reply_ids.add(rec["id"])
            reasons = reply_reasons(rec, tweet, settings, lengths)
            if rec["id"] in seen:
                reasons.append("duplicate_reply_id")
            if reasons:
                run.reject("reply_filter", "reply", rec["id"], tid, reasons, item)
                continue
            seen.add(rec["id"])
            rec["_tweet"] = tweet
            rec["_raw"] = item
            out.candidates.append(rec)
    return out


def _reject_unclaimed(run: _Run, source: TweetSource, tweets: list[dict[str, Any]],
                      reply_ids: set[str], filtered_tweets: set[str]) -> list[Any]:
    """Replies no kept tweet claimed (sources holding a whole export): rejected at stage
    ``pairing``, never dropped. Returns them."""
    unclaimed_replies = getattr(source, "unclaimed_replies", None)
    if not callable(unclaimed_replies):
        return []
    covered = {k for t in tweets for k in (t["id"], t["conversation_id"]) if k is not None}
    unclaimed = _as_list(unclaimed_replies(run.query, covered), "unclaimed_replies", run.query.name)
    records = [normalize_item(item, source=run.src) for item in unclaimed]
    reply_ids.update(rec["id"] for rec, _ in records if rec is not None)
    for item, (rec, reasons) in zip(unclaimed, records, strict=True):
        if rec is None:
            run.reject("normalize", "reply", _guess_id(item), None, reasons, item)
            continue
        codes, tweet_id = pairing_reasons(rec, reply_ids, filtered_tweets)
        run.reject("pairing", "reply", rec["id"], tweet_id, codes, item)
    return unclaimed


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
    ``funnel`` (booleans, text and nested values left out), then one ``rejected: ...`` row per
    rule: per (stage, code) with the settings it applies when the funnel has
    ``rejected_by_rule`` (``rejected: likes_above_max [tweet_filter]: collection.tweet_max_likes
    = 2000 (default in replyassets/settings.py)``), else per code, from ``rejections``."""
    rows = [{"stage": k, "count": int(v)} for k, v in funnel.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if "rejected_by_rule" in funnel:
        rows += [{"stage": f"rejected: {rule_text(r)}", "count": int(r["items"])} for r in funnel["rejected_by_rule"]]
    else:
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
