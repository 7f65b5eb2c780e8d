"""Hostile and well-formed tweet items, and small replay datasets, for the reliability suite.

Valid items are in the apidojo tweet-scraper shape (docs/design.md, "Scraper export shapes")
and pass every collection filter (settings.CollectionSettings); hostile ones break one thing at a time.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

BASE_TIME = datetime(2025, 3, 3, 12, 0, 0)

SQL_STRINGS = (
    "'); DROP TABLE raw_tweets;--",
    "\"; DROP TABLE main.raw_tweets; --",
    "1 OR 1=1",
    "x' UNION SELECT * FROM information_schema.tables --",
    "Robert'); DELETE FROM raw_tweet_rejections WHERE ('1'='1",
    "$1; ATTACH '/tmp/evil.duckdb' AS evil; --",
)

# Texts that are hostile but storable (and, padded to a real reply, may pass the filters).
ODD_TEXTS = (
    "zero\u200bwidth\u200cjoin\u200dmarks\ufeff everywhere in this reply text ok",
    "right-to-left \u202eevil.exe\u202c override and \u2067isolate\u2069 in a reply text",
    "null\x00byte inside a reply that is otherwise long enough to pass",
    "emoji \U0001f600\U0001f44d\U0001f3fd and combining e\u0301\u0301\u0301 accents in this reply",
    "control chars \x01\x02\x1b[31m red \x1b[0m and \r\n newlines in this reply text",
    "\u0000\u0000\u0000 leading nulls then an ordinary sentence about agents",
    "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ and ℌ𝔢𝔩𝔩𝔬 mathematical letters in a reply here",
    "&lt;script&gt;alert(1)&lt;/script&gt; html entities in the reply text here",
) + tuple(f"{s} and some padding words to make it long" for s in SQL_STRINGS)

# Texts no stage may store as they are (the normalizer rejects or repairs them).
UNSTORABLE_TEXTS = (
    "lone surrogate \ud800 in text",
    "\udfff trailing low surrogate",
    "x" * 60_000,  # over normalize.MAX_TEXT_CHARS
    "",
    "   \u200b  ",
)


def ts(dt: datetime) -> str:
    """Twitter's created-at format."""
    return dt.strftime("%a %b %d %H:%M:%S +0000 %Y")


def tweet_item(tid: str, text: str | None = None, *, likes: int = 500, retweets: int = 50,
               created: datetime = BASE_TIME, author: str = "poster") -> dict[str, Any]:
    return {
        "id": tid,
        "text": text or f"Tweet {tid}: what is the most useful thing you learned about AI agents this week?",
        "createdAt": ts(created),
        "likeCount": likes,
        "retweetCount": retweets,
        "replyCount": 10,
        "quoteCount": 1,
        "lang": "en",
        "isReply": False,
        "isRetweet": False,
        "isQuote": False,
        "conversationId": tid,
        "author": {"userName": author, "followers": 10_000},
        "entities": {},
    }


def reply_item(rid: str, tid: str, text: str | None = None, *, likes: int = 20, followers: int = 1500,
               author: str | None = None, delay_s: int = 1800) -> dict[str, Any]:
    return {
        "id": rid,
        "text": text or (
            f"Reply {rid}: agents that plan with explicit checklists beat freeform prompting "
            "for long multi step coding tasks in my experience"
        ),
        "createdAt": ts(BASE_TIME + timedelta(seconds=delay_s)),
        "likeCount": likes,
        "retweetCount": 1,
        "lang": "en",
        "isReply": True,
        "isRetweet": False,
        "isQuote": False,
        "conversationId": tid,
        "inReplyToId": tid,
        "author": {"userName": author or f"user_{rid}", "followers": followers},
        "entities": {},
    }


