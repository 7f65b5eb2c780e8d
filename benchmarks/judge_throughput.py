"""Judging throughput: judge_pairs against the loopback Messages API (50 ms simulated latency per
call), sequential (baseline) vs bounded concurrency, and a re-run served from the DuckDB cache.

    .venv/bin/python benchmarks/judge_throughput.py [n_items] [--small]

``--small``: 8 items (the test suite's mode, replyassets_tests/test_benchmarks.py). Every mode
asserts that concurrency changes no verdict, that the cached re-run sends no request and
returns the same rows, and that each item asked the API ``calls_per_item`` times.
Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _cpu import cpu_figures, print_cpu

from replyassets.core.judging import DuckDBVerdictCache, judge_pairs
from replyassets.judges.anthropic_judge import AnthropicJudge
from replyassets_tests.fakes.anthropic_server import FakeAnthropicServer

LATENCY_S = 0.05
CALLS_PER_ITEM = 4
VERDICT = ["item_id", "verdict_ab", "verdict_ba", "outcome", "position_flip", "base_score", "adapter_score", "valid"]


def responder(body):
    time.sleep(LATENCY_S)
    text = body["messages"][0]["content"]
    return '{"winner": "A", "reason": "x"}' if "reply_a" in text else '{"score": 6, "reason": "x"}'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n_items", nargs="?", type=int, default=None, help="items to judge (default 40; --small: 8)")
    ap.add_argument("--small", action="store_true", help="8 items: the test suite's mode")
    args = ap.parse_args()
    n = args.n_items if args.n_items is not None else (8 if args.small else 40)
    cpu = cpu_figures()
    print_cpu(cpu)
    items = [{"item_id": str(i), "tweet": f"tweet {i}", "base_reply": f"b{i}", "adapter_reply": f"a{i}"} for i in range(n)]
    figures = {"benchmark": "judge_throughput", "small": args.small, "items": n, "calls_per_item": CALLS_PER_ITEM,
               "latency_s": LATENCY_S}
    with FakeAnthropicServer(responder=responder) as srv, tempfile.TemporaryDirectory() as tmp:
        judge = AnthropicJudge(api_key="bench", base_url=srv.base_url)
        results = {}
        for conc in (1, 4, 8):
            before = len(srv.message_requests)
            t = time.perf_counter()
            results[conc] = judge_pairs(judge, items, cache=None, concurrency=conc)
            figures[f"items_per_s_concurrency_{conc}"] = round(n / (time.perf_counter() - t), 2)
            assert len(srv.message_requests) - before == CALLS_PER_ITEM * n, f"concurrency {conc}: wrong request count"
            assert results[conc][VERDICT].equals(results[1][VERDICT]), f"concurrency {conc} changed the verdicts"
        cache = DuckDBVerdictCache(Path(tmp) / "c.duckdb")
        first = judge_pairs(judge, items, cache=cache, concurrency=4)
        before = len(srv.message_requests)
        t = time.perf_counter()
        cached = judge_pairs(judge, items, cache=cache, concurrency=4)
        figures["items_per_s_cached_rerun"] = round(n / (time.perf_counter() - t), 2)
        figures["requests_sent_on_cached_rerun"] = len(srv.message_requests) - before
    assert figures["requests_sent_on_cached_rerun"] == 0, "the cached re-run called the API"
    assert cached[VERDICT].equals(first[VERDICT]) and first[VERDICT].equals(results[1][VERDICT]), \
        "the cache changed the verdicts"
    assert cached["valid"].all() and int(cached["api_calls"].sum()) == 0, "the cached re-run is not all cache hits"
    base = figures["items_per_s_concurrency_1"]
    print(f"{'mode':<28}{'items/s':>10}{'vs sequential':>16}")
    for key in ("items_per_s_concurrency_1", "items_per_s_concurrency_4", "items_per_s_concurrency_8", "items_per_s_cached_rerun"):
        print(f"{key:<28}{figures[key]:>10}{figures[key] / base:>15.1f}x")
    figures["cpu"] = cpu
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
