"""ReplaySource: file formats, matching replies to tweets, damaged files, path safety."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from replyassets.core.collect import collect_partition
from replyassets.core.normalize import normalize_item
from replyassets.settings import CollectionSettings, QuerySpec
from replyassets.sources.base import SourceError, TweetSource
from replyassets.sources.replay import ReplaySource
from replyassets_tests.core.shapes import (
    T0,
    apidojo,
    conversation,
    legacy,
    twscrape,
    write_json,
    write_jsonl,
)

S = CollectionSettings()


def q(*files, name="q"):
    return QuerySpec(name=name, text="search", replay=list(files))


def rec(item):
    r, reasons = normalize_item(item)
    assert not reasons
    return r


def test_is_a_tweet_source(tmp_path):
    assert isinstance(ReplaySource(tmp_path), TweetSource)


def test_json_array_jsonl_webhook_and_single_object(tmp_path):
    write_json(tmp_path / "arr.json", conversation("apidojo", 2, 2, id_base=10_000))
    write_jsonl(tmp_path / "lines.jsonl", conversation("twscrape", 2, 2, id_base=20_000))
    write_json(tmp_path / "hook.json", {"event_type": "tweet", "rule_id": "r", "tweets": conversation("twitterapi", 2, 2, id_base=30_000)})
    write_json(tmp_path / "one.json", apidojo(40_000, "single tweet object"))
    # JSONL whose lines are webhook payloads (as a webhook log would be stored)
    write_jsonl(tmp_path / "hooks.jsonl", [{"tweets": conversation("legacy", 1, 2, id_base=50_000)}])
    src = ReplaySource(tmp_path)
    query = q("arr.json", "lines.jsonl", "hook.json", "one.json", "hooks.jsonl")
    tweets = src.search_tweets(query, S)
    assert sorted(rec(t)["id"] for t in tweets) == ["10000", "10100", "20000", "20100", "30000", "30100", "40000", "50000"]
    for t in tweets:
        r = rec(t)
        replies = src.fetch_replies(query, r, S)
        expected = 0 if r["id"] == "40000" else 2
        assert len(replies) == expected
        assert all(rec(x)["in_reply_to_id"] == r["id"] for x in replies)
    assert src.stats()["files_read"] == 5 and src.estimated_cost_usd() == 0.0


def test_replies_matched_by_conversation_or_parent_across_files(tmp_path):
    write_json(tmp_path / "tweets.json", [apidojo(1, "root tweet")])
    write_jsonl(tmp_path / "replies.jsonl", [
        twscrape(2, "direct reply", parent=1),
        legacy(3, "reply to a reply, same conversation", parent=2, conversation=1),
        apidojo(4, "reply with only the in-reply-to id", parent=1, conversation=None),
        apidojo(5, "reply to some other conversation", parent=99),
    ])
    src = ReplaySource(tmp_path)
    got = src.fetch_replies(q("tweets.json", "replies.jsonl"), rec(apidojo(1, "root tweet")), S)
    assert [rec(x)["id"] for x in got] == ["2", "3", "4"]  # file order, each once


def test_pair_rows_replay(tmp_path):
    row = {"tweet_id": "10", "tweet": "the tweet", "tweet_author": "a", "tweet_author_followers": 100,
           "tweet_likes": 300, "tweet_retweets": 20, "tweet_created_at": "2025-10-02T07:00:00",
           "reply_id": "11", "reply": "A reply from the normalized pairs file, long enough.", "reply_author": "b",
           "reply_author_followers": 400, "reply_likes": 9, "reply_retweets": 0,
           "reply_created_at": "2025-10-02T08:00:00", "reply_time_diff_seconds": 3600,
           "has_media": False, "has_urls": False, "lang": "en"}
    row2 = dict(row, reply_id="12", reply="Another reply to the same tweet, also long enough.")
    write_jsonl(tmp_path / "pairs.jsonl", [row, row2])
    res = collect_partition(q("pairs.jsonl"), ReplaySource(tmp_path), S)
    assert list(res.pairs["reply_id"]) == ["11", "12"]
    assert res.pairs["reply_time_diff_seconds"].tolist() == [3600, 3600]
    assert res.rejections["reasons"].tolist() == ["duplicate_tweet_id"]  # the tweet is in both rows


def test_bad_jsonl_lines_become_rejections(tmp_path):
    good = conversation("apidojo", 1, 2, id_base=100)
    path = tmp_path / "f.jsonl"
    lines = [json.dumps(good[0]), "{not json", json.dumps(good[1]), '{"id": "5", "text": "cut', json.dumps(good[2])]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe broken bytes\n")
    res = collect_partition(q("f.jsonl"), ReplaySource(tmp_path), S)
    assert len(res.pairs) == 2
    bad = res.rejections[res.rejections["reasons"] == "bad_json_line"]
    assert len(bad) == 3
    assert all('"file":"f.jsonl"' in d for d in bad["detail"])
    assert sorted(json.loads(d)["line"] for d in bad["detail"]) == [2, 4, 6]
    assert set(bad["item_kind"]) == {"item"}


def test_truncated_json_array_keeps_readable_items(tmp_path):
    items = conversation("apidojo", 2, 3, id_base=100)
    text = json.dumps(items, indent=1)
    (tmp_path / "cut.json").write_text(text[: int(len(text) * 0.8)])
    res = collect_partition(q("cut.json"), ReplaySource(tmp_path), S)
    assert 0 < len(res.pairs) < 6
    assert (res.rejections["reasons"] == "truncated_json").sum() == 1


@pytest.mark.parametrize("content, match", [
    (b"{ this is not json", "invalid JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"[" * 100_000, "invalid JSON|too deeply"),
])
def test_unreadable_files_raise_source_error_naming_the_file(tmp_path, content, match):
    (tmp_path / "bad.json").write_bytes(content)
    with pytest.raises(SourceError, match=r"bad\.json"):
        ReplaySource(tmp_path).search_tweets(q("bad.json"), S)
    with pytest.raises(SourceError, match=match):
        ReplaySource(tmp_path).search_tweets(q("bad.json"), S)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(SourceError, match="missing.json.*cannot read"):
        ReplaySource(tmp_path).search_tweets(q("missing.json"), S)
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    assert ReplaySource(tmp_path).search_tweets(q("empty.json", "empty.jsonl"), S) == []
    with pytest.raises(SourceError, match="no replay files"):
        ReplaySource(tmp_path).search_tweets(q(), S)


@pytest.mark.parametrize("path", ["../outside.json", "/etc/passwd", "sub/../../outside.json", "", "link.json"])
def test_paths_cannot_escape_the_sample_dir(tmp_path, path):
    root = tmp_path / "sample"
    root.mkdir()
    write_json(tmp_path / "outside.json", [apidojo(1, "secret")])
    os.symlink(tmp_path / "outside.json", root / "link.json")
    with pytest.raises(SourceError, match="escapes|relative|empty"):
        ReplaySource(root).search_tweets(q(path), S)


def test_subfolders_allowed(tmp_path):
    write_json(tmp_path / "sub" / "f.json", [apidojo(1, "tweet")])
    assert len(ReplaySource(tmp_path).search_tweets(q("sub/f.json"), S)) == 1


def test_hostile_items_only_produce_rejections(tmp_path):
    hostile = [None, 1, "str", [], {}, {"id": {"$gt": ""}}, {"id": "1", "text": "\ud800"},
               {"tweets": "not a list"}, {"id": "2" * 200}, apidojo(3, "ok tweet", likeCount="NaN"),
               apidojo(4, "reply to nothing", parent=3, at=T0 + timedelta(hours=1))]
    (tmp_path / "h.json").write_text(json.dumps(hostile))
    res = collect_partition(q("h.json"), ReplaySource(tmp_path), S)
    assert len(res.pairs) == 0
    # every item, the reply too: its tweet (3) was rejected, so it is parent_filtered (it used
    # to vanish, and this count was 10)
    assert len(res.rejections) == 11 and res.funnel["items_in"] == 11
    assert res.rejections["reasons"].str.len().min() > 0
    last = res.rejections.iloc[-1]
    assert (last["item_id"], last["stage"], last["reasons"], last["tweet_id"]) == ("4", "pairing", "parent_filtered", "3")
