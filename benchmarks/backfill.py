#!/usr/bin/env python
"""A collection backfill through a real Dagster instance: run concurrency 1 vs 4 (target: >= 3x).

N production ``raw_tweets`` partitions (the ``production`` profile's Apify source,
replyassets/sources/apify.py) collect from the loopback Apify server
(replyassets_tests/fakes/apify_server.py), whose actor runs each take ``--latency`` seconds, as
real ones take minutes. Each query has ``--tweets`` tweets, so a partition waits for
1 + tweets actor runs one after another (the search, then the replies of each tweet).

Each case is a fresh project: a temporary DAGSTER_HOME holding the repository's dagster.yaml
(its run queue, tag limits and pools) with ``concurrency.runs.max_concurrent_runs`` set to the
case's value, a fresh DuckDB file, `dg dev` (webserver + daemon, what `make ui` runs), and one
backfill over every partition sent with the UI's ``launchPartitionBackfill`` mutation. Measured
from the instance's run and event storage (replyassets_tests/scale/harness.py):

* wall time: from the backfill's submission to the end of its last run;
* runs and raw_tweets steps at once (the most intervals open at one instant);
* lock errors: lines naming a lock conflict in any run's event log, the captured output of
  every step, and the server's log (must be 0);
* the rows: raw_tweets and raw_tweet_rejections of both cases compared (all columns but
  ``collected_at``): they must be identical; and what Apify was asked: every search and every
  conversation exactly once.

Usage: python benchmarks/backfill.py [--partitions 8] [--latency 5] [--tweets 23] [--concurrency 4] [--small]

``--small`` (the test suite's mode, replyassets_tests/test_benchmarks.py): still two real `dg dev`
instances and two real backfills, with 2 partitions, 2 tweets x 2 replies, 0.2 s actor runs and
run concurrency 2. It checks correctness only (every run succeeds, rows identical, no lock
error, no Apify request repeated), never the speed-up; the full mode also requires the
speed-up target (exit status 1 otherwise).
Ends with one JSON line holding all figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml
from _cpu import cpu_figures, print_cpu

from replyassets_tests.fakes import FakeApifyServer
from replyassets_tests.scale import harness as h

SHIPPED = ROOT / "dagster.yaml"


def run_case(workdir: Path, dataset, concurrency: int, latency: float, timeout: float) -> dict:
    shipped = SHIPPED.read_text()
    shipped_runs = (yaml.safe_load(shipped).get("concurrency") or {}).get("runs", {}).get("max_concurrent_runs")
    text = shipped if shipped_runs == concurrency else h.dagster_yaml_with_runs(shipped, concurrency)
    with FakeApifyServer(token=h.APIFY_TOKEN, run_latency_s=latency) as api:
        h.load_dataset(api, dataset)
        project = h.build_project(workdir / f"runs{concurrency}", text, dataset, api.url,
                                  extra_env={"REPLYASSETS_STORAGE_BACKEND": "duckdb"})
        t_start = time.monotonic()
        with h.run_dagster_dev(project) as server:
            loaded_s = time.monotonic() - t_start
            submitted = time.time()
            backfill_id = h.launch_backfill(server, tag=f"benchmark-backfill-{concurrency}")
            backfill = h.wait_backfill(server, backfill_id, timeout)
            seen_done = time.time()
            report = h.collect_report(project, backfill_id, server)
        asked = Counter(h.run_query(r) for r in api.runs.values())
        items_served = api.items_served()
    ends = [v["end"] for v in report.runs.values() if v["end"]]
    starts = [v["start"] for v in report.runs.values() if v["start"]]
    runs = sorted(report.runs.values(), key=lambda v: v["start"] or 0)
    print(f"-- run concurrency {concurrency}: backfill {backfill['status']}, {len(report.runs)} runs, "
          f"`dg dev` up in {loaded_s:.0f} s")
    print(f"   {'partition':<10}{'run start s':>12}{'run end s':>10}{'step start s':>13}{'step end s':>11}")
    steps = {s.key: s for s in report.steps}
    for v in runs:
        s = steps.get(v["partition"])
        print(f"   {v['partition']:<10}{(v['start'] or 0) - submitted:>12.1f}{(v['end'] or 0) - submitted:>10.1f}"
              f"{(s.start - submitted) if s else float('nan'):>13.1f}{(s.end - submitted) if s else float('nan'):>11.1f}")
    for line in report.lock_errors[:10]:
        print(f"   LOCK ERROR {line}")
    for line in report.failures[:10]:
        print(f"   FAILED {line[:500]}")
    return {
        "concurrency": concurrency,
        "status": backfill["status"],
        "wall_s": round(max(ends) - submitted, 1) if ends else None,
        "backfill_done_seen_s": round(seen_done - submitted, 1),
        "first_run_start_s": round(min(starts) - submitted, 1) if starts else None,
        "runs": len(report.runs),
        "runs_succeeded": sum(v["status"] == "SUCCESS" for v in report.runs.values()),
        "max_runs_at_once": h.max_overlap(report.run_intervals),
        "max_collect_steps_at_once": h.max_overlap(report.steps),
        "mean_step_s": round(sum(s.end - s.start for s in report.steps) / max(len(report.steps), 1), 1),
        "lock_errors": len(report.lock_errors),
        "apify_actor_runs": sum(asked.values()),
        "apify_requests_repeated": sum(n - 1 for n in asked.values()),
        "apify_items_served": items_served,
        "_pairs": h.read_rows(project, "raw_tweets"),
        "_rejections": h.read_rows(project, "raw_tweet_rejections"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--partitions", type=int, default=None, help="default 8 (--small: 2)")
    ap.add_argument("--latency", type=float, default=None,
                    help="seconds each fake Apify actor run takes (default 5; --small: 0.2)")
    ap.add_argument("--tweets", type=int, default=None,
                    help="tweets per query, 1 + tweets actor runs per partition (default 23; --small: 2)")
    ap.add_argument("--replies", type=int, default=None, help="replies per tweet (default 4; --small: 2)")
    ap.add_argument("--concurrency", type=int, default=None,
                    help="max_concurrent_runs of the parallel case (default 4; --small: 2)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds to wait for one backfill (default 3000; "
                                                                 "--small: 900)")
    ap.add_argument("--small", action="store_true", help="a small real backfill: the test suite's mode")
    args = ap.parse_args()
    for name, full_value, small_value in (("partitions", 8, 2), ("latency", 5.0, 0.2), ("tweets", 23, 2),
                                          ("replies", 4, 2), ("concurrency", 4, 2), ("timeout", 3000.0, 900.0)):
        if getattr(args, name) is None:
            setattr(args, name, small_value if args.small else full_value)
    cpu = cpu_figures()
    print_cpu(cpu)

    dataset = h.make_dataset(args.partitions, args.tweets, args.replies)
    wait_s = (1 + args.tweets) * args.latency
    print(f"{args.partitions} production raw_tweets partitions, {args.tweets} tweets x {args.replies} replies each; "
          f"every fake Apify actor run takes {args.latency:g} s, so a partition waits >= {wait_s:g} s on Apify")
    with tempfile.TemporaryDirectory(prefix="replyassets-bench-backfill-") as tmp:
        cases = [run_case(Path(tmp), dataset, c, args.latency, args.timeout) for c in (1, args.concurrency)]
    serial, parallel = cases
    same_pairs = serial["_pairs"].equals(parallel["_pairs"])
    same_rejections = serial["_rejections"].equals(parallel["_rejections"])
    expected = sum(len(q.reply_ids) for q in dataset)
    speedup = serial["wall_s"] / parallel["wall_s"] if serial["wall_s"] and parallel["wall_s"] else None
    lock_errors = serial["lock_errors"] + parallel["lock_errors"]
    print(f"\n{'run concurrency':<17}{'wall s':>8}{'runs ok':>9}{'runs at once':>14}{'steps at once':>15}"
          f"{'mean step s':>13}{'lock errors':>13}")
    for c in cases:
        print(f"{c['concurrency']:<17}{c['wall_s']:>8.1f}{c['runs_succeeded']:>5}/{c['runs']:<3}{c['max_runs_at_once']:>14}"
              f"{c['max_collect_steps_at_once']:>15}{c['mean_step_s']:>13.1f}{c['lock_errors']:>13}")
    print(f"speedup x{speedup or 0:.2f} (target >= 3: {'met' if speedup and speedup >= 3 else 'NOT met'}); "
          f"rows identical: pairs {same_pairs} ({len(serial['_pairs'])} of {expected} expected), "
          f"rejections {same_rejections}; lock errors {lock_errors}")
    figures = {
        "benchmark": "backfill",
        "partitions": args.partitions,
        "actor_run_latency_s": args.latency,
        "actor_runs_per_partition": 1 + args.tweets,
        "wall_s_concurrency_1": serial["wall_s"],
        f"wall_s_concurrency_{args.concurrency}": parallel["wall_s"],
        "speedup": round(speedup, 2) if speedup else None,
        "target_speedup": 3.0,
        "rows_identical": bool(same_pairs and same_rejections),
        "pairs": len(serial["_pairs"]),
        "pairs_expected": expected,
        "lock_errors": lock_errors,
        "cases": [{k: v for k, v in c.items() if not k.startswith("_")} for c in cases],
        "small": args.small,
        "cpu": cpu,
    }
    correct = bool(same_pairs and same_rejections and lock_errors == 0 and len(serial["_pairs"]) > 0
                   and all(c["runs_succeeded"] == c["runs"] == args.partitions for c in cases)
                   and all(c["apify_requests_repeated"] == 0 for c in cases))
    figures["correct"] = correct
    print(json.dumps(figures))
    if not correct:
        print("FAILED: runs failed, rows differ, a lock error or a repeated Apify request (see above)", file=sys.stderr)
        return 1
    # the speed-up is a target of the full mode; the small mode (2 partitions) checks correctness only
    return 0 if args.small or (speedup and speedup >= 3) else 1


if __name__ == "__main__":
    sys.exit(main())
