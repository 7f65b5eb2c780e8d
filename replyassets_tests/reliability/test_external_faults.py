"""External faults at the Dagster level: a raw_tweets partition collected from the production
source (the real apify-client) against a loopback Apify API that misbehaves.

Expected: bounded retries, a run failure that names the query, and nothing half-written: the
partition's previous rows in DuckDB stay exactly as they were.
"""

from __future__ import annotations

import pytest

from replyassets_tests.fakes import FakeApifyServer, Fault
from replyassets_tests.reliability import tally
from replyassets_tests.reliability.hostile import make_dataset
from replyassets_tests.reliability.project import (
    COLLECT,
    apify_resources,
    failure_messages,
    materialize,
    use_queries,
)
from replyassets_tests.reliability.storage_io import (
    content_equal,
    integrity_ok,
    read_table,
)

TOKEN = "apify_api_SENTINEL_faults_5d1e"
QUERY = "ai-agents"
OTHER = "devops"
TIMESTAMPS = ("collected_at",)


def _seed(api: FakeApifyServer, items: list[dict], text: str) -> None:
    tweets = [i for i in items if not i["isReply"]]
    api.add_search(text, tweets)
    for t in tweets:
        api.add_replies(t["id"], [i for i in items if i["isReply"] and i["conversationId"] == t["id"]])


@pytest.fixture
def apify_project(dagster_project, monkeypatch):
    items = make_dataset(4, 5, seed=1)
    other = make_dataset(3, 4, seed=2, prefix="9")
    use_queries(dagster_project, monkeypatch, {QUERY: items, OTHER: other})
    with FakeApifyServer(token=TOKEN) as api:
        _seed(api, items, "ai agents")
        _seed(api, other, "devops")
        dagster_project.api = api
        yield dagster_project


def _rows(project, table: str, partition: str):
    return read_table(project.database, table, "WHERE query = ?", [partition])


# A finished partition's fetched items stay in the collection checkpoint (nothing is paid for
# twice); ``refresh`` makes the run fetch everything from the (faulty) API again.
REFRESH = {"ops": {"raw_tweets": {"config": {"refresh": True}}}}


def _good_run(project, partition: str, refresh: bool = False):
    res = materialize(project, apify_resources(project, project.api.url, TOKEN), COLLECT, partition,
                      run_config=REFRESH if refresh else None)
    assert res.success, failure_messages(res)
    return _rows(project, "raw_tweets", partition), _rows(project, "raw_tweet_rejections", partition)


# (route, fault, times): more faults than the retries allow, so the step gives up
GIVING_UP = {
    "429-forever": ("start", Fault.status(429), 99),
    "503-items": ("items", Fault.status(503), 99),
    "reset": ("*", Fault.reset(), 99),
    "malformed-json": ("start", Fault.malformed(), 99),
    "hang-then-drop": ("wait", Fault.hang(0.3), 99),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GIVING_UP))
def test_fault_that_outlasts_retries_fails_clearly_and_keeps_previous_rows(apify_project, name):
    p = apify_project
    before_pairs, before_rej = _good_run(p, QUERY)
    assert len(before_pairs) >= 10
    other_before = _good_run(p, OTHER)[0]
    n_before = len(p.api.requests)

    route, fault, times = GIVING_UP[name]
    p.api.inject(route, fault, times=times)
    res = materialize(p, apify_resources(p, p.api.url, TOKEN, max_retries=2), COLLECT, QUERY,
                      run_config=REFRESH)
    served = p.api.faults_served
    tally.add("faults_injected", served)
    assert not res.success
    msgs = failure_messages(res)
    assert any(QUERY in m for m in msgs), msgs            # names the query
    assert any("collection of query" in m for m in msgs), msgs
    assert all(TOKEN not in m for m in msgs)
    # bounded: (1 + max_retries) attempts per call, times (1 + the asset's RetryPolicy) step attempts
    sent = len(p.api.requests) - n_before
    assert 0 < sent <= 2 * 3 * 3, sent
    # nothing half-written: this partition's rows and the other partition's rows are as before
    integrity_ok(p.database)
    after_pairs = _rows(p, "raw_tweets", QUERY)
    after_rej = _rows(p, "raw_tweet_rejections", QUERY)
    lost = len(before_pairs) - len(after_pairs)
    tally.add("rows_lost", max(lost, 0))
    assert content_equal(before_pairs, after_pairs, ["reply_id"])
    assert content_equal(before_rej, after_rej, ["stage", "item_kind"])
    assert (after_pairs["collected_at"] == before_pairs["collected_at"].iloc[0]).all(), "rows were rewritten"
    assert content_equal(other_before, _rows(p, "raw_tweets", OTHER), ["reply_id"])


@pytest.mark.slow
def test_transient_faults_are_retried_and_the_result_is_the_same(apify_project):
    p = apify_project
    before_pairs, before_rej = _good_run(p, QUERY)
    p.api.inject("start", Fault.status(429), times=2)
    p.api.inject("items", Fault.status(502), times=1)
    p.api.inject("wait", Fault.reset(), times=1)
    p.api.inject("items", Fault.malformed(), times=1)
    p.api.fail_runs(1, status="FAILED")
    after_pairs, after_rej = _good_run(p, QUERY, refresh=True)
    tally.add("faults_injected", p.api.faults_served + 1)
    assert p.api.faults_served >= 5
    dup = int(after_pairs["reply_id"].duplicated().sum())
    tally.add("rows_duplicated", dup)
    assert dup == 0
    assert content_equal(before_pairs, after_pairs, ["reply_id"], ignore=TIMESTAMPS)
    assert content_equal(before_rej, after_rej, ["stage", "item_kind"], ignore=TIMESTAMPS)


@pytest.mark.slow
def test_bad_token_fails_at_once_without_retries(apify_project):
    p = apify_project
    res = materialize(p, apify_resources(p, p.api.url, "wrong-token", max_retries=3), COLLECT, QUERY)
    tally.add("faults_injected")
    assert not res.success
    msgs = failure_messages(res)
    assert any(QUERY in m for m in msgs), msgs
    assert len(p.api.requests) <= 2  # one refused call per step attempt, no retry loop
    assert "wrong-token" not in " ".join(msgs)
