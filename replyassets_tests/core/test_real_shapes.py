"""Real-shaped apidojo exports (replyassets_tests/fixtures/real_shapes.py) through collect_partition:
every item accounted for, viral thresholds named with their settings, replies stay replies."""

from __future__ import annotations

import pytest
import yaml

from replyassets.core.collect import collect_partition, funnel_rows
from replyassets.core.columns import split_reasons
from replyassets.core.rule_settings import setting_ref, setting_source, top_rules_text
from replyassets.settings import CollectionSettings, QuerySpec, load_settings
from replyassets.sources.replay import ReplaySource
from replyassets_tests.fixtures.real_shapes import (
    PERMISSIVE_COLLECTION,
    VIRAL_SELF_REPLY_LIKES,
    write_real_exports,
)

DEFAULT = "(default in replyassets/settings.py)"


@pytest.fixture
def exports(tmp_path):
    return tmp_path, write_real_exports(tmp_path / "exports")


def _collect(folder, q, settings):
    spec = QuerySpec(name=q.name, text="t", replay=q.files)
    return collect_partition(spec, ReplaySource(folder / "exports"), settings)


def _rows(res, code):
    return res.rejections[res.rejections["reasons"].map(lambda r: code in split_reasons(r))]


@pytest.mark.parametrize("permissive", [False, True], ids=["default-windows", "raised-windows"])
def test_every_item_is_a_pair_a_rejection_or_a_paired_tweet(exports, permissive):
    folder, queries = exports
    settings = CollectionSettings(**PERMISSIVE_COLLECTION) if permissive else CollectionSettings()
    for q in queries.values():
        res = _collect(folder, q, settings)
        f = res.funnel
        paired = res.pairs["tweet_id"].nunique()
        assert f["items_in"] == q.items, (q.name, f)
        assert q.items == len(res.pairs) + len(res.rejections) + paired, (q.name, f["identity"])
        assert f["identity"] == (f"items in {q.items} = pairs {len(res.pairs)} + rejections {len(res.rejections)} "
                                 f"+ tweets with pairs {paired}") and f["identity_holds"]
        # every kept tweet either has a pair or a no_reply_kept row
        no_reply = set(_rows(res, "no_reply_kept")["item_id"])
        assert f["tweets_kept"] == paired + len(no_reply) and f["tweets_without_reply"] == len(no_reply)
        assert not no_reply & set(res.pairs["tweet_id"])


def test_default_windows_reject_every_viral_tweet_and_say_which_setting(exports):
    folder, queries = exports
    res = _collect(folder, queries["viral-a"], CollectionSettings())
    assert res.pairs.empty
    rules = res.funnel["rejected_by_rule"]
    likes = next(r for r in rules if r["code"] == "likes_above_max")
    assert likes["stage"] == "tweet_filter" and likes["items"] == 6  # 5 viral tweets + the repeated copy
    assert likes["setting"] == f"collection.tweet_max_likes = 2000 {DEFAULT}"
    rts = next(r for r in rules if r["code"] == "retweets_above_max")
    assert rts["setting"] == f"collection.tweet_max_retweets = 500 {DEFAULT}"
    labels = [r["stage"] for r in funnel_rows(res.funnel, res.rejections)]
    assert f"rejected: likes_above_max [tweet_filter]: collection.tweet_max_likes = 2000 {DEFAULT}" in labels
    # replies under rejected tweets are parent_filtered, and that is the largest rule
    assert rules[0]["code"] == "parent_filtered"
    text = top_rules_text(rules)
    assert "collection.tweet_max_likes = 2000" in text and "removed 6 items" in text


