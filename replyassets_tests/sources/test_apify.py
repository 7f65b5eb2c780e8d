"""ApifySource with the real apify-client against the loopback Apify API (no network, no mocks).

Every test runs the real ``apify_client.ApifyClient`` (impit transport) against
``FakeApifyServer``; backoff sleeps are recorded instead of slept, so faults cost no time.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from replyassets.core.checkpoint import SEARCH_KEY, InMemoryCheckpointStore
from replyassets.core.collect import collect_partition
from replyassets.settings import CollectionSettings, QuerySpec
from replyassets.sources.apify import DEFAULT_ACTOR_ID, ApifySource, build_search_term
from replyassets.sources.base import SourceError, TweetSource
from replyassets_tests.fakes import FakeApifyServer, Fault

SENTINEL = "apify_api_SENTINEL_7f3c9d2e1b"  # must never appear in any message, log or stat
QUERY = QuerySpec(name="ai-agents", text="ai agents")
T0 = datetime(2025, 10, 2, 7, 11, 55, tzinfo=UTC)
TWEET_IDS = ["1974000000000000001", "1974000000000000002", "1974000000000000003"]


def _twitter_date(dt: datetime) -> str:
    return dt.strftime("%a %b %d %H:%M:%S +0000 %Y")


def tweet_item(tid: str, **over) -> dict:
    """An apidojo tweet-scraper item that passes the default tweet filters."""
    item = {
        "type": "tweet",
        "id": tid,
        "text": f"What is the hardest part of shipping AI agents to production? ({tid[-3:]})",
        "fullText": f"What is the hardest part of shipping AI agents to production? ({tid[-3:]})",
        "createdAt": _twitter_date(T0),
        "likeCount": 640,
        "retweetCount": 55,
        "replyCount": 90,
        "quoteCount": 3,
        "lang": "en",
        "isReply": False,
        "isRetweet": False,
        "isQuote": False,
        "conversationId": tid,
        "entities": {"urls": [], "hashtags": []},
        "author": {"userName": f"builder{tid[-1]}", "followers": 12000},
    }
    item.update(over)
    return item


def reply_item(tid: str, n: int, **over) -> dict:
    """An apidojo reply to ``tid`` that passes the default reply filters."""
    rid = f"{tid[:-6]}{tid[-1]}{n:05d}"
    text = f"Evaluation harnesses that replay real traffic caught most of our regressions, case {n}."
    item = {
        "type": "tweet",
        "id": rid,
        "text": text,
        "fullText": text,
        "createdAt": _twitter_date(T0 + timedelta(hours=1, minutes=n)),
        "likeCount": 12 + n,
        "retweetCount": 1,
        "lang": "en",
        "isReply": True,
        "isRetweet": False,
        "isQuote": False,
        "conversationId": tid,
        "inReplyToId": tid,
        "entities": {"urls": []},
        "author": {"userName": f"dev_{tid[-1]}_{n}", "followers": 900 + n},
    }
    if "text" in over:
        over.setdefault("fullText", over["text"])
    item.update(over)
    return item


@pytest.fixture
def api():
    with FakeApifyServer(token=SENTINEL) as server:
        yield server


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_source(api, sleeps):
    def make(**kw) -> ApifySource:
        kw.setdefault("api_url", api.url)
        kw.setdefault("max_retries", 3)
        kw.setdefault("backoff_s", 0.5)
        kw.setdefault("request_timeout_s", 5.0)  # generous: the machine may be busy
        kw.setdefault("wait_poll_s", 0.0)
        kw.setdefault("sleep", sleeps.append)
        return ApifySource(SENTINEL, **kw)

    return make


def seed_partition(api: FakeApifyServer, replies_per_tweet: int = 4) -> None:
    api.add_search(QUERY.text, [tweet_item(t) for t in TWEET_IDS])
    for tid in TWEET_IDS:
        good = [reply_item(tid, n) for n in range(replies_per_tweet)]
        with_url = reply_item(tid, 90, text="Read this https://spam.example/x for the answer you need")
        api.add_replies(tid, [*good, with_url])


# ----------------------------------------------------------------------------- happy path


def test_full_partition_through_collect_partition(api, make_source):
    seed_partition(api)
    source = make_source()
    assert isinstance(source, TweetSource)
    settings = CollectionSettings()

    result = collect_partition(QUERY, source, settings)

    pairs = result.pairs
    assert len(pairs) == 12
    assert set(pairs["tweet_id"]) == set(TWEET_IDS)
    assert set(pairs["query"]) == {"ai-agents"} and set(pairs["source"]) == {"apify"}
    assert (pairs["reply_time_diff_seconds"] >= 3600).all()
    # the URL replies are rejected with their reason, not dropped silently
    rej = result.rejections
    assert len(rej) == 3 and set(rej["reasons"]) == {"has_urls"}
    assert result.fetched_tweets == 3

    # one search run + one reply run per tweet, all with the bearer token
    assert len(api.runs) == 4
    assert all(r.authorized for r in api.requests)
    assert {r.actor for r in api.runs.values()} == {DEFAULT_ACTOR_ID}
    search_input, *reply_inputs = api.run_inputs()
    term = search_input["searchTerms"][0]
    for op in ("min_faves:200", "min_retweets:10", "-filter:retweets", "-filter:quote", "lang:en"):
        assert op in term
    assert term.startswith("ai agents ")
    assert search_input["maxItems"] == settings.max_tweets_per_query
    assert search_input["tweetLanguage"] == "en" and search_input["minimumFavorites"] == 200
    assert sorted(i["searchTerms"][0] for i in reply_inputs) == sorted(f"conversation_id:{t}" for t in TWEET_IDS)
    assert all(i["maxItems"] == settings.max_replies_per_tweet for i in reply_inputs)
    # the platform-level cap and run timeout travel as run options too
    first_run = next(iter(api.runs.values()))
    assert first_run.params["maxItems"] == str(settings.max_tweets_per_query)
    assert first_run.params["timeout"] == "600"

    items = 3 + 3 * 5
    stats = source.stats()
    assert stats["actor_runs"] == 4 and stats["items_fetched"] == items and stats["retries"] == 0
    assert result.cost_usd == pytest.approx(items * 0.25 / 1000)
    assert result.funnel["cost_usd"] == pytest.approx(items * 0.25 / 1000)


def test_run_that_keeps_running_is_polled_until_it_finishes(api, make_source):
    api.running_polls = 3
    seed_partition(api)
    items = make_source().search_tweets(QUERY, CollectionSettings())
    assert len(items) == 3
    waits = api.requests_for("wait")
    assert len(waits) >= 3 and all("waitForFinish" in r.query for r in waits)


def test_reply_actor_can_differ(api, make_source):
    seed_partition(api)
    source = make_source(actor_id="someone/search-actor", reply_actor_id="someone/reply-actor")
    collect_partition(QUERY, source, CollectionSettings())
    actors = [r.actor for r in api.runs.values()]
    assert actors[0] == "someone/search-actor"
    assert set(actors[1:]) == {"someone/reply-actor"}


# ----------------------------------------------------------------------------- retries


def test_429_then_success(api, make_source, sleeps):
    seed_partition(api)
    api.inject("start", Fault.status(429), times=2)
    source = make_source()
    items = source.search_tweets(QUERY, CollectionSettings())
    assert [i["id"] for i in items] == TWEET_IDS
    assert sleeps == [0.5, 1.0]  # exponential backoff: backoff_s * 2**k
    assert len(api.requests_for("start")) == 3 and len(api.runs) == 1
    assert source.stats()["retries"] == 2


def test_5xx_until_retries_give_up_nothing_half_written(api, make_source, sleeps):
    seed_partition(api)
    # the search and the first reply fetch work (2 dataset pages each: the client reads until
    # an empty page), then every dataset read fails with 503
    api.inject("items", Fault.passthrough(), times=4)
    api.inject("items", Fault.status(503), times=100)
    checkpoint = InMemoryCheckpointStore()
    source = make_source(max_retries=3)

    with pytest.raises(SourceError) as err:
        collect_partition(QUERY, source, CollectionSettings(), checkpoint=checkpoint)

    msg = str(err.value)
    assert "'ai-agents'" in msg and "4 attempt(s)" in msg and "HTTP 503" in msg
    assert f"conversation {TWEET_IDS[1]}" in msg
    assert sleeps == [0.5, 1.0, 2.0]
    # bounded: 1 + 3 retries of the failing read, and the run was not restarted (it had SUCCEEDED)
    assert api.faults_served == 4 and len(api.runs) == 3
    # no result was returned; only completed source calls are in the checkpoint, for resume
    saved = checkpoint.load(QUERY.name)
    assert set(saved) == {SEARCH_KEY, TWEET_IDS[0]}

    # the resumed run skips what was fetched and completes once the API recovers
    api.clear_faults()
    result = collect_partition(QUERY, make_source(), CollectionSettings(), checkpoint=checkpoint)
    assert result.resumed_tweets == 1 and result.fetched_tweets == 2
    assert len(result.pairs) == 12 and result.pairs["reply_id"].is_unique


@pytest.mark.parametrize("route", ["start", "wait", "items"])
def test_hanging_response_is_retried(api, make_source, route):
    seed_partition(api)
    api.inject(route, Fault.hang(10.0))  # released at once when the server stops
    source = make_source(request_timeout_s=1.0)
    items = source.search_tweets(QUERY, CollectionSettings())
    assert [i["id"] for i in items] == TWEET_IDS
    assert source.stats()["failed_requests"] == 1
    # a hang while waiting or reading re-waits / re-reads the same run: no second paid run
    assert len(api.runs) == 1
    assert len(api.requests_for("start")) == (2 if route == "start" else 1)


@pytest.mark.parametrize("route", ["start", "wait", "items"])
def test_connection_reset_is_retried(api, make_source, route):
    seed_partition(api)
    api.inject(route, Fault.reset())
    source = make_source()
    items = source.search_tweets(QUERY, CollectionSettings())
    assert [i["id"] for i in items] == TWEET_IDS  # complete, no duplicates
    assert source.stats()["failed_requests"] == 1


def test_dataset_read_resumes_at_its_offset_after_a_reset(api, make_source):
    api.add_search(QUERY.text, [tweet_item(f"19740000000000{i:05d}") for i in range(30)])
    settings = CollectionSettings(max_tweets_per_query=30)
    source = make_source(page_size=10)  # dataset pages of 10 items
    api.inject("items", Fault.passthrough())
    api.inject("items", Fault.reset())
    items = source.search_tweets(QUERY, settings)
    assert len(items) == 30 and len({i["id"] for i in items}) == 30
    offsets = [r.query.get("offset") for r in api.requests_for("items")]
    assert offsets == ["0", "10", "10", "20"]  # the reset page is re-read, earlier pages are not


def test_malformed_json_body_retried_then_given_up(api, make_source):
    seed_partition(api)
    api.inject("start", Fault.malformed())
    api.inject("items", Fault.malformed('[{"id": "1", "text": '))
    items = make_source().search_tweets(QUERY, CollectionSettings())
    assert len(items) == 3

    api.inject("wait", Fault.malformed(), times=10)
    with pytest.raises(SourceError) as err:
        make_source(max_retries=2).search_tweets(QUERY, CollectionSettings())
    assert "could not be parsed" in str(err.value) and "'ai-agents'" in str(err.value)


@pytest.mark.parametrize("status", ["FAILED", "ABORTED", "TIMED-OUT"])
def test_failed_actor_run_is_retried_with_a_new_run(api, make_source, status):
    seed_partition(api)
    api.fail_runs(1, status=status)
    source = make_source()
    items = source.search_tweets(QUERY, CollectionSettings())
    assert len(items) == 3
    assert len(api.runs) == 2 and source.stats()["failed_runs"] == 1


def test_failed_actor_runs_give_up_with_a_clear_error(api, make_source, sleeps):
    seed_partition(api)
    api.fail_runs(10, status="FAILED")
    source = make_source(max_retries=2)
    with pytest.raises(SourceError) as err:
        source.search_tweets(QUERY, CollectionSettings())
    assert str(err.value) == (
        f"query 'ai-agents': Apify tweet search with actor '{DEFAULT_ACTOR_ID}' failed after 3 attempt(s); "
        "last failure: actor run ended FAILED"
    )
    assert len(api.runs) == 3 and sleeps == [0.5, 1.0]


def test_bad_token_fails_at_once_without_retries(api, sleeps):
    seed_partition(api)
    source = ApifySource("not-the-token", api_url=api.url, sleep=sleeps.append, request_timeout_s=1)
    with pytest.raises(SourceError) as err:
        source.search_tweets(QUERY, CollectionSettings())
    assert "HTTP 401" in str(err.value) and "APIFY_API_TOKEN" in str(err.value)
    assert len(api.requests) == 1 and sleeps == [] and not api.runs


# ----------------------------------------------------------------------------- items


def test_malformed_items_become_rejections_with_reasons(api, make_source):
    good = tweet_item(TWEET_IDS[0])
    bad = [
        "not an object",
        42,
        {"text": "no id at all", "createdAt": _twitter_date(T0), "likeCount": 300, "retweetCount": 20},
        tweet_item("1974000000000000101", createdAt="yesterday-ish"),
        tweet_item("1974000000000000102", likeCount="lots"),
        tweet_item("1974000000000000103", likeCount=5),  # valid item, filtered out
    ]
    api.add_search(QUERY.text, [good, *bad])
    api.add_replies(TWEET_IDS[0], [reply_item(TWEET_IDS[0], 1), {"id": "19740000000009999"}, None])

    result = collect_partition(QUERY, make_source(), CollectionSettings())

    assert len(result.pairs) == 1
    rej = result.rejections
    reasons = " ".join(rej["reasons"])
    for code in ("not_an_object", "missing_id", "bad_created_at", "bad_like_count", "likes_below_min"):
        assert code in reasons
    assert len(rej) == len(bad) + 2 and (rej["reasons"] != "").all()
    assert set(rej[rej["item_kind"] == "reply"]["tweet_id"]) == {TWEET_IDS[0]}


def test_item_caps_bound_what_a_partition_can_spend(make_sources_overshooting):
    api, source = make_sources_overshooting
    settings = CollectionSettings(max_tweets_per_query=5, max_replies_per_tweet=4, max_items_per_partition=11)

    tweets = source.search_tweets(QUERY, settings)
    assert len(tweets) == 5  # the actor pushed 40, we read 5
    run = next(iter(api.runs.values()))
    assert run.run_input["maxItems"] == 5 and run.params["maxItems"] == "5"
    assert api.items_served() == 5

    replies_a = source.fetch_replies(QUERY, {"id": TWEET_IDS[0], "conversation_id": TWEET_IDS[0]}, settings)
    replies_b = source.fetch_replies(QUERY, {"id": TWEET_IDS[1], "conversation_id": TWEET_IDS[1]}, settings)
    assert len(replies_a) == 4
    assert len(replies_b) == 2  # the partition budget (11) leaves 2
    assert api.run_inputs()[-1]["maxItems"] == 2
    runs_before = len(api.runs)
    assert source.fetch_replies(QUERY, {"id": TWEET_IDS[2], "conversation_id": TWEET_IDS[2]}, settings) == []
    assert len(api.runs) == runs_before  # budget spent: no run started at all
    stats = source.stats()
    assert stats["items_fetched"] == 11 and stats["items_by_query"] == {"ai-agents": 11}
    assert stats["budget_exhausted_queries"] == ["ai-agents"]
    # a different query has its own budget
    other = QuerySpec(name="other", text="ai agents")
    assert len(source.search_tweets(other, settings)) == 5


@pytest.fixture
def make_sources_overshooting(make_source):
    with FakeApifyServer(token=SENTINEL, honor_max_items=False) as api:
        api.add_search(QUERY.text, [tweet_item(f"19740000000000{i:05d}") for i in range(40)])
        for tid in TWEET_IDS:
            api.add_replies(tid, [reply_item(tid, n) for n in range(20)])
        yield api, make_source(api_url=api.url)


def test_cost_estimate_follows_items_read(api, make_source):
    seed_partition(api)
    source = make_source(price_per_1000_items=0.40)
    assert source.estimated_cost_usd() == 0.0
    source.search_tweets(QUERY, CollectionSettings())
    source.fetch_replies(QUERY, {"id": TWEET_IDS[0], "conversation_id": TWEET_IDS[0]}, CollectionSettings())
    assert source.estimated_cost_usd() == pytest.approx((3 + 5) * 0.40 / 1000)
    assert source.stats()["estimated_cost_usd"] == pytest.approx(0.0032)


def test_fetch_replies_needs_a_numeric_conversation_id(make_source):
    with pytest.raises(SourceError, match="conversation id"):
        make_source().fetch_replies(QUERY, {"id": "x OR y", "conversation_id": None}, CollectionSettings())


def test_search_term_keeps_user_operators():
    s = CollectionSettings()
    assert build_search_term("ai agents", s) == (
        "ai agents min_faves:200 min_retweets:10 -filter:retweets -filter:quote lang:en"
    )
    assert build_search_term("(rust OR go) lang:de min_faves:50", s) == (
        "(rust OR go) lang:de min_faves:50 min_retweets:10 -filter:retweets -filter:quote"
    )


# ----------------------------------------------------------------------------- secrets


def test_token_never_appears_in_errors_logs_repr_or_stats(api, make_source, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # includes apify_client's own debug logging
    seed_partition(api)
    # a hostile server that echoes the token back in its error messages
    echo = json.dumps({"error": {"type": "internal-error", "message": f"boom for Bearer {SENTINEL}"}})
    api.inject("start", Fault.status(500, body=echo), times=2)
    api.inject("items", Fault.reset())
    api.inject("wait", Fault.malformed(f'{{"token": "{SENTINEL}"'))
    source = make_source(max_retries=4)
    collect_partition(QUERY, source, CollectionSettings())

    messages = []
    api.inject("start", Fault.status(502, body=echo), times=20)
    with pytest.raises(SourceError) as err:
        make_source(max_retries=1).search_tweets(QUERY, CollectionSettings())
    messages.append(str(err.value))
    assert "<redacted>" in str(err.value)
    with pytest.raises(SourceError) as err2:
        ApifySource(SENTINEL, api_url="http://127.0.0.1:9", max_retries=0, request_timeout_s=0.5).check_connection()
    messages.append(str(err2.value))
    assert "connection check failed" in str(err2.value)

    out = capsys.readouterr()
    haystack = "\n".join(
        [
            *messages,
            repr(err.value),
            repr(err.value.__cause__),
            caplog.text,
            *(r.getMessage() for r in caplog.records),
            out.out,
            out.err,
            repr(source),
            str(source.stats()),
            json.dumps(source.stats()),
        ]
    )
    assert caplog.records, "expected retry warnings to be logged"
    assert SENTINEL not in haystack
    assert "Bearer" not in repr(source)


def test_from_env(monkeypatch, api):
    monkeypatch.delenv("APIFY_API_TOKEN", raising=False)
    with pytest.raises(SourceError, match="APIFY_API_TOKEN is not set"):
        ApifySource.from_env()
    monkeypatch.setenv("APIFY_API_TOKEN", SENTINEL)
    source = ApifySource.from_env(api_url=api.url, request_timeout_s=2)
    assert source.check_connection() == "fake-user"
    assert SENTINEL not in repr(source)
    assert api.requests[-1].authorized


def test_constructor_validates_its_arguments():
    with pytest.raises(ValueError, match="token"):
        ApifySource("")
    with pytest.raises(ValueError, match="actor id"):
        ApifySource("t", actor_id="")
    with pytest.raises(ValueError):
        ApifySource("t", max_retries=-1)
