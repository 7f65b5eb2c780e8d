"""Several production collections at once, in separate processes, checkpointing into one DuckDB
file (what a backfill does now that collection is in no pool), one of them SIGKILLed mid-way and
run again: every process ends without a lock error, every query's pairs are complete, and the
resumed one pays Apify only for what it had not saved: each search and each conversation is
asked for once, except at most the one conversation whose fetch was in flight at the kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from replyassets_tests.fakes import FakeApifyServer
from replyassets_tests.scale import harness as h

pytestmark = [pytest.mark.slow]

TWEETS = 5


def _start(database, api, q) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(h.ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "replyassets_tests.scale.collect_worker", str(database), api.url,
                             q.name, q.text], cwd=h.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.timeout(900)
def test_parallel_collections_share_the_file_and_a_killed_one_resumes_paying_only_for_the_rest(tmp_path):
    dataset = h.make_dataset(3, tweets_per_query=TWEETS, replies_per_tweet=3)
    victim, others = dataset[0], dataset[1:]
    database = tmp_path / "replyassets.duckdb"
    with FakeApifyServer(token=h.APIFY_TOKEN, run_latency_s=0.5) as api:
        h.load_dataset(api, dataset)
        victim_convs = {f"conversation_id:{t['id']}" for t in victim.tweets}

        def victim_reply_runs() -> int:
            return sum(h.run_query(r) in victim_convs for r in list(api.runs.values()))

        procs = {q.name: _start(database, api, q) for q in dataset}
        deadline = time.monotonic() + 600
        while victim_reply_runs() < 3:  # two reply fetches saved, the third in flight
            assert time.monotonic() < deadline and procs[victim.name].poll() is None, "the victim never got there"
            time.sleep(0.05)
        os.kill(procs[victim.name].pid, signal.SIGKILL)
        procs[victim.name].wait(timeout=60)
        results = {}
        for q in others:
            rc, out, err = _finish(procs[q.name])
            assert rc == 0, err[-3000:]
            assert not [e for e in h.LOCK_ERRORS if e in (out + err).lower()], err[-3000:]
            results[q.name] = json.loads(out.strip().splitlines()[-1])
        # Run the killed one again: it resumes from its checkpoints.
        rc, out, err = _finish(_start(database, api, victim))
        assert rc == 0, err[-3000:]
        assert not [e for e in h.LOCK_ERRORS if e in (out + err).lower()], err[-3000:]
        results[victim.name] = json.loads(out.strip().splitlines()[-1])
        asked = Counter(h.run_query(r) for r in api.runs.values())

    for q in dataset:
        assert set(results[q.name]["reply_ids"]) == q.reply_ids, q.name
    assert results[victim.name]["resumed"] >= 2 and results[victim.name]["fetched"] <= TWEETS - 2
    repeated = {k: n for k, n in asked.items() if n > 1}
    print(f"actor runs {sum(asked.values())} for {len(asked)} distinct searches/conversations; repeated: {repeated}; "
          f"victim resumed {results[victim.name]['resumed']} tweets, fetched {results[victim.name]['fetched']}")
    assert len(asked) == len(dataset) * (1 + TWEETS)
    assert set(repeated) <= victim_convs and sum(n - 1 for n in repeated.values()) <= 1, repeated
