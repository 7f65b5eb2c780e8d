"""The one normalizer: every export shape, every date format, hostile input."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from replyassets.core.normalize import (
    RECORD_FIELDS,
    DamagedInput,
    normalize_item,
    parse_count,
    parse_datetime,
    parse_id,
    unwrap_items,
)

WHEN = datetime(2025, 10, 2, 7, 11, 55)

APIDOJO = {
    "type": "tweet", "id": "1973000000000000001", "text": "Short &amp; truncated",
    "fullText": "Short &amp; truncated text that is the full one", "createdAt": "Thu Oct 02 07:11:55 +0000 2025",
    "likeCount": 250, "retweetCount": 12, "replyCount": 3, "quoteCount": 0, "lang": "en",
    "isReply": True, "isRetweet": False, "isQuote": False, "conversationId": "1972999999999999999",
    "inReplyToId": "1972999999999999999", "inReplyToUsername": "someone",
    "author": {"userName": "maya_builds", "followers": 1200, "isBlueVerified": False},
    "entities": {"hashtags": [], "urls": [], "user_mentions": []}, "media": [],
}
LEGACY = {
    "id": "1973000000000000002", "conversation_id": "1973000000000000002",
    "full_text": "Legacy export text", "created_at": "2025-10-02T07:11:55.000Z",
    "favorite_count": 300, "retweet_count": 30, "is_quote_status": False,
    "in_reply_to_status_id_str": None,
    "user": {"screen_name": "legacy_user", "followers_count": 5000},
}
TWITTERAPI = {
    "type": "tweet", "id": "1973000000000000003", "text": "🚀🚀", "createdAt": "Thu Oct 02 07:11:55 +0000 2025",
    "likeCount": 10, "retweetCount": 1, "lang": "qme", "isReply": False, "conversationId": "1973000000000000003",
    "author": {"userName": "api_user", "followers": 700, "profile_bio": {"description": "hi"}},
    "entities": {}, "quoted_tweet": {"id": "1", "text": "q"}, "retweeted_tweet": None,
}
TWSCRAPE = {
    "id": 1973000000000000004, "id_str": "1973000000000000004", "rawContent": "twscrape text here",
    "date": "2025-10-02 07:11:55+00:00", "user": {"username": "tw_user", "followersCount": 321},
    "likeCount": 7, "retweetCount": 0, "lang": "en", "conversationId": 1973000000000000003,
    "inReplyToTweetId": 1973000000000000003, "links": [{"url": "https://example.com"}],
    "media": {"photos": [], "videos": [{"url": "v"}], "animated": []},
}


def ok(item):
    rec, reasons = normalize_item(item, source="test")
    assert reasons == [], reasons
    assert rec is not None and tuple(rec) == RECORD_FIELDS
    return rec


def test_apidojo():
    rec = ok(APIDOJO)
    assert rec["id"] == "1973000000000000001"
    assert rec["text"] == "Short & truncated text that is the full one"  # fullText wins, HTML unescaped
    assert rec["author"] == "maya_builds" and rec["author_followers"] == 1200
    assert (rec["likes"], rec["retweets"]) == (250, 12)
    assert rec["created_at"] == WHEN
    assert rec["is_reply"] and rec["in_reply_to_id"] == "1972999999999999999"
    assert not rec["has_media"] and not rec["has_urls"] and rec["lang"] == "en"
    assert rec["format"] == "apidojo"


def test_apidojo_media_as_url_strings_and_url_entities():
    item = dict(APIDOJO, media=["https://pbs.twimg.com/media/x.jpg"],
                entities={"urls": [{"expanded_url": "https://a.example"}]})
    rec = ok(item)
    assert rec["has_media"] and rec["has_urls"]


def test_legacy_snake_case():
    rec = ok(LEGACY)
    assert rec["text"] == "Legacy export text" and rec["author"] == "legacy_user"
    assert rec["author_followers"] == 5000 and rec["likes"] == 300 and rec["retweets"] == 30
    assert rec["created_at"] == WHEN and rec["lang"] is None and not rec["is_reply"]
    assert rec["format"] == "legacy"


def test_legacy_without_user_and_retweet_text():
    item = {k: v for k, v in LEGACY.items() if k != "user"}
    item["full_text"] = "RT @someone: copied"
    rec = ok(item)
    assert rec["author"] is None and rec["author_followers"] is None and rec["is_retweet"]


def test_twitterapi_quote_and_qme():
    rec = ok(TWITTERAPI)
    assert rec["is_quote"] and not rec["is_retweet"] and rec["lang"] == "qme"
    assert rec["format"] == "twitterapi" and not rec["has_urls"]
    rec = ok(dict(TWITTERAPI, quoted_tweet=None, retweeted_tweet={"id": "2", "text": "r"}))
    assert rec["is_retweet"] and not rec["is_quote"]


def test_twscrape():
    rec = ok(TWSCRAPE)
    assert rec["id"] == "1973000000000000004" and rec["author"] == "tw_user" and rec["author_followers"] == 321
    assert rec["conversation_id"] == "1973000000000000003" and rec["in_reply_to_id"] == "1973000000000000003"
    assert rec["is_reply"] and rec["has_media"] and rec["has_urls"] and rec["format"] == "twscrape"
    # older twscrape without *_str fields: the int id becomes a string exactly
    item = {k: v for k, v in TWSCRAPE.items() if k != "id_str"}
    assert ok(item)["id"] == "1973000000000000004"


def test_record_is_idempotent():
    for item in (APIDOJO, LEGACY, TWITTERAPI, TWSCRAPE):
        rec = ok(item)
        assert ok(rec) == rec


def test_pair_rows_split_into_tweet_and_reply():
    row = {"query": "q", "source": "replay", "tweet_id": "10", "tweet": "the tweet", "tweet_author": "a",
           "tweet_author_followers": None, "tweet_likes": 300, "tweet_retweets": 20,
           "tweet_created_at": "2025-10-02T07:11:55", "reply_id": "11", "reply": "the reply", "reply_author": "b",
           "reply_author_followers": 400, "reply_likes": 9, "reply_retweets": 0,
           "reply_created_at": "2025-10-02T08:11:55", "reply_time_diff_seconds": 3600,
           "has_media": False, "has_urls": True, "lang": "en", "collected_at": "2025-10-03T00:00:00"}
    tweet, reply = (ok(x) for x in unwrap_items([row]))
    assert tweet["id"] == "10" and not tweet["is_reply"] and tweet["author_followers"] is None
    assert reply["id"] == "11" and reply["in_reply_to_id"] == "10" and reply["is_reply"]
    assert reply["has_urls"] and reply["author_followers"] == 400 and reply["format"] == "record"


@pytest.mark.parametrize("value", [
    "Thu Oct 02 07:11:55 +0000 2025",
    "Thu Oct 02 09:11:55 +0200 2025",
    "Thu, 02 Oct 2025 07:11:55 +0000",
    "Thu, 02 Oct 2025 07:11:55 GMT",
    "2025-10-02T07:11:55Z",
    "2025-10-02T07:11:55.000Z",
    "2025-10-02T07:11:55+00:00",
    "2025-10-02T03:11:55-04:00",
    "2025-10-02T09:11:55.000+02:00",
    "2025-10-02T07:11:55",
    "2025-10-02 07:11:55+00:00",
    1759389115,
    1759389115.0,
    "1759389115",
    1759389115000,
    datetime(2025, 10, 2, 7, 11, 55),
])
def test_every_date_format(value):
    assert parse_datetime(value) == WHEN


def test_millisecond_precision_kept():
    assert parse_datetime("2025-10-02T07:11:55.250Z") == datetime(2025, 10, 2, 7, 11, 55, 250000)


@pytest.mark.parametrize("value", [
    None, True, False, "", "   ", "yesterday", "2025-13-01T00:00:00Z", "Thu Foo 02 07:11:55 +0000 2025",
    "Thu Oct 32 07:11:55 +0000 2025", -1, float("nan"), float("inf"), "1e400", "9" * 40, "1900-01-01T00:00:00Z",
    "2999-01-01T00:00:00Z", [], {}, "x" * 10_000,
])
def test_bad_dates(value):
    assert parse_datetime(value) is None


def test_counts_and_ids():
    assert parse_count(5) == 5 and parse_count("12") == 12 and parse_count("1,234") == 1234 and parse_count(3.0) == 3
    for bad in (-1, "-1", True, False, None, "lots", 2.5, float("nan"), "١٢", [], 10**13):
        assert parse_count(bad) is None, bad
    assert parse_id(123) == "123" and parse_id(" 42 ") == "42"
    for bad in (True, 1.5, -3, "", "a b", "x" * 65, None, [], {}):
        assert parse_id(bad) is None, bad


@pytest.mark.parametrize("item, reason", [
    (None, "not_an_object"), ([], "not_an_object"), ("text", "not_an_object"), (42, "not_an_object"),
    ({k: v for k, v in APIDOJO.items() if k != "id"}, "missing_id"),
    (dict(APIDOJO, id=True), "bad_id"),
    ({k: v for k, v in APIDOJO.items() if k not in ("text", "fullText")}, "missing_text"),
    (dict(APIDOJO, fullText={"nested": ["junk"]}), "bad_text"),
    (dict(APIDOJO, fullText="   "), "empty_text"),
    (dict(APIDOJO, fullText="bad \ud800 surrogate"), "bad_text"),
    (dict(APIDOJO, fullText="x" * 60_000), "text_too_long"),
    ({k: v for k, v in APIDOJO.items() if k != "createdAt"}, "missing_created_at"),
    (dict(APIDOJO, createdAt="not a date"), "bad_created_at"),
    (dict(APIDOJO, likeCount=-3), "bad_like_count"),
    (dict(APIDOJO, likeCount="many"), "bad_like_count"),
    (dict(APIDOJO, likeCount=True), "bad_like_count"),
    ({k: v for k, v in APIDOJO.items() if k != "likeCount"}, "missing_like_count"),
    (dict(APIDOJO, retweetCount=[1]), "bad_retweet_count"),
    (dict(APIDOJO, author={"userName": "x", "followers": "-5"}), "bad_followers"),
    (dict(APIDOJO, author={"userName": ["x"], "followers": 5}), "bad_author"),
    (dict(APIDOJO, conversationId={"a": 1}), "bad_conversation_id"),
    (dict(APIDOJO, inReplyToId=1.5), "bad_in_reply_to_id"),
    (dict(APIDOJO, lang=7), "bad_lang"),
    (DamagedInput("bad_json_line", "x.jsonl", 3), "bad_json_line"),
    # an item cannot pose as a source's marker: it is judged by what it holds
    ({"_replay_error": "bad_json_line", "_file": "x.jsonl", "_line": 3}, "missing_id"),
    ({"_replay_error": "A"}, "missing_text"),
])
def test_rejections_with_reasons(item, reason):
    rec, reasons = normalize_item(item, source="t")
    assert rec is None and reason in reasons


def test_all_reasons_reported():
    rec, reasons = normalize_item({"id": True, "createdAt": "x", "likeCount": -1}, source="t")
    assert rec is None
    assert {"bad_id", "missing_text", "bad_created_at", "bad_like_count", "missing_retweet_count"} <= set(reasons)


def test_hostile_items_never_raise():
    rng = random.Random(7)
    deep: list = []
    cur = deep
    for _ in range(5000):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    atoms = [None, True, 0, -1, 1.5, float("nan"), "", "\ud800", "x" * 100_000, [], {}, deep, "2025-10-02T07:11:55Z"]
    keys = ["id", "id_str", "text", "fullText", "full_text", "rawContent", "createdAt", "created_at", "date",
            "likeCount", "favorite_count", "retweetCount", "author", "user", "lang", "media", "entities",
            "conversationId", "inReplyToId", "isReply", "quoted_tweet", "links", "has_media", "is_reply"]
    for _ in range(3000):
        item = {rng.choice(keys): rng.choice(atoms + [{"userName": rng.choice(atoms), "followers": rng.choice(atoms)}])
                for _ in range(rng.randrange(0, 10))}
        rec, reasons = normalize_item(item, source="fuzz")
        assert (rec is None) == bool(reasons)
        if rec is not None:
            json.dumps(rec, default=str)  # a kept record is always serializable
    for item in (deep, {"id": deep}, object(), b"bytes", {1: 2}, {"author": {"legacy": {"screen_name": 1}}}):
        rec, reasons = normalize_item(item, source="fuzz")
        assert rec is None and reasons


def test_unwrap_items():
    assert list(unwrap_items({"tweets": [APIDOJO, LEGACY], "event_type": "tweet"})) == [APIDOJO, LEGACY]
    assert list(unwrap_items([{"tweets": [APIDOJO]}, LEGACY])) == [APIDOJO, LEGACY]
    assert list(unwrap_items(APIDOJO)) == [APIDOJO]
    assert list(unwrap_items([1, None])) == [1, None]
    assert list(unwrap_items({"data": [TWSCRAPE]})) == [TWSCRAPE]
