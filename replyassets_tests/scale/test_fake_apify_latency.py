"""The loopback Apify server's actor-run latency: a run stays RUNNING for ``run_latency_s`` of
wall-clock time and ``waitForFinish`` holds the request until it ends, so ApifySource waits for
it with a handful of requests (no busy polling) and gets the same items as without latency."""

from __future__ import annotations

import time

from replyassets.settings import CollectionSettings, QuerySpec
from replyassets.sources.apify import ApifySource
from replyassets_tests.fakes import FakeApifyServer

TWEET = {"type": "tweet", "id": "1974000000000000001", "text": "hello", "conversationId": "1974000000000000001"}


def _source(api: FakeApifyServer, **kw) -> ApifySource:
    return ApifySource(api.token, api_url=api.url, backoff_s=0, **kw)


def test_runs_take_the_configured_latency_and_the_client_waits_server_side():
    with FakeApifyServer(run_latency_s=1.0) as api:
        api.add_search("ai agents", [TWEET])
        t0 = time.monotonic()
        items = _source(api).search_tweets(QuerySpec(name="q", text="ai agents"), CollectionSettings())
        took = time.monotonic() - t0
        assert [i["id"] for i in items] == [TWEET["id"]]
        assert took >= 1.0
        (run,) = api.runs.values()
        assert run.status == "SUCCEEDED" and run.polls <= 3  # waitForFinish held the request
        assert len(api.requests_for("wait")) <= 3


def test_latency_can_change_between_runs_and_defaults_to_none():
    with FakeApifyServer() as api:
        assert api.run_latency_s == 0
        api.add_search("ai agents", [TWEET])
        src = _source(api)
        src.search_tweets(QuerySpec(name="q", text="ai agents"), CollectionSettings())
        assert next(iter(api.runs.values())).polls <= 1
        api.run_latency_s = 0.5
        t0 = time.monotonic()
        src.search_tweets(QuerySpec(name="q2", text="ai agents"), CollectionSettings())
        assert time.monotonic() - t0 >= 0.5


def test_a_short_wait_for_finish_answers_running_then_the_next_poll_finishes():
    with FakeApifyServer(run_latency_s=0.6) as api:
        api.add_search("ai agents", [TWEET])
        src = _source(api, wait_poll_s=0.2)  # waitForFinish shorter than the latency
        items = src.search_tweets(QuerySpec(name="q", text="ai agents"), CollectionSettings())
        assert len(items) == 1
        (run,) = api.runs.values()
        assert run.polls >= 2  # at least one answer said RUNNING


def test_a_gate_holds_runs_until_it_opens():
    import threading

    opened = threading.Event()
    with FakeApifyServer(run_gate=lambda run: opened.is_set()) as api:
        api.add_search("ai agents", [TWEET])
        threading.Timer(0.8, opened.set).start()
        t0 = time.monotonic()
        items = _source(api, wait_poll_s=0.3).search_tweets(QuerySpec(name="q", text="ai agents"), CollectionSettings())
        assert len(items) == 1 and time.monotonic() - t0 >= 0.8
