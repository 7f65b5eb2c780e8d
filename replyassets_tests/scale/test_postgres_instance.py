"""The team instance (deploy/dagster.yaml: runs, event logs and schedules in PostgreSQL) runs a
collection backfill through the daemon: production raw_tweets partitions (the Apify source,
against the loopback Apify server) launched with the UI's mutation through `dg dev`.

Shows: the file loads into a real DagsterInstance on the test PostgreSQL server (its three
storages are dagster-postgres's, the runs are rows in PostgreSQL, no SQLite file appears); every
partition's run succeeds; collection steps of different partitions were in flight at the same
time (the fake Apify server holds every actor run until runs of two queries have started, so
the steps overlap if and only if partitions really collect in parallel; serialized collection
would fail the overlap assertion after the gate's fallback); no lock error anywhere; the table
holds every reply of every query exactly once; Apify was asked for each search and each
conversation exactly once (nothing paid twice).

Twice: with the tables in a DuckDB file (the storage lock serializes the parallel writes) and
in a DuckLake whose catalog is another database of the same server (the team deployment's
backend: optimistic commits, retried on conflict).

Never skipped: PostgreSQL missing is an error (`make test` installs it).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from replyassets_tests.fakes import FakeApifyServer
from replyassets_tests.scale import harness as h

pytestmark = [pytest.mark.slow]

N_QUERIES = 4
DEPLOY_YAML = h.ROOT / "deploy" / "dagster.yaml"
GATE_FALLBACK_S = 240  # a gate nobody opens (serialized collection) lets runs go after this


def _two_queries_gate(api_ref: dict):
    """Open once search runs of two different queries have started; each run alone after
    GATE_FALLBACK_S (so a serialized backfill still ends, and fails the overlap assertion)."""
    first_seen: dict[str, float] = {}
    lock = threading.Lock()

    def gate(run) -> bool:
        with lock:
            first_seen.setdefault(run.id, time.monotonic())
            searches = {h.run_query(r) for r in api_ref["api"].runs.values()
                        if not (h.run_query(r) or "").startswith("conversation_id:")}
            return len(searches) >= 2 or time.monotonic() - first_seen[run.id] > GATE_FALLBACK_S

    return gate


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("tables", ["duckdb", "ducklake"])
def test_backfill_through_the_daemon_on_the_postgres_instance(tmp_path, postgres_server, tables):
    import dagster as dg
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    from replyassets.core import db

    pg = postgres_server
    instance_db = f"dagster_scale_{tables}"
    pg.create_database(instance_db)
    pg_env = {
        "DAGSTER_PG_HOST": pg.host, "DAGSTER_PG_PORT": str(pg.port), "DAGSTER_PG_USER": pg.user,
        "DAGSTER_PG_PASSWORD": "unused-the-test-server-trusts-loopback", "DAGSTER_PG_DB": instance_db,
        "REPLYASSETS_STORAGE_BACKEND": tables,
    }
    if tables == "ducklake":
        pg_env[db.CATALOG_ENV] = pg.create_database("lake_scale")
        pg_env["REPLYASSETS_DUCKLAKE_DATA_PATH"] = str(tmp_path / "lake")
    dataset = h.make_dataset(N_QUERIES, tweets_per_query=3, replies_per_tweet=4)
    api_ref: dict = {}
    with FakeApifyServer(token=h.APIFY_TOKEN, run_gate=_two_queries_gate(api_ref)) as api:
        api_ref["api"] = api
        h.load_dataset(api, dataset)
        # The deploy file itself, as is, pointed at the test server by its environment variables.
        project = h.build_project(tmp_path / "project", DEPLOY_YAML.read_text(), dataset, api.url, extra_env=pg_env)
        instance = project.instance()
        try:
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
            queue = instance.get_concurrency_config().run_queue_config
            assert queue.max_concurrent_runs >= N_QUERIES, queue
            assert sorted(instance.get_dynamic_partitions("query")) == project.partitions
        finally:
            instance.dispose()

        with h.run_dagster_dev(project) as server:
            backfill_id = h.launch_backfill(server, tag="test_postgres_instance")
            backfill = h.wait_backfill(server, backfill_id, timeout=1200)
            report = h.collect_report(project, backfill_id, server)

        t0 = min(s.start for s in report.steps) if report.steps else 0.0
        print(f"backfill {backfill['status']}: {len(report.runs)} runs; raw_tweets steps (s from the first): "
              + ", ".join(f"{s.key} {s.start - t0:.1f}-{s.end - t0:.1f}" for s in report.steps)
              + f"; most steps at once {h.max_overlap(report.steps)}, runs at once {h.max_overlap(report.run_intervals)}")
        assert not report.lock_errors, report.lock_errors[:20]
        assert not report.failures, report.failures
        assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
        assert sorted(backfill["partitionNames"]) == project.partitions
        assert sorted(v["partition"] for v in report.runs.values()) == project.partitions
        assert all(v["status"] == "SUCCESS" for v in report.runs.values()), report.runs
        # Parallel collection: steps of different partitions in flight at once.
        assert len(report.steps) == N_QUERIES
        assert h.max_overlap(report.steps) >= 2, [(s.key, s.start, s.end) for s in report.steps]
        assert h.max_overlap(report.run_intervals) >= 2

        # Apify: one search per query, one reply fetch per conversation, nothing started twice.
        asked = Counter(h.run_query(r) for r in api.runs.values())
        assert len(asked) == N_QUERIES * (1 + 3) and set(asked.values()) == {1}, asked

    # The rows: every reply of every query, once.
    rows = h.read_rows(project)
    assert rows["reply_id"].is_unique
    for q in dataset:
        assert set(rows.loc[rows["query"] == q.name, "reply_id"]) == q.reply_ids, q.name
    assert len(rows) == sum(len(q.reply_ids) for q in dataset)

    # The runs and their events are rows in PostgreSQL, and the instance wrote no SQLite file.
    assert pg.psql("SELECT count(*) FROM runs", dbname=instance_db).strip() == str(N_QUERIES)
    assert int(pg.psql("SELECT count(*) FROM event_logs", dbname=instance_db).strip()) > 0
    if tables == "ducklake":  # the tables are in the lake, not in a DuckDB file
        assert not project.database.exists()
    assert not list(project.home.rglob("*.db")), list(project.home.rglob("*.db"))
    instance = project.instance()
    try:
        assert len(instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))) == N_QUERIES
    finally:
        instance.dispose()