def test_replies_are_replies_image_only_and_self_replies(exports):
    folder, queries = exports
    res = _collect(folder, queries["viral-a"], CollectionSettings(**PERMISSIVE_COLLECTION))
    media = _rows(res, "media_only")
    assert len(media) == queries["viral-a"].image_only
    assert set(media["item_kind"]) == {"reply"} and set(media["stage"]) == {"reply_filter"}
    assert all({"has_media", "too_short"} <= set(split_reasons(r)) for r in media["reasons"])
    tweets = res.rejections[res.rejections["item_kind"] == "tweet"]  # only tweets: quote, repeat, no reply kept
    assert dict(zip(tweets["item_id"], tweets["reasons"], strict=True)) == {
        "1900000000000000400": "is_quote", "1900000000000000200": "duplicate_tweet_id",
        "1900000000000000500": "no_reply_kept"}
    selfr = _rows(res, "self_reply")
    assert len(selfr) == 1
    assert '"likeCount":%d' % VIRAL_SELF_REPLY_LIKES in selfr["detail"].iloc[0]
    # the reply to that self-reply is a reply to a reply, never a pair
    assert "1900000000000000161" not in set(res.pairs["reply_id"])
    # a quote tweet is rejected with its reason, its replies as parent_filtered
    quote = res.rejections[res.rejections["item_id"] == "1900000000000000400"]
    assert list(quote["reasons"]) == ["is_quote"]
    assert set(_rows(res, "parent_filtered")["tweet_id"]) == {"1900000000000000400"}
    # ids repeated across files: one pair per reply id, later copies rejected
    assert res.pairs["reply_id"].is_unique
    assert len(_rows(res, "duplicate_reply_id")) == 3 and len(_rows(res, "duplicate_tweet_id")) == 1
    # a missing follower count is its own reason, not a crash; a missing lang passes
    assert len(_rows(res, "missing_followers")) == 1
    assert "1900000000000000164" in set(res.pairs["reply_id"])


def test_allow_self_replies_lets_the_thread_through(exports):
    folder, queries = exports
    s = CollectionSettings(**PERMISSIVE_COLLECTION, allow_self_replies=True, reply_max_likes=100_000,
                           reply_max_followers=5_000_000)
    res = _collect(folder, queries["viral-b"], s)
    assert _rows(res, "self_reply").empty
    assert "1910000000000000141" in set(res.pairs["reply_id"])
    assert res.funnel["identity_holds"]


def test_setting_source_names_the_file_that_sets_the_value(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLYASSETS_PROFILE", "local")
    monkeypatch.delenv("REPLYASSETS_SETTINGS", raising=False)
    s = load_settings()
    assert setting_source("collection.tweet_max_likes") == "default in replyassets/settings.py"
    assert setting_ref("curation.min_pairs", s) == "curation.min_pairs = 300 (config/profiles/local.yaml)"
    assert setting_ref("curation.min_pairs", s.curation) == "curation.min_pairs = 300 (config/profiles/local.yaml)"
    over = tmp_path / "mine.yaml"
    over.write_text(yaml.safe_dump({"collection": {"tweet_max_likes": 50_000}, "curation": {"min_pairs": 20}}))
    monkeypatch.setenv("REPLYASSETS_SETTINGS", str(over))
    s = load_settings()
    assert setting_ref("collection.tweet_max_likes", s) == f"collection.tweet_max_likes = 50000 ({over})"
    assert setting_ref("curation.min_pairs", s) == f"curation.min_pairs = 20 ({over})"
    assert setting_source("collection.tweet_max_retweets") == "default in replyassets/settings.py"
    spec = QuerySpec(name="q", text="t", overrides={"tweet_max_retweets": 9000})
    assert setting_ref("collection.tweet_max_retweets", spec.collection_settings(s.collection), spec) == (
        "collection.tweet_max_retweets = 9000 (query 'q' overrides in the queries file)")
    assert setting_ref("collection.allow_self_replies", s) == (
        "collection.allow_self_replies = false (default in replyassets/settings.py)")
    with pytest.raises(KeyError, match="collection.no_such_key"):
        setting_ref("collection.no_such_key", s)


def test_identity_figures_on_the_realistic_exports(exports):
    """The figures the report quotes (and a guard that the fixture stays what it says)."""
    folder, queries = exports
    got = {}
    for label, s in (("default", CollectionSettings()), ("raised", CollectionSettings(**PERMISSIVE_COLLECTION))):
        for q in queries.values():
            f = _collect(folder, q, s).funnel
            got[(label, q.name)] = f["identity"]
    assert got == {
        ("default", "viral-a"): "items in 49 = pairs 0 + rejections 49 + tweets with pairs 0",
        ("default", "viral-b"): "items in 9 = pairs 0 + rejections 9 + tweets with pairs 0",
        ("raised", "viral-a"): "items in 49 = pairs 28 + rejections 18 + tweets with pairs 3",
        ("raised", "viral-b"): "items in 9 = pairs 6 + rejections 2 + tweets with pairs 1",
    }
