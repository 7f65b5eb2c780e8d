"""Issue 8, item 4 (Anthropic): the judge against a loopback Messages API that hangs, resets
connections, answers 429/5xx or malformed JSON. Bounded retries, a clear error, nothing
half-written (the verdict cache holds only complete, valid answers), and a re-run pays only
for what is missing."""

from __future__ import annotations

import json

import pytest

from replyassets.core.judging import DuckDBVerdictCache, JudgingFailed, judge_pairs
from replyassets.core.stats import compute_stats
from replyassets.judges.anthropic_judge import AnthropicJudge
from replyassets_tests.fakes.anthropic_server import FakeAnthropicServer
from replyassets_tests.reliability import tally

ITEMS = [
    {"item_id": f"i{i}", "tweet": f"tweet {i}", "base_reply": f"base {i}", "adapter_reply": f"GOOD adapter {i}"}
    for i in range(3)
]


def responder(body: dict) -> str:
    content = body["messages"][0]["content"]
    data = json.loads(content.split("<data>\n", 1)[1].rsplit("\n</data>", 1)[0])
    if "reply_a" in data:
        return json.dumps({"winner": "A" if "GOOD" in data["reply_a"] else "B", "reason": "r"})
    return json.dumps({"score": 8 if "GOOD" in data["reply"] else 4, "reason": "r"})


def judge_for(srv: FakeAnthropicServer, **kw) -> AnthropicJudge:
    kw.setdefault("max_retries", 2)
    kw.setdefault("timeout", 0.5)
    kw.setdefault("invalid_retries", 1)
    return AnthropicJudge("claude-sonnet-4-6", api_key="sk-reliability", base_url=srv.base_url, **kw)


TRANSIENT = ["429", "529", "500", "503", "reset", "hang", "malformed_json"]


@pytest.mark.parametrize("fault", TRANSIENT)
def test_transient_fault_is_survived(fault, tmp_path):
    with FakeAnthropicServer(responder=responder) as srv:
        srv.inject(fault, 1)
        cache = DuckDBVerdictCache(tmp_path / "cache.duckdb")
        df = judge_pairs(judge_for(srv), ITEMS, cache=cache, concurrency=1)
        tally.add("faults_injected", len(srv.faults_served))
        assert srv.faults_served == [fault]
        assert list(df["outcome"]) == ["win"] * 3 and df["valid"].all()
        assert cache.count() == 12
        # exactly one extra request: the retry of the failed one
        assert len(srv.message_requests) == 13


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@pytest.mark.parametrize("fault", TRANSIENT)
def test_persistent_fault_is_bounded_clear_and_nothing_half_written(fault, tmp_path):
    with FakeAnthropicServer(responder=responder, hang_seconds=5) as srv:
        srv.inject(fault, 10_000)
        cache = DuckDBVerdictCache(tmp_path / "cache.duckdb")
        judge = judge_for(srv, max_retries=1, invalid_retries=0)
        with pytest.raises(JudgingFailed, match="API errors after retries"):
            judge_pairs(judge, ITEMS[:2], cache=cache, concurrency=2)
        tally.add("faults_injected", len(srv.faults_served))
        # bounded: 2 items x 4 calls x (1 try + 1 client retry) at most (a malformed body is not retried by the client)
        assert 0 < len(srv.message_requests) <= 2 * 4 * 2
        assert cache.count() == 0
        # the API comes back: the re-run completes
        srv.clear_faults()
        df = judge_pairs(judge, ITEMS[:2], cache=cache, concurrency=2)
        assert list(df["outcome"]) == ["win", "win"] and cache.count() == 8


def test_one_bad_item_is_recorded_invalid_and_excluded(tmp_path):
    def flaky(body: dict):
        if "tweet 1" in body["messages"][0]["content"]:
            raise RuntimeError("this item always breaks the server")  # the fake answers 500, no retry
        return responder(body)

    with FakeAnthropicServer(responder=flaky) as srv:
        cache = DuckDBVerdictCache(tmp_path / "cache.duckdb")
        df = judge_pairs(judge_for(srv), ITEMS, cache=cache, concurrency=3)
        tally.add("faults_injected", 4)
        assert list(df["outcome"]) == ["win", "invalid", "win"]
        assert "api_error" in df.loc[1, "error"]
        assert cache.count() == 8  # the two good items only
        stats = compute_stats(df)
        assert stats["n_invalid"] == 1 and stats["n_valid"] == 2 and stats["wins"] == 2
        sent = len(srv.message_requests)
        srv.responder = responder
        df2 = judge_pairs(judge_for(srv), ITEMS, cache=cache, concurrency=3)
        assert list(df2["outcome"]) == ["win"] * 3
        assert len(srv.message_requests) == sent + 4  # only the missing item was paid for
