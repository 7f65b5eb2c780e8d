"""A curated set that fails its blocking checks stops lora_adapter, in the same run and later."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from replyassets_tests.defs.conftest import all_assets_and_checks


def deduped_frame(n_rows: int, n_tweets: int, n_authors: int) -> pd.DataFrame:
    now = pd.Timestamp("2025-01-01 12:00:00")
    rows = []
    for i in range(n_rows):
        t = i % n_tweets
        reply = f"Reply number {i} talks about distinct topic {i * 7919 % 1000} with plenty of specific words here"
        rows.append(
            {
                "query": "ai-agents",
                "source": "replay",
                "tweet_id": f"t{t}",
                "tweet": f"Tweet {t} about agents and tooling",
                "tweet_author": f"author{t}",
                "tweet_author_followers": 5000,
                "tweet_likes": 500,
                "tweet_retweets": 50,
                "tweet_created_at": now,
                "reply_id": f"r{i}",
                "reply": reply,
                "reply_author": f"user{i % n_authors}",
                "reply_author_followers": 1000 + i,
                "reply_likes": 10 + i,
                "reply_retweets": 1,
                "reply_created_at": now + pd.Timedelta(minutes=30),
                "reply_time_diff_seconds": 1800,
                "has_media": False,
                "has_urls": False,
                "lang": "en",
                "collected_at": now,
                "tweet_clean": f"Tweet {t} about agents and tooling",
                "reply_clean": reply,
                "lang_confidence": 0.99,
                "toxicity": 0.01,
                "meaningful_words": 10,
                "generic_ratio": 0.0,
                "valid": True,
                "reasons": "",
                "kept": True,
                "duplicate_of": None,
                "similarity": None,
                "dup_kind": None,
            }
        )
    return pd.DataFrame(rows)


def store_deduped(database, df: pd.DataFrame) -> None:
    con = duckdb.connect(str(database))
    try:
        con.register("df", df)
        con.execute("CREATE OR REPLACE TABLE main.deduped_pairs AS SELECT * FROM df").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def store_other_training_inputs(data, database) -> None:
    """lora_adapter's inputs besides the curated set, as their IO managers store them: a base-model
    artifact (a folder that need not exist: the guard refuses before anything loads it) and empty
    preference tables. Dagster loads every input before the asset's code runs."""
    from replyassets.core.artifact import Artifact

    (data / "artifacts" / "base_model").mkdir(parents=True, exist_ok=True)
    (data / "artifacts" / "base_model" / "__unpartitioned__.json").write_text(
        Artifact(path=str(data / "models" / "none"), sha256="0" * 64, kind="local-tiny").to_json())
    con = duckdb.connect(str(database))
    try:
        for table in ("preference_pairs", "preference_kto"):
            con.execute(f"CREATE TABLE IF NOT EXISTS main.{table} (tweet_id VARCHAR, split VARCHAR)")
    finally:
        con.close()


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_failed_blocking_check_stops_training_now_and_later(dagster_project):
    import dagster as dg

    store_deduped(dagster_project.database, deduped_frame(n_rows=12, n_tweets=4, n_authors=6))
    resources = dagster_project.resources()
    dagster_project.instance.add_dynamic_partitions("experiment", ["default"])
    result = dg.materialize(
        all_assets_and_checks(),
        selection=["curated_set", "lora_adapter"],
        partition_key="default",
        instance=dagster_project.instance,
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    # curated_set was written (checks run after it), its size check failed, lora_adapter never started.
    evaluations = {e.check_name: e.passed
                   for e in result.get_asset_check_evaluations()}
    assert evaluations["size"] is False
    assert evaluations["unique_authors"] is False
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "curated_set" in started and "lora_adapter" not in started
    assert dagster_project.instance.get_latest_materialization_event(dg.AssetKey("lora_adapter")) is None

    # A later run of lora_adapter alone (as a backfill, schedule or click would launch) is refused too,
    # its other inputs present (a base model and preference tables: the guard comes first).
    store_other_training_inputs(dagster_project.data, dagster_project.database)
    later = dg.materialize(
        all_assets_and_checks(),
        selection=["lora_adapter"],
        partition_key="default",
        instance=dagster_project.instance,
        resources=resources,
        raise_on_error=False,
    )
    assert not later.success
    failure = next(e for e in later.all_events if e.event_type_value == "STEP_FAILURE")
    assert "Refusing to train" in failure.message or "Refusing to train" in str(failure.event_specific_data.error)
    assert dagster_project.instance.get_latest_materialization_event(dg.AssetKey("lora_adapter")) is None


def test_guard_runs_the_blocking_checks_on_the_set_it_is_given(dagster_project):
    """lora_adapter's guard asks the curated set it receives as its input (the checks' own code),
    never the instance's record of an earlier check run: a set too small and with too few authors
    is refused by name; the checks' verdicts are the ones curated_set records."""
    from replyassets.core.curate import candidates_from_deduped, curate
    from replyassets.core.review import ReviewStore
    from replyassets.defs.curate import blocking_problems
    from replyassets.defs.resources import EmbedderResource
    from replyassets.defs.settings_access import settings, storage

    s = settings()
    curated = curate(candidates_from_deduped(deduped_frame(n_rows=12, n_tweets=4, n_authors=6)),
                     ReviewStore(storage()).decisions(), s.curation, s.collection)
    resources = dagster_project.resources()
    embedder = resources["embedder"]
    assert isinstance(embedder, EmbedderResource)
    problems = blocking_problems(curated, embedder)
    names = {p.split(":")[0] for p in problems}
    assert {"size", "unique_authors"} <= names, problems
    assert all(": FAILED (" in p for p in problems)
