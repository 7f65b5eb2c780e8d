"""Judging throughput: judge_pairs against the loopback Messages API (50 ms simulated latency per
call), sequential (baseline) vs bounded concurrency, and a re-run served from the DuckDB cache.

    .venv/bin/python benchmarks/judge_throughput.py [n_items]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from replyassets.core.judging import DuckDBVerdictCache, judge_pairs
from replyassets.judges.anthropic_judge import AnthropicJudge
from replyassets_tests.fakes.anthropic_server import FakeAnthropicServer

LATENCY_S = 0.05


def responder(body):
    time.sleep(LATENCY_S)
    text = body["messages"][0]["content"]
    return '{"winner": "A", "reason": "x"}' if "reply_a" in text else '{"score": 6, "reason": "x"}'


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    items = [{"item_id": str(i), "tweet": f"tweet {i}", "base_reply": f"b{i}", "adapter_reply": f"a{i}"} for i in range(n)]
    figures = {"items": n, "calls_per_item": 4, "latency_s": LATENCY_S}
    with FakeAnthropicServer(responder=responder) as srv, tempfile.TemporaryDirectory() as tmp:
        judge = AnthropicJudge(api_key="bench", base_url=srv.base_url)
        for conc in (1, 4, 8):
            t = time.perf_counter()
            judge_pairs(judge, items, cache=None, concurrency=conc)
            figures[f"items_per_s_concurrency_{conc}"] = round(n / (time.perf_counter() - t), 2)
        cache = DuckDBVerdictCache(Path(tmp) / "c.duckdb")
        judge_pairs(judge, items, cache=cache, concurrency=4)
        before = len(srv.message_requests)
        t = time.perf_counter()
        judge_pairs(judge, items, cache=cache, concurrency=4)
        figures["items_per_s_cached_rerun"] = round(n / (time.perf_counter() - t), 2)
        figures["requests_sent_on_cached_rerun"] = len(srv.message_requests) - before
    base = figures["items_per_s_concurrency_1"]
    print(f"{'mode':<28}{'items/s':>10}{'vs sequential':>16}")
    for key in ("items_per_s_concurrency_1", "items_per_s_concurrency_4", "items_per_s_concurrency_8", "items_per_s_cached_rerun"):
        print(f"{key:<28}{figures[key]:>10}{figures[key] / base:>15.1f}x")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
