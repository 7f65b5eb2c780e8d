"""A backfill over every query partition, launched through the running webserver and executed by
the daemon: it completes, no run fails, no run hits a DuckDB lock error (the "duckdb" pool of
dagster.yaml serializes the steps that open the file, while up to 4 runs are in flight), and the
DuckDB tables hold rows for every partition."""

from __future__ import annotations

import time

import pytest

from replyassets_tests.ui.conftest import run_event_texts, runs_with_tag

pytestmark = [pytest.mark.slow]

BACKFILL_ASSETS = ("raw_tweets", "raw_tweet_rejections", "validated_pairs")
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
LOCK_ERRORS = ("Could not set lock", "Conflicting lock", "database is locked")

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions partitionNames error { message } }
    ... on PythonError { message }
  }
}
"""


def read_counts(database, table: str, timeout: float = 120) -> dict[str, int]:
    """Rows per query partition; retries while another process holds the DuckDB write lock."""
    import duckdb

    deadline = time.monotonic() + timeout
    while True:
        try:
            con = duckdb.connect(str(database), read_only=True)
            try:
                rows = con.execute(f"SELECT query, count(*) FROM main.{table} GROUP BY query").fetchall()  # fixed table names
            finally:
                con.close()
            return {q: int(n) for q, n in rows}
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def test_backfill_over_all_query_partitions_through_the_daemon(dagster_ui, ui_project):
    server = dagster_ui
    launched = server.graphql(LAUNCH, {"params": {
        "assetSelection": [{"path": [key]} for key in BACKFILL_ASSETS],
        "allPartitions": True,
        "fromFailure": False,
        "tags": [{"key": "replyassets/launched_by", "value": "test_backfill"}],
    }})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    started = time.monotonic()
    deadline = started + 480
    backfill = {}
    while time.monotonic() < deadline:
        backfill = server.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in TERMINAL:
            break
        time.sleep(3)
    assert backfill.get("status") in TERMINAL, f"backfill still {backfill} after 480s:\n{server.log_tail()}"

    runs = runs_with_tag(server, "dagster/backfill", backfill_id)
    statuses = {r["runId"]: r["status"] for r in runs}
    took = {r["runId"][:8]: round((r["endTime"] or 0) - (r["startTime"] or 0), 1) for r in runs}
    print(f"backfill {backfill_id}: {backfill['status']} after {time.monotonic() - started:.0f}s, "
          f"{len(runs)} runs: {sorted(statuses.values())}, run seconds {took}")
    lock_errors, failures = [], []
    for run_id, status in statuses.items():
        texts = run_event_texts(server, run_id)
        lock_errors += [f"{run_id[:8]}: {t[:300]}" for t in texts if any(e in t for e in LOCK_ERRORS)]
        if status != "SUCCESS":
            failures.append(f"{run_id[:8]} {status}: " + " | ".join(t[:300] for t in texts if "rror" in t)[:1500])
    assert not lock_errors, lock_errors
    assert not failures, failures
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    assert sorted(backfill["partitionNames"]) == ui_project.partitions, backfill
    assert runs, "the backfill launched no run"

    # Every partition has rows in each stage's table; validated_pairs holds every raw pair.
    raw = read_counts(ui_project.database, "raw_tweets")
    validated = read_counts(ui_project.database, "validated_pairs")
    assert sorted(raw) == ui_project.partitions and all(n > 0 for n in raw.values()), raw
    assert validated == raw, (validated, raw)
    assert sorted(read_counts(ui_project.database, "raw_tweet_rejections")) == ui_project.partitions
