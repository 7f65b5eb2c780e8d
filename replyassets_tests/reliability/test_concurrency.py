"""Concurrency: several raw_tweets partition runs at once, in separate processes, against one
DuckDB file (as a backfill launches them). No lock error may reach the user, no write may be lost.
"""

from __future__ import annotations

import shutil

import pytest

from replyassets.core.collect import collect_partition
from replyassets.settings import CollectionSettings, load_queries
from replyassets.sources.replay import ReplaySource
from replyassets_tests.reliability import tally
from replyassets_tests.reliability.hostile import make_dataset
from replyassets_tests.reliability.pipeline_proc import ROOT, Pipeline
from replyassets_tests.reliability.storage_io import integrity_ok, read_table

N = 4
COLLECT = ["raw_tweets", "raw_tweet_rejections"]
LOCK_WORDS = ("could not set lock", "conflicting lock", "IO Error", "IOException", "database is locked")


@pytest.mark.slow
@pytest.mark.parametrize("pools", ["project-pools", "no-pools"])
def test_concurrent_partition_runs_lose_nothing(tmp_path, pools):
    """Collection is in no pool (it waits on its source, holding nothing), so with the project's
    dagster.yaml as without it (an instance configured by someone else) the steps really write
    at once and the storage layer must serialize the writes: no lock error, nothing lost."""
    queries = {f"q{i}": make_dataset(5, 5, seed=10 + i, prefix=str(i)) for i in range(N)}
    pipe = Pipeline(tmp_path, queries)
    if pools == "project-pools":
        shutil.copyfile(ROOT / "dagster.yaml", pipe.home / "dagster.yaml")
    # What each partition must hold: the same collection, computed in this process.
    source = ReplaySource(pipe.sample)
    expected = {}
    for spec in load_queries(pipe.queries_file):
        res = collect_partition(spec, source, CollectionSettings())
        expected[spec.name] = (set(res.pairs["reply_id"]), len(res.rejections))
    assert all(len(ids) >= 20 for ids, _ in expected.values())

    for round_ in range(2):  # first writes create the tables; second ones replace partitions
        procs = [pipe.start(COLLECT, q, refresh=bool(round_)) for q in queries]
        rcs = [p.wait(timeout=600) for p in procs]
        outputs = [p.output for p in procs]
        blocked = sum("Step blocked by limit for pool duckdb" in out for out in outputs)
        assert blocked == 0, "a collection step waited for the duckdb pool"
        for q, rc, out in zip(queries, rcs, outputs):
            leaked = [w for w in LOCK_WORDS if w in out]
            assert not leaked, f"round {round_}, {q}: lock error reached the user: {leaked}\n{out[-3000:]}"
            assert rc == 0 and "RESULT ok" in out, f"round {round_}, {q}:\n{out[-3000:]}"

        integrity_ok(pipe.database)
        pairs = read_table(pipe.database, "raw_tweets")
        rej = read_table(pipe.database, "raw_tweet_rejections")
        for q, (ids, n_rej) in expected.items():
            got = list(pairs.loc[pairs["query"] == q, "reply_id"])
            lost = len(ids - set(got))
            dup = len(got) - len(set(got))
            tally.add("rows_lost", lost)
            tally.add("rows_duplicated", dup)
            assert lost == 0 and dup == 0 and set(got) == ids, (round_, q, lost, dup)
            assert int((rej["query"] == q).sum()) == n_rej, (round_, q)


@pytest.mark.slow
def test_run_waits_for_another_process_holding_the_file(tmp_path):
    """A second writer (the review CLI, a notebook, a DuckDB shell) holds the file while a run's
    step wants to write: the run waits for it instead of failing with a lock error."""
    import subprocess
    import sys
    import time

    from replyassets_tests.reliability.pipeline_proc import step_start_marker

    pipe = Pipeline(tmp_path, {"q0": make_dataset(4, 4, seed=3)})
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "c.execute('CREATE TABLE IF NOT EXISTS main.holder (x INT)'); print('held', flush=True); "
         "sys.stdin.readline(); c.close()",
         str(pipe.database)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        tally.add("faults_injected")
        marker = step_start_marker("raw_tweets")
        proc = pipe.start(COLLECT, "q0", markers=(marker,))
        assert proc.wait_marker(marker), proc.output[-3000:]
        time.sleep(5)  # the step (about 2 s) is now waiting for the lock
        assert proc.popen.poll() is None, "the run finished while another process held the file"
        holder.stdin.write("release\n")
        holder.stdin.flush()
        rc = proc.wait(timeout=600)
        out = proc.output
        assert not [w for w in LOCK_WORDS if w in out], out[-3000:]
        assert rc == 0 and "RESULT ok" in out, out[-3000:]
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=60)
    integrity_ok(pipe.database)
    assert len(read_table(pipe.database, "raw_tweets")) >= 16
