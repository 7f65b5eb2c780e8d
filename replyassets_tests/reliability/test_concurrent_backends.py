"""Four processes materialize four partitions of raw_tweets / raw_tweet_rejections /
validated_pairs at the same moment, as a backfill's runs would, on each storage backend:
the DuckDB file (steps take turns under the lock of ``replyassets/core/db.py``; no Dagster
pool queues them here) and the DuckLake (steps really write at once; conflicting commits are
retried). No lock error may reach the user, no row may be lost or duplicated, and the second
round (every partition replaced at once) leaves exactly the same rows.
"""

from __future__ import annotations

import os
import time

import pytest

from replyassets.core import db
from replyassets.core.collect import collect_partition
from replyassets.settings import CollectionSettings, load_queries
from replyassets.sources.replay import ReplaySource
from replyassets_tests.reliability import tally
from replyassets_tests.reliability.hostile import make_dataset
from replyassets_tests.reliability.pipeline_proc import Pipeline

N = 4
SELECT = ["raw_tweets", "raw_tweet_rejections", "validated_pairs"]
LOCK_WORDS = ("could not set lock", "conflicting lock", "IO Error", "IOException", "database is locked",
              "StorageBusy")
RETRY_LINE = "write conflict with another writer"


def _read(storage: db.Storage, table: str):
    with db.connect(storage) as con:
        return con.execute(f"SELECT * FROM main.{table}").df()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["duckdb", "ducklake"])
def test_four_processes_materialize_partitions_at_once(tmp_path, backend, request):
    extra_env: dict[str, str] = {}
    if backend == "ducklake":
        lake = request.getfixturevalue("lake_storage")
        extra_env = {"REPLYASSETS_STORAGE_BACKEND": "ducklake", db.CATALOG_ENV: os.environ[db.CATALOG_ENV],
                     "REPLYASSETS_DUCKLAKE_DATA_PATH": lake.data_path}
    queries = {f"q{i}": make_dataset(10, 8, seed=30 + i, prefix=str(i)) for i in range(N)}
    pipe = Pipeline(tmp_path, queries, extra_env=extra_env)
    storage = lake if backend == "ducklake" else db.Storage("duckdb", database=pipe.database)

    source = ReplaySource(pipe.sample)
    expected = {}
    for spec in load_queries(pipe.queries_file):
        res = collect_partition(spec, source, CollectionSettings())
        expected[spec.name] = (set(res.pairs["reply_id"]), len(res.rejections))
    assert all(len(ids) >= 60 for ids, _ in expected.values())

    figures = []
    for round_ in range(2):  # the first writes create the tables; the second ones replace partitions
        started = time.monotonic()
        procs = [pipe.start(SELECT, q, refresh=bool(round_)) for q in queries]
        rcs = [p.wait(timeout=900) for p in procs]
        seconds = time.monotonic() - started
        outputs = [p.output for p in procs]
        for q, rc, out in zip(queries, rcs, outputs):
            assert "Step blocked by limit for pool" not in out  # nothing queued them: they really overlap
            leaked = [w for w in LOCK_WORDS if w in out]
            assert not leaked, f"{backend} round {round_}, {q}: a lock error reached the user: {leaked}\n{out[-3000:]}"
            assert rc == 0 and "RESULT ok" in out, f"{backend} round {round_}, {q}:\n{out[-3000:]}"
        retries = sum(out.count(RETRY_LINE) for out in outputs)

        pairs, rejected, validated = (_read(storage, t) for t in SELECT)
        for q, (ids, n_rej) in expected.items():
            got = list(pairs.loc[pairs["query"] == q, "reply_id"])
            checked = list(validated.loc[validated["query"] == q, "reply_id"])
            lost = len(ids - set(got)) + len(ids - set(checked))
            dup = (len(got) - len(set(got))) + (len(checked) - len(set(checked)))
            tally.add("rows_lost", lost)
            tally.add("rows_duplicated", dup)
            assert lost == 0 and dup == 0 and set(got) == ids == set(checked), (backend, round_, q, lost, dup)
            assert int((rejected["query"] == q).sum()) == n_rej, (backend, round_, q)
        assert len(pairs) == sum(len(ids) for ids, _ in expected.values())  # nothing from elsewhere
        figures.append(f"round {round_ + 1}: {N} runs in {seconds:.0f} s; rows raw_tweets {len(pairs)}, "
                       f"validated_pairs {len(validated)}, rejections {len(rejected)}; {retries} conflicts retried")
    print(f"\n{backend}: " + "; ".join(figures))
    if backend == "ducklake":
        assert not pipe.database.exists()  # every table went to the lake, none to a local file
