"""``replyassets normalize FILE...``: inspect any export without Dagster.

Prints the normalized pairs as JSONL on stdout (with ``--rejected``, the rejected items
instead, each with a ``reasons`` list) and a per-reason summary on stderr. It runs the
same code as the ``raw_tweets`` asset (ReplaySource + collect_partition) with a synthetic
query named ``cli``. Exit codes: 0 whatever the items hold, 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from replyassets.core.collect import collect_partition
from replyassets.settings import (
    CollectionSettings,
    QuerySpec,
    ValidationSettings,
    load_settings,
)
from replyassets.sources.base import SourceError
from replyassets.sources.replay import ReplaySource

QUERY_NAME = "cli"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "normalize",
        help="normalize tweet/reply export files and print pairs as JSONL",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="JSON, JSONL or JSON-array export files")
    p.add_argument("--rejected", action="store_true", help="print the rejected items (with reasons) instead of pairs")
    p.add_argument("--no-filters", action="store_true",
                   help="skip the collection thresholds (engagement, followers, timing, length, author cap)")
    p.set_defaults(func=run)


def _settings(no_filters: bool) -> CollectionSettings:
    try:
        base = load_settings().collection
    except Exception as exc:  # noqa: BLE001 - a broken settings file must not hide the data
        print(f"warning: settings not loaded ({exc}); using defaults", file=sys.stderr)
        base = CollectionSettings()
    if not no_filters:
        return base
    return base.model_copy(update={
        "tweet_min_likes": 0, "tweet_max_likes": 10**12, "tweet_min_retweets": 0, "tweet_max_retweets": 10**12,
        "reply_min_likes": 0, "reply_max_likes": 10**12, "reply_min_followers": 0, "reply_max_followers": 10**12,
        "reply_min_delay_s": -10**9, "reply_max_delay_s": 10**12,
        "max_replies_per_author": 10**9, "max_tweets_per_query": 10**9,
    })


def _lengths(no_filters: bool) -> tuple[int, int]:
    """The reply length limits (validation's: one definition), or none with ``--no-filters``."""
    if no_filters:
        return 0, 10**9
    try:
        v = load_settings().validation
    except Exception:  # noqa: BLE001 - reported by _settings already
        v = ValidationSettings()
    return v.min_chars, v.max_chars


def run(args: argparse.Namespace) -> int:
    paths = [Path(f).resolve() for f in args.files]
    for p in paths:
        if not p.is_file():
            print(f"error: cannot read {p}: not a file", file=sys.stderr)
            return 2
    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    query = QuerySpec(name=QUERY_NAME, text="replyassets normalize",
                      replay=[str(p.relative_to(root)) for p in paths])
    try:
        res = collect_partition(query, ReplaySource(root), _settings(args.no_filters), lengths=_lengths(args.no_filters))
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    out = sys.stdout
    if args.rejected:
        for row in res.rejections.to_dict("records"):
            row = {k: _jsonable(v) for k, v in row.items()}
            row["reasons"] = [r for r in (row["reasons"] or "").split(",") if r]
            try:
                row["item"] = json.loads(row.pop("detail"))
            except (TypeError, ValueError):
                row["item"] = row.get("detail")
            out.write(_dumps(row) + "\n")
    else:
        for row in res.pairs.to_dict("records"):
            out.write(_dumps({k: _jsonable(v) for k, v in row.items()}) + "\n")
    out.flush()

    f = res.funnel
    err = sys.stderr
    print(f"items in: {f['items_in']}  tweets kept: {f['tweets_kept']}/{f['tweet_items_in']}  "
          f"pairs kept: {f['pairs_kept']}  rejected: {f['rejected']}", file=err)
    for reason, n in f["rejected_by_reason"].items():
        print(f"  {reason:<24} {n}", file=err)
    return 0


def _dumps(obj) -> str:
    s = json.dumps(obj, ensure_ascii=False)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a hostile item: escape them
        s = json.dumps(obj, ensure_ascii=True)
    return s


def _jsonable(v):
    if v is None:
        return None
    try:
        import pandas as pd

        if v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v
