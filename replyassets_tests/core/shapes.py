"""Builders of raw export items in every supported shape, for the collection tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

T0 = datetime(2025, 10, 2, 7, 0, 0)


def _author(author, id, parent) -> str:
    """The default handle: ``someone`` for a tweet, ``replier<id>`` for a reply (a reply by the
    tweet's own author is a thread, rejected as ``self_reply``; pass ``author`` for that)."""
    if author is not None:
        return author
    return "someone" if parent is None else f"replier{id}"


def _tw_date(dt: datetime) -> str:
    return dt.strftime("%a %b %d %H:%M:%S +0000 %Y")


def apidojo(id, text, *, author=None, followers=1500, likes=300, retweets=40, at=T0, parent=None,
            conversation=None, lang="en", **extra):
    author = _author(author, id, parent)
    item = {"type": "tweet", "id": str(id), "text": text, "fullText": text, "createdAt": _tw_date(at),
            "likeCount": likes, "retweetCount": retweets, "lang": lang, "isReply": parent is not None,
            "inReplyToId": str(parent) if parent else None,
            "conversationId": str(conversation or parent or id),
            "author": {"userName": author, "followers": followers}, "entities": {"urls": []}}
    item.update(extra)
    return item


def legacy(id, text, *, author=None, followers=1500, likes=300, retweets=40, at=T0, parent=None,
           conversation=None):
    author = _author(author, id, parent)
    return {"id": str(id), "conversation_id": str(conversation or parent or id), "full_text": text,
            "created_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "favorite_count": likes, "retweet_count": retweets,
            "in_reply_to_status_id_str": str(parent) if parent else None,
            "user": {"screen_name": author, "followers_count": followers}}


def twscrape(id, text, *, author=None, followers=1500, likes=300, retweets=40, at=T0, parent=None,
             conversation=None, lang="en"):
    author = _author(author, id, parent)
    return {"id": int(id), "id_str": str(id), "rawContent": text, "date": at.strftime("%Y-%m-%d %H:%M:%S+00:00"),
            "user": {"username": author, "followersCount": followers}, "likeCount": likes, "retweetCount": retweets,
            "lang": lang, "conversationId": int(conversation or parent or id),
            "inReplyToTweetId": int(parent) if parent else None, "links": [],
            "media": {"photos": [], "videos": [], "animated": []}}


def twitterapi(id, text, **kw):
    item = apidojo(id, text, **kw)
    item.pop("fullText")
    item["author"]["profile_bio"] = {"description": "bio"}
    item["entities"] = {}
    item["quoted_tweet"] = None
    item["retweeted_tweet"] = None
    return item


BUILDERS = {"apidojo": apidojo, "legacy": legacy, "twscrape": twscrape, "twitterapi": twitterapi}


def reply_text(i: int, j: int) -> str:
    return f"Reply number {j} to tweet {i}: a considered answer with enough characters to pass."


def conversation(fmt: str, n_tweets: int = 6, n_replies: int = 4, id_base: int = 1_000_000) -> list[dict]:
    """n_tweets good tweets, each with n_replies good replies, in one shape."""
    b = BUILDERS[fmt]
    items = []
    for i in range(n_tweets):
        tid = id_base + i * 100
        items.append(b(tid, f"Source tweet {i} about building software", author=f"src{i}", at=T0 + timedelta(hours=i)))
        for j in range(n_replies):
            items.append(b(tid + 1 + j, reply_text(i, j), author=f"user_{i}_{j}", likes=10 + j,
                           at=T0 + timedelta(hours=i, minutes=30 + j), parent=tid))
    return items


def write_json(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def write_jsonl(path: Path, items) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path