def hostile_items(tid: str = "900") -> list[Any]:
    """Hand-made hostile items (tweets and replies to ``tid``), one broken thing each."""
    good_t = tweet_item(tid)
    out: list[Any] = [
        None, 0, -1, 3.5, True, "just a string", [], [1, 2, 3], {}, {"id": None},
        {"id": tid},                                         # missing everything else
        {**good_t, "id": "1; DROP TABLE raw_tweets"},        # SQL in the id
        {**good_t, "id": "\ud800bad"},                       # surrogate in the id
        {**good_t, "id": "ab\x00cd"},                        # null byte in the id
        {**good_t, "id": 1.5},                               # float id
        {**good_t, "id": True},                              # bool id
        {**good_t, "id": "9" * 80},                          # overlong id
        {**good_t, "likeCount": "lots"},
        {**good_t, "likeCount": -5},
        {**good_t, "likeCount": float("nan")},
        {**good_t, "likeCount": 10**30},
        {**good_t, "likeCount": [500]},
        {**good_t, "retweetCount": None},
        {**good_t, "createdAt": "yesterday"},
        {**good_t, "createdAt": "Thu Feb 30 25:61:61 +9999 2025"},
        {**good_t, "createdAt": 10**20},
        {**good_t, "createdAt": {"$date": 1}},
        {**good_t, "text": None},
        {**good_t, "text": 12345},
        {**good_t, "text": {"nested": "text"}},
        {**good_t, "lang": "en'; DROP TABLE x;--"},
        {**good_t, "lang": 7},
        {**good_t, "author": "x" * 500},
        {**good_t, "author": {"userName": "\udc80evil", "followers": 5}},
        {**good_t, "author": {"userName": None, "followers": "many"}},
        {**good_t, "author": ["not", "a", "dict"]},
        {**good_t, "conversationId": {"a": 1}},
        {**good_t, "entities": "not a dict"},
        {**good_t, "media": 5},
        {"tweets": "not a list"},
        {"_replay_error": "'; DROP TABLE x"},
    ]
    for i, text in enumerate(UNSTORABLE_TEXTS + ODD_TEXTS):
        out.append({**good_t, "id": f"{tid}{i:03d}", "text": text})
    for i, text in enumerate(UNSTORABLE_TEXTS + ODD_TEXTS):
        out.append(reply_item(f"{tid}5{i:03d}", tid, text))
    nested: Any = {"id": "1"}
    for _ in range(200):
        nested = {"x": nested, "text": nested}
    out.append(nested)
    return out


# --------------------------------------------------------------------------- replay datasets


def make_dataset(n_tweets: int, replies_per_tweet: int, seed: int = 0, prefix: str = "") -> list[dict]:
    """A well-formed export: tweets each with replies that pass the collection filters.

    Reply texts are distinct enough that the validation and semantic dedup stages keep most.
    """
    rng = random.Random(seed)
    topics = ["planning", "memory", "tool use", "evaluation", "retrieval", "sandboxing", "latency",
              "costs", "testing", "observability", "prompt caching", "fine tuning", "agents",
              "schedulers", "databases", "compilers", "typing", "profilers", "queues", "caches"]
    verbs = ["improved", "broke", "simplified", "slowed", "rescued", "complicated", "clarified", "changed"]
    items: list[dict] = []
    for t in range(n_tweets):
        tid = f"{prefix}1{seed:02d}{t:05d}"
        items.append(tweet_item(tid, f"Tweet {t} {prefix}: what did {topics[t % len(topics)]} teach you this month?",
                                author=f"poster{t}"))
        for r in range(replies_per_tweet):
            a, b = rng.sample(topics, 2)
            v = rng.choice(verbs)
            text = (f"Honestly {a} {v} our {b} setup; we measured {rng.randint(2, 97)} percent fewer "
                    f"incidents after week {rng.randint(1, 52)} of {prefix or 'the'} rollout #{t}x{r}")
            items.append(reply_item(f"{prefix}2{seed:02d}{t:05d}{r:03d}", tid, text,
                                    likes=5 + rng.randint(0, 200), followers=300 + rng.randint(0, 9000),
                                    author=f"u{prefix}{seed}_{t}_{r}", delay_s=600 + 60 * r))
        # one reply per tweet that the collection filters reject (a link), so rejections exist too
        items.append(reply_item(f"{prefix}3{seed:02d}{t:05d}", tid,
                                f"Read the full thread at https://example.com/{t} for all the details you need"))
    return items


def write_replay_project(root: Path, queries: dict[str, list[Any]],
                         raw_files: dict[str, tuple[str, bytes]] | None = None) -> Path:
    """Write ``root/sample/<name>.json`` per query and ``root/queries.yaml``; return the queries file.

    ``raw_files`` maps more query names to ``(file name, exact bytes)`` (hostile files).
    """
    sample = root / "sample"
    sample.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, items in queries.items():
        rel = f"{name}.json"
        (sample / rel).write_text(json.dumps(items))
        entries.append({"name": name, "text": name.replace("-", " "), "replay": [rel]})
    for name, (rel, data) in (raw_files or {}).items():
        (sample / rel).write_bytes(data)
        entries.append({"name": name, "text": name.replace("-", " "), "replay": [rel]})
    qfile = root / "queries.yaml"
    qfile.write_text(yaml.safe_dump({"queries": entries}))
    return qfile
