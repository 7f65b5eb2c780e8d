"""collect_partition: the contract of its frames, the funnel, dedup by reply id, resume."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest

from replyassets.core.checkpoint import (
    SEARCH_KEY,
    DuckDBCheckpointStore,
    InMemoryCheckpointStore,
)
from replyassets.core.collect import collect_partition
from replyassets.core.columns import PAIR_COLUMNS, REJECTION_COLUMNS, split_reasons
from replyassets.core.normalize import parse_id
from replyassets.settings import (
    PROJECT_ROOT,
    CollectionSettings,
    QuerySpec,
    load_queries,
)
from replyassets.sources.base import SourceError, TweetSource
from replyassets.sources.replay import ReplaySource

from .shapes import (
    T0,
    apidojo,
    conversation,
    legacy,
    reply_text,
    write_json,
    write_jsonl,
)

S = CollectionSettings()
COLLECTED = datetime(2025, 10, 10, 12, 0, 0)


class FailingAfter:
    """A real TweetSource that stops working after ``n`` fetch_replies calls (a crash, a quota)."""

    def __init__(self, inner: TweetSource, n: int) -> None:
        self.inner, self.n, self.name = inner, n, inner.name
        self.fetched: list[str] = []
        self.searches = 0

    def search_tweets(self, query, settings):
        self.searches += 1
        return self.inner.search_tweets(query, settings)

    def fetch_replies(self, query, tweet, settings):
        if len(self.fetched) >= self.n:
            raise SourceError(f"query {query.name!r}: simulated outage")
        self.fetched.append(tweet["id"])
        return self.inner.fetch_replies(query, tweet, settings)

    def estimated_cost_usd(self):
        return 0.01 * len(self.fetched)

    def stats(self):
        return {"fetched": len(self.fetched)}


def assert_contract(res):
    assert list(res.pairs.columns) == list(PAIR_COLUMNS)
    assert {c: str(t) for c, t in res.pairs.dtypes.items()} == PAIR_COLUMNS
    assert list(res.rejections.columns) == list(REJECTION_COLUMNS)
    assert {c: str(t) for c, t in res.rejections.dtypes.items()} == REJECTION_COLUMNS
    assert res.pairs["reply_id"].is_unique
    assert not res.rejections["reasons"].isna().any() and (res.rejections["reasons"] != "").all()


@pytest.fixture
def world(tmp_path):
    """Six tweets x four replies in each of three shapes, plus noise, in three files."""
    items = conversation("apidojo", id_base=1_000_000)
    write_json(tmp_path / "a.json", items)
    write_jsonl(tmp_path / "b.jsonl", conversation("legacy", id_base=2_000_000))
    write_jsonl(tmp_path / "c.jsonl", conversation("twscrape", id_base=3_000_000))
    q = QuerySpec(name="topic", text="anything", replay=["a.json", "b.jsonl", "c.jsonl"])
    return tmp_path, q


def test_collect_all_formats(world):
    root, q = world
    res = collect_partition(q, ReplaySource(root), S, collected_at=COLLECTED)
    assert_contract(res)
    assert len(res.pairs) == 3 * 6 * 4 and len(res.rejections) == 0
    assert res.pairs["tweet_id"].nunique() == 18
    assert (res.pairs["reply_time_diff_seconds"] >= 1800).all()
    assert (res.pairs["collected_at"] == pd.Timestamp(COLLECTED)).all()
    assert set(res.pairs["query"]) == {"topic"} and set(res.pairs["source"]) == {"replay"}
    assert res.pairs["tweet_author_followers"].notna().all() and res.pairs["lang"].isna().sum() == 24  # legacy
    f = res.funnel
    assert f["tweet_items_in"] == 18 and f["tweets_kept"] == 18 and f["pairs_kept"] == 72
    assert f["items_in"] == 18 + 72 and f["fetched_tweets"] == 18 and f["resumed_tweets"] == 0
    assert res.fetched_tweets == 18 and res.cost_usd == 0.0


def test_rejections_keep_every_reason(tmp_path):
    t = apidojo(10, "source tweet", likes=500)
    items = [
        t,
        apidojo(11, "retweeted tweet", isRetweet=True, likes=50),                 # 2 tweet reasons
        apidojo(12, "x" * 5, parent=10, likes=0, followers=50, at=T0 + timedelta(seconds=5)),  # 4 reply reasons
        apidojo(13, "A perfectly fine reply with more than thirty chars.", parent=10, at=T0 + timedelta(hours=1)),
        apidojo(14, "Has a link https://example.com in it, long enough text", parent=10, at=T0 + timedelta(hours=2)),
        {"id": "15", "text": "no date", "likeCount": 3, "retweetCount": 0},  # normalize: missing_created_at
        None,
    ]
    write_json(tmp_path / "f.json", items)
    res = collect_partition(QuerySpec(name="q", text="t", replay=["f.json"]), ReplaySource(tmp_path), S,
                            collected_at=COLLECTED)
    assert_contract(res)
    assert list(res.pairs["reply_id"]) == ["13"]
    rej = {(r.item_id if r.item_id is not pd.NA else None): (r.stage, split_reasons(r.reasons))
           for r in res.rejections.itertuples()}
    assert rej["11"] == ("tweet_filter", ["likes_below_min", "is_retweet"])
    assert rej["12"] == ("reply_filter", ["likes_below_min", "followers_below_min", "too_early", "too_short"])
    assert rej["14"] == ("reply_filter", ["has_urls"])
    assert rej["15"] == ("normalize", ["missing_created_at"])
    assert rej[None] == ("normalize", ["not_an_object"])
    assert res.funnel["rejected_by_reason"]["likes_below_min"] == 2
    assert res.funnel["rejected"] == 5 and res.funnel["pairs_kept"] == 1
    assert res.rejections.loc[res.rejections["item_id"] == "12", "tweet_id"].iloc[0] == "10"


def test_pairs_unique_by_reply_id(tmp_path):
    t = apidojo(10, "source tweet")
    r = apidojo(11, "The same reply exported twice, long enough to pass.", parent=10, at=T0 + timedelta(hours=1))
    write_json(tmp_path / "a.json", [t, r, r])
    write_jsonl(tmp_path / "b.jsonl", [legacy(11, r["text"], parent=10, at=T0 + timedelta(hours=1)), t])
    res = collect_partition(QuerySpec(name="q", text="t", replay=["a.json", "b.jsonl"]), ReplaySource(tmp_path), S)
    assert list(res.pairs["reply_id"]) == ["11"]
    reasons = res.rejections["reasons"].tolist()
    assert reasons.count("duplicate_reply_id") == 2 and reasons.count("duplicate_tweet_id") == 1


def test_author_cap_in_collection(tmp_path):
    items = [apidojo(10, "source tweet")]
    for i in range(14):
        items.append(apidojo(100 + i, f"Reply {i} from the same prolific author, long enough text.",
                             author="prolific", likes=5 + i, parent=10, at=T0 + timedelta(hours=1, minutes=i)))
    write_json(tmp_path / "f.json", items)
    res = collect_partition(QuerySpec(name="q", text="t", replay=["f.json"]), ReplaySource(tmp_path), S)
    assert len(res.pairs) == 10 and sorted(res.pairs["reply_likes"]) == list(range(9, 19))
    assert (res.rejections["reasons"] == "author_cap").sum() == 4
    assert res.funnel["rejected_by_reason"] == {"author_cap": 4}


def test_query_overrides_apply(tmp_path):
    write_json(tmp_path / "f.json", [apidojo(10, "source tweet", likes=100)])
    q = QuerySpec(name="q", text="t", replay=["f.json"], overrides={"tweet_min_likes": 50})
    res = collect_partition(q, ReplaySource(tmp_path), S)
    assert res.funnel["tweets_kept"] == 1


def test_source_returning_garbage_is_a_clear_error(tmp_path):
    class Bad:
        name = "bad"

        def search_tweets(self, query, settings):
            return {"not": "a list"}

        def fetch_replies(self, query, tweet, settings):
            return []

        def estimated_cost_usd(self):
            return 0.0

        def stats(self):
            return {}

    with pytest.raises(SourceError, match="'q'.*search_tweets"):
        collect_partition(QuerySpec(name="q", text="t"), Bad(), S)


@pytest.mark.parametrize("store_kind", ["memory", "duckdb"])
def test_resume_after_interruption(world, store_kind):
    root, q = world
    full = collect_partition(q, ReplaySource(root), S, collected_at=COLLECTED)

    store = InMemoryCheckpointStore() if store_kind == "memory" else DuckDBCheckpointStore(root / "ckpt.duckdb")
    first = FailingAfter(ReplaySource(root), n=7)
    with pytest.raises(SourceError, match="simulated outage"):
        collect_partition(q, first, S, checkpoint=store, collected_at=COLLECTED)
    assert len(first.fetched) == 7
    saved = store.load(q.name)
    assert SEARCH_KEY in saved and len(saved) == 1 + 7

    second = FailingAfter(ReplaySource(root), n=10**6)
    res = collect_partition(q, second, S, checkpoint=store, collected_at=COLLECTED)
    assert second.searches == 0                                  # the saved search is reused
    assert set(second.fetched).isdisjoint(first.fetched)         # nothing fetched twice
    assert len(second.fetched) == 18 - 7
    assert res.fetched_tweets == 11 and res.resumed_tweets == 7
    assert res.funnel["searched"] is False
    assert_contract(res)
    pd.testing.assert_frame_equal(res.pairs, full.pairs)
    assert abs(res.cost_usd - 0.11) < 1e-9

    third = FailingAfter(ReplaySource(root), n=0)                # everything cached: no source calls
    again = collect_partition(q, third, S, checkpoint=store, collected_at=COLLECTED)
    pd.testing.assert_frame_equal(again.pairs, full.pairs)
    assert again.resumed_tweets == 18 and third.searches == 0


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_duckdb_checkpoint_store(any_storage):
    from replyassets.core import db

    a = DuckDBCheckpointStore(any_storage)
    assert a.load("q1") == {} and a.keys("q1") == []  # nothing saved yet: nothing created either
    a.save("q1", SEARCH_KEY, [{"id": "1", "text": "it's \"quoted\"; DROP TABLE x; --", "emoji": "🚀"}])
    a.save("q1", "1", [{"id": "2"}])
    a.save("q1", "1", [{"id": "3"}])   # replace, not duplicate
    a.save("q2", "1", [])
    b = DuckDBCheckpointStore(any_storage)      # a second object, as after a restart
    assert b.load("q1") == {SEARCH_KEY: [{"id": "1", "text": "it's \"quoted\"; DROP TABLE x; --", "emoji": "🚀"}],
                            "1": [{"id": "3"}]}
    assert b.keys("q1") == sorted(["1", SEARCH_KEY]) and b.load("q2") == {"1": []} and b.load("nope") == {}
    if not any_storage.is_lake:
        with duckdb.connect(str(any_storage.database)) as con:  # no connection is left open: another writer can use the file
            con.execute("CREATE TABLE other(x INT)")
    with db.connect(any_storage) as con:
        assert con.execute("SELECT count(*) FROM collection_checkpoints").fetchone()[0] == 3
    b.clear("q1")
    assert a.load("q1") == {} and a.load("q2") == {"1": []}


@pytest.mark.slow
def test_checkpoints_of_partitions_saved_by_processes_at_once(any_storage):
    """Four processes save checkpoints of four queries at the same time, each save its own short
    transaction: every row arrives, none collides (rows are keyed by query and key)."""
    import os
    import subprocess
    import sys

    from replyassets.settings import PROJECT_ROOT

    code = (
        "import sys; from pathlib import Path; from replyassets.core import db\n"
        "from replyassets.core.checkpoint import SEARCH_KEY, DuckDBCheckpointStore\n"
        "backend, where, query = sys.argv[1:4]\n"
        "s = db.Storage('duckdb', database=Path(where)) if backend == 'duckdb' else db.Storage('ducklake', data_path=where, max_retries=50)\n"
        "store = DuckDBCheckpointStore(s)\n"
        "for i in range(20):\n"
        "    store.save(query, str(i), [{'id': f'{query}-{i}', 'n': i}])\n"
        "    store.save(query, SEARCH_KEY, [{'upto': i}])\n"
    )
    where = str(any_storage.database) if not any_storage.is_lake else any_storage.data_path
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, any_storage.backend, where, f"q{k}"],
                              stderr=subprocess.PIPE, text=True, env=env) for k in range(4)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    store = DuckDBCheckpointStore(any_storage)
    for k in range(4):
        got = store.load(f"q{k}")
        assert len(got) == 21 and got[SEARCH_KEY] == [{"upto": 19}]
        assert [got[str(i)][0]["id"] for i in range(20)] == [f"q{k}-{i}" for i in range(20)]


def test_sample_queries_yield_a_real_dataset():
    """The shipped sample: every query collects, and enough varied pairs survive collection."""
    sample = PROJECT_ROOT / "data" / "sample"
    qfile = PROJECT_ROOT / "config" / "queries.yaml"
    assert qfile.exists(), f"{qfile} is shipped with the sample"
    queries = load_queries(qfile)
    assert len(queries) >= 5
    src = ReplaySource(sample)
    frames = []
    for q in queries:
        res = collect_partition(q, src, S, collected_at=COLLECTED)
        assert_contract(res)
        assert len(res.pairs) > 50, q.name
        frames.append(res.pairs)
        reasons = set(res.funnel["rejected_by_reason"])
        assert {"followers_above_max", "too_early", "has_urls", "has_media", "too_short", "likes_below_min",
                "author_cap"} <= reasons, (q.name, reasons)
    pairs = pd.concat(frames)
    assert pairs["tweet_id"].nunique() >= 150
    assert pairs["reply_author"].nunique() >= 300
    assert len(pairs) >= 900


def test_replies_that_cannot_pair_are_rejected_not_dropped(tmp_path):
    """An orphan reply, a reply to a reply, a reply to a filtered tweet: a rejected row each."""
    later = T0 + timedelta(hours=1)
    text = "A considered reply with more than enough characters to pass the filters."
    items = [
        apidojo(10, "the source tweet", likes=500),
        apidojo(11, text, parent=10, at=later, author="a"),                         # a pair
        apidojo(20, "a retweeted tweet", isRetweet=True),                           # filtered out
        apidojo(21, text + " (to the filtered tweet)", parent=20, at=later, author="b"),
        apidojo(31, text + " (parent not in the export)", parent=30, at=later, author="c"),
        apidojo(41, text + " (to a reply)", parent=31, conversation="nowhere", at=later, author="d"),
        apidojo(42, text + " (to a reply, no conversation)", parent=11, at=later, author="e",
                conversationId=None),
        apidojo(51, text + " (to a reply of a filtered tweet)", parent=21, conversation=20, at=later, author="f"),
    ]
    write_json(tmp_path / "f.json", items)
    res = collect_partition(QuerySpec(name="q", text="t", replay=["f.json"]), ReplaySource(tmp_path), S,
                            collected_at=COLLECTED)
    assert_contract(res)
    assert list(res.pairs["reply_id"]) == ["11"]
    rej = {r.item_id: (r.stage, split_reasons(r.reasons), r.tweet_id) for r in res.rejections.itertuples()}
    assert rej["20"][:2] == ("tweet_filter", ["is_retweet"])
    assert rej["21"] == ("pairing", ["parent_filtered"], "20")
    assert rej["31"] == ("pairing", ["orphan_reply"], "30")
    assert rej["41"] == ("pairing", ["reply_to_reply"], "nowhere")
    assert rej["42"][:2] == ("pairing", ["reply_to_reply"]) and rej["42"][2] is pd.NA  # 11 is a reply
    assert rej["51"] == ("pairing", ["reply_to_reply", "parent_filtered"], "20")
    f = res.funnel
    assert f["unclaimed_reply_items"] == 5 and f["items_in"] == len(items) == 8
    assert f["items_in"] == len(res.pairs) + len(res.rejections) + f["tweets_paired"] and f["identity_holds"]
    assert f["rejected_by_stage"]["pairing"] == 5
    assert f["rejected_by_reason"]["reply_to_reply"] == 3


def test_pairing_reasons():
    from replyassets.core.collect import pairing_reasons

    def r(rid, parent, conv):
        return {"id": rid, "in_reply_to_id": parent, "conversation_id": conv}

    assert pairing_reasons(r("2", "1", "1"), set(), set()) == (["orphan_reply"], "1")
    assert pairing_reasons(r("2", "1", None), set(), set()) == (["orphan_reply"], "1")
    assert pairing_reasons(r("2", "1", "1"), set(), {"1"}) == (["parent_filtered"], "1")
    assert pairing_reasons(r("3", "2", "1"), {"2", "3"}, set()) == (["reply_to_reply"], "1")
    assert pairing_reasons(r("3", "2", "1"), {"2"}, {"1"}) == (["reply_to_reply", "parent_filtered"], "1")
    assert pairing_reasons(r("3", "2", None), {"2"}, set()) == (["reply_to_reply"], None)
    assert pairing_reasons(r("3", "3", None), {"3"}, {"3"}) == (["orphan_reply"], None)  # self-reference


def test_reason_counts_and_funnel_rows_match_the_funnel(tmp_path):
    from replyassets.core.collect import funnel_rows, reason_counts

    t = apidojo(10, "source tweet", likes=500)
    items = [t, apidojo(11, "retweeted tweet", isRetweet=True, likes=50),
             apidojo(12, "x" * 5, parent=10, likes=0, followers=50, at=T0 + timedelta(seconds=5)),
             apidojo(13, "A perfectly fine reply with more than thirty chars.", parent=10, at=T0 + timedelta(hours=1)),
             apidojo(14, "orphan reply that is long enough to be kept otherwise", parent=99, at=T0 + timedelta(hours=1)),
             None]
    write_json(tmp_path / "f.json", items)
    res = collect_partition(QuerySpec(name="q", text="t", replay=["f.json"]), ReplaySource(tmp_path), S)
    counts = reason_counts(res.rejections)
    assert counts == res.funnel["rejected_by_reason"]
    assert next(iter(counts.items())) == ("likes_below_min", 2)  # most frequent first, then by code
    assert list(counts) == sorted(counts, key=lambda c: (-counts[c], c))
    rows = funnel_rows(res.funnel, res.rejections)
    stages = {r["stage"]: r["count"] for r in rows}
    assert stages["items_in"] == 6 and stages["pairs_kept"] == 1 and stages["unclaimed_reply_items"] == 1
    assert "searched" not in stages and "rejected_by_reason" not in stages  # bools and dicts left out
    default = "(default in replyassets/settings.py)"
    rejected_rows = {r["stage"]: r["count"] for r in rows if r["stage"].startswith("rejected: ")}
    assert rejected_rows == {
        f"rejected: likes_below_min [tweet_filter]: collection.tweet_min_likes = 200 {default}": 1,
        f"rejected: likes_below_min [reply_filter]: collection.reply_min_likes = 5 {default}": 1,
        f"rejected: followers_below_min [reply_filter]: collection.reply_min_followers = 200 {default}": 1,
        f"rejected: too_early [reply_filter]: collection.reply_min_delay_s = 300 {default}": 1,
        f"rejected: too_short [reply_filter]: validation.min_chars = 30 {default}": 1,
        "rejected: is_retweet [tweet_filter]": 1,
        "rejected: not_an_object [normalize]": 1,
        "rejected: orphan_reply [pairing]": 1,
    }
    # per (stage, code) the rows add up to the per-code counts
    assert sum(rejected_rows.values()) == sum(counts.values())
    # without rejected_by_rule (an older funnel) the rows are per code, from the frame
    legacy_rows = funnel_rows({"items_in": 6}, res.rejections)
    assert legacy_rows[1:] == [{"stage": f"rejected: {k}", "count": v} for k, v in counts.items()]
    assert reason_counts(res.rejections.iloc[0:0]) == {}
    assert funnel_rows({"items_in": 0, "searched": True}, res.rejections.iloc[0:0]) == [{"stage": "items_in", "count": 0}]


@pytest.mark.parametrize("store_kind", ["memory", "duckdb"])
def test_a_tweet_id_never_collides_with_the_search_checkpoint(tmp_path, store_kind):
    """A tweet whose id is the search checkpoint's old key ("__search__", a valid id) gets its
    replies saved under its own key: the next collection still finds the saved search and gives
    the same pairs."""
    items = [apidojo("__search__", "Source tweet about building software", author="src0")]
    items += [apidojo(f"r{j}", reply_text(0, j), author=f"user_{j}", likes=10 + j,
                      at=T0 + timedelta(minutes=30 + j), parent="__search__") for j in range(5)]
    write_json(tmp_path / "a.json", items)
    q = QuerySpec(name="topic", text="anything", replay=["a.json"])
    store = InMemoryCheckpointStore() if store_kind == "memory" else DuckDBCheckpointStore(tmp_path / "ckpt.duckdb")
    first = collect_partition(q, ReplaySource(tmp_path), S, checkpoint=store, collected_at=COLLECTED)
    assert len(first.pairs) == 5
    again = collect_partition(q, ReplaySource(tmp_path), S, checkpoint=store, collected_at=COLLECTED)
    assert again.funnel["searched"] is False and again.resumed_tweets == 1
    pd.testing.assert_frame_equal(again.pairs, first.pairs)
    assert parse_id(SEARCH_KEY) is None      # no id can ever be the search's key


def test_a_search_checkpoint_saved_under_the_old_key_is_still_read(tmp_path):
    """Checkpoints written before the search key changed: the row keyed "__search__" (with no row
    under the current key) is the saved search; it is re-saved under the current key, so a tweet
    of that id then gets its own row."""
    items = [apidojo("__search__", "Source tweet about building software", author="src0")]
    items += [apidojo(f"r{j}", reply_text(0, j), author=f"user_{j}", likes=10 + j,
                      at=T0 + timedelta(minutes=30 + j), parent="__search__") for j in range(5)]
    write_json(tmp_path / "a.json", items)
    q = QuerySpec(name="topic", text="anything", replay=["a.json"])
    full = collect_partition(q, ReplaySource(tmp_path), S, collected_at=COLLECTED)
    store = DuckDBCheckpointStore(tmp_path / "ckpt.duckdb")
    store.save(q.name, "__search__", [items[0]])     # as the old code saved a search
    src = FailingAfter(ReplaySource(tmp_path), n=10**6)
    res = collect_partition(q, src, S, checkpoint=store, collected_at=COLLECTED)
    assert src.searches == 0 and src.fetched == ["__search__"]   # the old search is reused, the tweet fetched
    pd.testing.assert_frame_equal(res.pairs, full.pairs)
    assert store.load(q.name)[SEARCH_KEY] == [items[0]]
    again = collect_partition(q, FailingAfter(ReplaySource(tmp_path), n=0), S, checkpoint=store, collected_at=COLLECTED)
    pd.testing.assert_frame_equal(again.pairs, full.pairs)
