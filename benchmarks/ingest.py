#!/usr/bin/env python
"""Normalize + filter throughput on 100,000 replay items (target: >= 20,000 items/s).

The items are made in memory from the shipped sample files (every export shape the
sample holds: apidojo, legacy snake_case, twscrape, twitterapi.io), copied with fresh
ids until there are N of them. Measured in the same run:

* ``replyassets``: ``normalize_item`` + ``tweet_reasons`` / ``reply_reasons`` per item;
* ``baseline``: the naive way: a pandas ``json_normalize`` per item to flatten it and
  ``dateutil.parser.parse`` for the dates, then the same filters (on a subset, it is slow).

Checked in every mode: the repeats agree, and N whole copies of the sample keep N times
what one copy keeps (the fresh ids keep each copy's reply -> tweet links).

Usage: python benchmarks/ingest.py [--items 100000] [--baseline-items 3000] [--small]
``--small``: two copies of the sample, 300 baseline items, one repeat (the test suite's mode).
Ends with one JSON line holding all figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _cpu import cpu_figures, print_cpu

from replyassets.core.filters import reply_reasons, tweet_reasons
from replyassets.core.normalize import normalize_item
from replyassets.settings import CollectionSettings
from replyassets.sources.replay import read_items

SAMPLE = ROOT / "data" / "sample"


def sample_items() -> list[dict]:
    base: list[dict] = []
    for path in sorted(SAMPLE.glob("*.json*")):
        base.extend(i for i in read_items(path) if isinstance(i, dict))  # markers (DamagedInput) are not dicts
    return base


def make_items(n: int) -> list[dict]:
    base = sample_items()
    out: list[dict] = []
    k = 0
    while len(out) < n:
        for item in base:
            if len(out) >= n:
                break
            c = copy.deepcopy(item)
            if k:  # fresh ids per copy, keeping the reply -> tweet links of that copy
                for key in ("id", "id_str", "conversationId", "conversationIdStr", "conversation_id",
                            "inReplyToId", "in_reply_to_status_id_str", "inReplyToTweetId", "inReplyToTweetIdStr"):
                    v = c.get(key)
                    if isinstance(v, str) and v.isdigit():
                        c[key] = str(int(v) + k)
                    elif isinstance(v, int) and not isinstance(v, bool):
                        c[key] = v + k
            out.append(c)
        k += 1
    return out


def run_fast(items: list[dict], settings: CollectionSettings) -> dict:
    t0 = time.perf_counter()
    tweets: dict[str, dict] = {}
    replies: list[dict] = []
    kept = rejected = 0
    for item in items:
        rec, _reasons = normalize_item(item, source="bench")
        if rec is None:
            rejected += 1
        elif rec["is_reply"]:
            replies.append(rec)
        else:
            tweets[rec["id"]] = rec
            if tweet_reasons(rec, settings):
                rejected += 1
    for rec in replies:
        tweet = tweets.get(rec["in_reply_to_id"]) or tweets.get(rec["conversation_id"])
        if tweet is None or reply_reasons(rec, tweet, settings):
            rejected += 1
        else:
            kept += 1
    dt = time.perf_counter() - t0
    return {"items": len(items), "seconds": dt, "items_per_s": len(items) / dt, "kept": kept, "rejected": rejected}


def run_baseline(items: list[dict], settings: CollectionSettings) -> dict:
    import pandas as pd
    from dateutil import parser as dateparser

    def first(row, *keys):
        for k in keys:
            v = row.get(k)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                return v
        return None

    t0 = time.perf_counter()
    tweets: dict[str, dict] = {}
    replies: list[dict] = []
    kept = rejected = 0
    for item in items:
        row = pd.json_normalize(item).iloc[0].to_dict()   # flatten nested author/user per item
        try:
            created = dateparser.parse(str(first(row, "createdAt", "created_at", "date")))
            rec = {
                "id": str(first(row, "id_str", "id")),
                "text": str(first(row, "fullText", "full_text", "rawContent", "text")),
                "author": first(row, "author.userName", "user.screen_name", "user.username"),
                "author_followers": int(first(row, "author.followers", "user.followers_count", "user.followersCount") or 0),
                "likes": int(first(row, "likeCount", "favorite_count")),
                "retweets": int(first(row, "retweetCount", "retweet_count")),
                "created_at": created.replace(tzinfo=None) - (created.utcoffset() or pd.Timedelta(0)),
                "conversation_id": str(first(row, "conversationId", "conversation_id")),
                "in_reply_to_id": first(row, "inReplyToId", "in_reply_to_status_id_str", "inReplyToTweetId"),
                "is_retweet": bool(first(row, "isRetweet")), "is_quote": bool(first(row, "isQuote")),
                "has_media": False, "has_urls": "http" in str(first(row, "fullText", "full_text", "rawContent", "text")),
                "lang": first(row, "lang"),
            }
            rec["in_reply_to_id"] = str(rec["in_reply_to_id"]) if rec["in_reply_to_id"] is not None else None
            rec["is_reply"] = rec["in_reply_to_id"] is not None
        except (TypeError, ValueError, OverflowError):
            rejected += 1
            continue
        if rec["is_reply"]:
            replies.append(rec)
        else:
            tweets[rec["id"]] = rec
            if tweet_reasons(rec, settings):
                rejected += 1
    for rec in replies:
        tweet = tweets.get(rec["in_reply_to_id"])
        if tweet is None or reply_reasons(rec, tweet, settings):
            rejected += 1
        else:
            kept += 1
    dt = time.perf_counter() - t0
    return {"items": len(items), "seconds": dt, "items_per_s": len(items) / dt, "kept": kept, "rejected": rejected}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=None, help="default 100000 (--small: two copies of the sample)")
    ap.add_argument("--baseline-items", type=int, default=None, help="default 3000 (--small: 300)")
    ap.add_argument("--repeat", type=int, default=None, help="best of N runs for the fast path (default 3; --small: 1)")
    ap.add_argument("--small", action="store_true", help="seconds: the test suite's mode")
    args = ap.parse_args(argv)
    per_copy = len(sample_items())
    args.items = args.items if args.items is not None else (2 * per_copy if args.small else 100_000)
    args.baseline_items = args.baseline_items if args.baseline_items is not None else (300 if args.small else 3_000)
    args.repeat = args.repeat if args.repeat is not None else (1 if args.small else 3)
    settings = CollectionSettings()
    cpu = cpu_figures()
    print_cpu(cpu)

    t0 = time.perf_counter()
    items = make_items(args.items)
    gen_s = time.perf_counter() - t0

    runs = [run_fast(items, settings) for _ in range(args.repeat)]
    assert len({(r["kept"], r["rejected"]) for r in runs}) == 1, "the repeats disagree"
    fast = min(runs, key=lambda r: r["seconds"])
    assert 0 < fast["kept"] and fast["kept"] + fast["rejected"] <= fast["items"], fast
    copies = len(items) // per_copy
    if copies >= 2:  # whole copies of the sample keep whole multiples of one copy's pairs
        one = run_fast(items[:per_copy], settings)["kept"]
        whole = fast["kept"] if copies * per_copy == len(items) else run_fast(items[:copies * per_copy], settings)["kept"]
        assert whole == copies * one, f"{copies} copies of the sample kept {whole}, one copy {one}"
    base = run_baseline(items[: args.baseline_items], settings)
    speedup = fast["items_per_s"] / base["items_per_s"]

    print(f"{'path':<34}{'items':>10}{'seconds':>10}{'items/s':>12}")
    print(f"{'replyassets normalize+filter':<34}{fast['items']:>10}{fast['seconds']:>10.2f}{fast['items_per_s']:>12.0f}")
    print(f"{'baseline json_normalize+dateutil':<34}{base['items']:>10}{base['seconds']:>10.2f}{base['items_per_s']:>12.0f}")
    print(f"speedup x{speedup:.1f}; target >= 20000 items/s: {'met' if fast['items_per_s'] >= 20000 else 'NOT met'}")
    print(json.dumps({
        "benchmark": "ingest", "items": fast["items"], "items_per_s": round(fast["items_per_s"]),
        "seconds": round(fast["seconds"], 3), "kept": fast["kept"], "rejected": fast["rejected"],
        "baseline_items": base["items"], "baseline_items_per_s": round(base["items_per_s"]),
        "speedup": round(speedup, 1), "target_items_per_s": 20000,
        "target_met": fast["items_per_s"] >= 20000, "generate_seconds": round(gen_s, 2),
        "small": args.small, "cpu": cpu,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
