"""Collection filters: every reason, all reasons at once, the per-author cap."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from replyassets.core.filters import apply_author_cap, reply_reasons, tweet_reasons
from replyassets.settings import CollectionSettings

S = CollectionSettings()
T0 = datetime(2025, 10, 2, 7, 0, 0)


def tweet(**kw):
    rec = {"id": "100", "text": "a source tweet about python", "author": "src", "author_followers": 9000,
           "likes": 500, "retweets": 50, "created_at": T0, "conversation_id": "100", "in_reply_to_id": None,
           "is_retweet": False, "is_quote": False, "is_reply": False, "has_media": False, "has_urls": False,
           "lang": "en", "format": "apidojo"}
    rec.update(kw)
    return rec


def reply(**kw):
    rec = {"id": "200", "text": "A thoughtful reply that is long enough to pass the length check.",
           "author": "replier", "author_followers": 1500, "likes": 20, "retweets": 1,
           "created_at": T0 + timedelta(hours=1), "conversation_id": "100", "in_reply_to_id": "100",
           "is_retweet": False, "is_quote": False, "is_reply": True, "has_media": False, "has_urls": False,
           "lang": "en", "format": "apidojo"}
    rec.update(kw)
    return rec


def test_good_tweet_and_reply_pass():
    assert tweet_reasons(tweet(), S) == []
    assert reply_reasons(reply(), tweet(), S) == []


@pytest.mark.parametrize("kw, reason", [
    ({"likes": 199}, "likes_below_min"),
    ({"likes": 2001}, "likes_above_max"),
    ({"retweets": 9}, "retweets_below_min"),
    ({"retweets": 501}, "retweets_above_max"),
    ({"is_retweet": True}, "is_retweet"),
    ({"is_quote": True}, "is_quote"),
    ({"is_reply": True}, "is_reply"),
    ({"lang": "es"}, "not_english"),
    ({"lang": "qme"}, "lang_undetermined"),
    ({"lang": "und"}, "lang_undetermined"),
])
def test_tweet_reasons(kw, reason):
    assert tweet_reasons(tweet(**kw), S) == [reason]


def test_tweet_bounds_inclusive_and_lang_variants():
    for kw in ({"likes": 200}, {"likes": 2000}, {"retweets": 10}, {"retweets": 500}, {"lang": None},
               {"lang": "en-gb"}):
        assert tweet_reasons(tweet(**kw), S) == [], kw


def test_tweet_all_reasons_recorded():
    got = tweet_reasons(tweet(likes=5, retweets=0, is_retweet=True, is_quote=True, lang="de"), S)
    assert got == ["likes_below_min", "retweets_below_min", "is_retweet", "is_quote", "not_english"]


@pytest.mark.parametrize("kw, reason", [
    ({"likes": 4}, "likes_below_min"),
    ({"likes": 501}, "likes_above_max"),
    ({"author": None}, "missing_author"),
    ({"author_followers": None}, "missing_followers"),
    ({"author_followers": 199}, "followers_below_min"),
    ({"author_followers": 20001}, "followers_above_max"),
    ({"created_at": T0 + timedelta(seconds=299)}, "too_early"),
    ({"created_at": T0 - timedelta(seconds=10)}, "too_early"),
    ({"created_at": T0 + timedelta(days=7, seconds=1)}, "too_late"),
    ({"has_media": True}, "has_media"),
    ({"has_urls": True}, "has_urls"),
    ({"text": "too short reply"}, "too_short"),
    ({"text": "x" * 281}, "too_long"),
    ({"lang": "fr"}, "not_english"),
    ({"is_retweet": True}, "is_retweet"),
    ({"in_reply_to_id": "999"}, "not_direct_reply"),
    ({"is_reply": False, "in_reply_to_id": None}, "not_a_reply"),
    ({"id": "100"}, "not_a_reply"),
])
def test_reply_reasons(kw, reason):
    assert reply_reasons(reply(**kw), tweet(), S) == [reason]


def test_reply_bounds_inclusive_and_lang_policy():
    for kw in ({"likes": 5}, {"likes": 500}, {"author_followers": 200}, {"author_followers": 20000},
               {"created_at": T0 + timedelta(seconds=300)}, {"created_at": T0 + timedelta(days=7)},
               {"text": "x" * 30}, {"text": "x" * 280}, {"lang": None}, {"lang": "qme"}, {"lang": "und"},
               {"in_reply_to_id": None}):
        assert reply_reasons(reply(**kw), tweet(), S) == [], kw
    off = S.model_copy(update={"reply_lang": ""})
    assert reply_reasons(reply(lang="fr"), tweet(), off) == []


def test_reply_all_reasons_recorded():
    got = reply_reasons(reply(likes=0, author_followers=5_000_000, created_at=T0, has_media=True,
                              has_urls=True, text="short", lang="pt"), tweet(), S)
    assert got == ["likes_below_min", "followers_above_max", "too_early", "has_media", "has_urls",
                   "too_short", "not_english"]


def test_settings_change_thresholds():
    loose = S.model_copy(update={"reply_min_likes": 0, "reply_min_followers": 0})
    assert reply_reasons(reply(likes=0, author_followers=10), tweet(), loose) == []


def test_author_cap_keeps_highest_liked_deterministically():
    replies = [reply(id=str(300 + i), author="Bot" if i % 2 else "bot", likes=i) for i in range(25)]
    replies += [reply(id=str(400 + i), author=f"human{i}", likes=1) for i in range(5)]
    kept, capped = apply_author_cap(replies, 10)
    bot_kept = [r for r in kept if r["author"].lower() == "bot"]
    assert len(bot_kept) == 10 and len(capped) == 15  # handles are case-insensitive
    assert sorted(r["likes"] for r in bot_kept) == list(range(15, 25))
    assert all(r["author"].startswith("human") for r in kept[-5:])
    for seed in range(3):
        shuffled = replies[:]
        random.Random(seed).shuffle(shuffled)
        k2, _ = apply_author_cap(shuffled, 10)
        assert {r["id"] for r in k2} == {r["id"] for r in kept}


def test_author_cap_ties_broken_by_time_then_id():
    replies = [reply(id=str(500 + i), author="same", likes=10, created_at=T0 + timedelta(hours=1, minutes=i % 3))
               for i in range(6)]
    kept, capped = apply_author_cap(list(reversed(replies)), 2)
    assert {r["id"] for r in kept} == {"500", "503"}
    assert len(capped) == 4
