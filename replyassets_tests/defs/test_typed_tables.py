"""Tables typed by their contracts, on both backends (a DuckDB file and a DuckLake).

The user trial's bug: every tweet rejected, so ``deduped_pairs`` and ``curated_set`` were
written empty, ``CREATE TABLE ... AS SELECT * FROM obj`` typed their text columns INTEGER, and
the next run failed casting a query name to INT32. Here: an empty run then a real run through
the project's IO manager with the real contracts, the repair of a drifted table replaced whole,
and the refusal (with the command that fixes it) of a partitioned write into a drifted table.
"""

from __future__ import annotations

import re
import shlex

import dagster as dg
import pandas as pd
import pandera.pandas as pa
import pytest
from dagster_pandera import pandera_schema_to_dagster_type

from replyassets import schemas
from replyassets.core import db
from replyassets_tests.defs.test_storage_backends import io_manager_for

PARTS = dg.StaticPartitionsDefinition(["alpha", "beta"])


def contract(model) -> dict[str, str]:
    return {name: schemas.duckdb_type(col.dtype) for name, col in model.to_schema().columns.items()}


def stored(storage, table: str) -> dict[str, str]:
    with db.connect(storage) as con:
        return db.column_types(con, table)


def raw_row(query: str, i: int) -> dict:
    t = pd.Timestamp("2025-03-01 12:00:00")
    return {
        "query": query, "source": "replay", "tweet_id": f"t{i}", "tweet": "What do you think?",
        "tweet_author": "ann", "tweet_author_followers": 10, "tweet_likes": 3, "tweet_retweets": 1,
        "tweet_created_at": t, "reply_id": f"{query}-r{i}", "reply": "I think so", "reply_author": "bob",
        "reply_author_followers": 5, "reply_likes": 7, "reply_retweets": 0,
        "reply_created_at": t + pd.Timedelta(minutes=5), "reply_time_diff_seconds": 300,
        "has_media": False, "has_urls": False, "lang": "en", "collected_at": t + pd.Timedelta(days=1),
    }


def deduped_row(query: str, i: int) -> dict:
    return {**raw_row(query, i), "tweet_clean": "What do you think?", "reply_clean": "I think so",
            "lang_confidence": 0.99, "toxicity": 0.01, "meaningful_words": 2, "generic_ratio": 0.0,
            "valid": True, "reasons": "", "kept": True, "duplicate_of": None, "similarity": None, "dup_kind": None}


def curated_row(i: int) -> dict:
    return {"reply_id": f"r{i}", "tweet_id": f"t{i}", "query": "alpha", "reply_author": "bob",
            "prompt": "Reply to: hi", "train_reply": "hello", "quality_score": 0.5, "rank": i + 1,
            "split": "train", "review_status": "pending"}


def empty_like(model) -> pd.DataFrame:
    """What a run that rejected everything returns: the contract's columns, no rows, object dtype."""
    return pd.DataFrame(columns=list(model.to_schema().columns))


def assets(frames: dict):
    """Small assets with the project's contracts: raw_tweets partitioned by query, deduped_pairs
    and curated_set written whole (their frames in ``frames``, read when they run)."""

    @dg.asset(name="raw_tweets", partitions_def=PARTS, metadata={"partition_expr": "query"},
              dagster_type=pandera_schema_to_dagster_type(schemas.RawPairs))
    def raw_tweets(context):
        return frames["raw_tweets"][context.partition_key]

    @dg.asset(name="deduped_pairs", dagster_type=pandera_schema_to_dagster_type(schemas.DedupedPairs))
    def deduped_pairs():
        return frames["deduped_pairs"]

    @dg.asset(name="curated_set", dagster_type=pandera_schema_to_dagster_type(schemas.CuratedSet))
    def curated_set():
        return frames["curated_set"]

    return raw_tweets, deduped_pairs, curated_set


def run(storage, frames, *, partition: str | None = None, raise_on_error: bool = True):
    raw_tweets, deduped_pairs, curated_set = assets(frames)
    chosen = [raw_tweets] if partition else [deduped_pairs, curated_set]
    return dg.materialize(chosen, partition_key=partition, raise_on_error=raise_on_error,
                          resources={"io_manager": io_manager_for(storage)})


@pytest.mark.slow
def test_empty_run_then_real_run(any_storage):
    empty = {"raw_tweets": {"alpha": empty_like(schemas.RawPairs)},
             "deduped_pairs": empty_like(schemas.DedupedPairs), "curated_set": empty_like(schemas.CuratedSet)}
    assert run(any_storage, empty, partition="alpha").success
    assert run(any_storage, empty).success
    for table, model in (("raw_tweets", schemas.RawPairs), ("deduped_pairs", schemas.DedupedPairs),
                         ("curated_set", schemas.CuratedSet)):
        assert stored(any_storage, table) == contract(model), table  # empty, and typed by the contract
    assert stored(any_storage, "deduped_pairs")["query"] == "VARCHAR"

    real = {"raw_tweets": {"alpha": pd.DataFrame([raw_row("alpha", i) for i in range(3)]),
                           "beta": pd.DataFrame([raw_row("beta", 9)])},
            "deduped_pairs": pd.DataFrame([deduped_row("alpha", i) for i in range(3)]),
            "curated_set": pd.DataFrame([curated_row(i) for i in range(2)])}
    assert run(any_storage, real, partition="alpha").success
    assert run(any_storage, real, partition="beta").success
    assert run(any_storage, real).success
    with db.connect(any_storage) as con:
        assert con.execute("SELECT query, count(*) FROM main.raw_tweets GROUP BY query ORDER BY query").fetchall() \
            == [("alpha", 3), ("beta", 1)]
        assert con.execute("SELECT query, reply_id, tweet_likes, reply_created_at FROM main.deduped_pairs "
                           "ORDER BY reply_id LIMIT 1").fetchall() \
            == [("alpha", "alpha-r0", 3, pd.Timestamp("2025-03-01 12:05:00").to_pydatetime())]
        assert con.execute("SELECT count(*), max(rank) FROM main.curated_set").fetchall() == [(2, 2)]
    assert stored(any_storage, "deduped_pairs") == contract(schemas.DedupedPairs)

    # and empty again: the whole tables are emptied, their types kept
    assert run(any_storage, empty).success
    assert stored(any_storage, "curated_set") == contract(schemas.CuratedSet)
    with db.connect(any_storage) as con:
        assert con.execute("SELECT count(*) FROM main.curated_set").fetchall() == [(0,)]


def create_as_the_bug_did(storage, table: str, model) -> None:
    """The table as the old IO manager made it from an empty frame: every object column INTEGER."""
    frame = empty_like(model)
    with db.connect(storage) as con:
        con.register("obj", frame)
        con.execute(f"CREATE TABLE main.{table} AS SELECT * FROM obj").fetchall()
        con.unregister("obj")
    assert stored(storage, table)["query"] == "INTEGER"


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_drifted_table_replaced_whole_is_repaired(any_storage):
    create_as_the_bug_did(any_storage, "deduped_pairs", schemas.DedupedPairs)
    frames = {"deduped_pairs": pd.DataFrame([deduped_row("alpha", i) for i in range(2)]),
              "curated_set": pd.DataFrame([curated_row(0)])}
    result = run(any_storage, frames)
    assert result.success
    assert stored(any_storage, "deduped_pairs") == contract(schemas.DedupedPairs)
    md = result.asset_materializations_for_node("deduped_pairs")[0].metadata
    assert "query: INTEGER -> VARCHAR" in md["storage_repaired_columns"].value
    assert "storage_repaired_columns" not in result.asset_materializations_for_node("curated_set")[0].metadata
    with db.connect(any_storage) as con:
        assert con.execute("SELECT query, reply_id FROM main.deduped_pairs ORDER BY reply_id").fetchall() \
            == [("alpha", "alpha-r0"), ("alpha", "alpha-r1")]


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_drifted_table_written_by_partition_is_refused_with_the_fix(any_storage, tmp_path, monkeypatch):
    from replyassets import cli
    from replyassets import settings as settings_mod

    create_as_the_bug_did(any_storage, "raw_tweets", schemas.RawPairs)
    with db.connect(any_storage) as con:  # another table, which the fix must leave alone
        con.execute("CREATE TABLE main.bystander (query INTEGER)").fetchall()
    frames = {"raw_tweets": {"alpha": pd.DataFrame([raw_row("alpha", 0)])}}
    result = run(any_storage, frames, partition="alpha", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.cause.message if failure.step_failure_data.error.cause \
        else failure.step_failure_data.error.message
    assert "TableContractError" in str(failure.step_failure_data.error.to_string())
    assert "table main.raw_tweets does not match its contract RawPairs" in message
    assert "column query is stored as INTEGER, its contract says VARCHAR" in message
    assert "column reply is stored as INTEGER, its contract says VARCHAR" in message
    command = re.search(r"`(replyassets retype [^`]+)`", message).group(1)
    assert command.startswith("replyassets retype main.raw_tweets query=VARCHAR ")
    assert stored(any_storage, "raw_tweets")["query"] == "INTEGER"  # the failed write changed nothing

    # the command, exactly as printed, on the profile's storage
    monkeypatch.setenv("REPLYASSETS_PROFILE", "local")
    monkeypatch.setenv("REPLYASSETS_STORAGE_BACKEND", any_storage.backend)
    if any_storage.is_lake:
        monkeypatch.setenv("REPLYASSETS_DUCKLAKE_DATA_PATH", any_storage.data_path)
    else:
        monkeypatch.setenv("REPLYASSETS_DATABASE", str(any_storage.database))
    settings_mod.get_settings.cache_clear()
    try:
        assert cli.main(shlex.split(command)[1:]) == 0
    finally:
        settings_mod.get_settings.cache_clear()
    assert stored(any_storage, "raw_tweets") == contract(schemas.RawPairs)
    assert stored(any_storage, "bystander") == {"query": "INTEGER"}
    assert run(any_storage, frames, partition="alpha").success
    with db.connect(any_storage) as con:
        assert con.execute("SELECT query, reply_id FROM main.raw_tweets").fetchall() == [("alpha", "alpha-r0")]


def test_retype_keeps_rows_and_order(any_storage):
    with db.connect(any_storage) as con:
        con.execute("CREATE TABLE main.t (k VARCHAR, n VARCHAR, other DOUBLE)").fetchall()
        con.execute("INSERT INTO main.t VALUES ('c', '3', 0.5), ('a', '1', NULL), ('b', NULL, 2.0)").fetchall()
    done = db.transaction(lambda con: db.retype_columns(con, "t", {"n": "BIGINT"}), any_storage)
    assert done.value == 3
    assert stored(any_storage, "t") == {"k": "VARCHAR", "n": "BIGINT", "other": "DOUBLE"}
    with db.connect(any_storage) as con:
        assert con.execute("SELECT k, n, other FROM main.t ORDER BY rowid").fetchall() \
            == [("c", 3, 0.5), ("a", 1, None), ("b", None, 2.0)]
    # a value that does not cast leaves the table as it was
    with db.connect(any_storage) as con:
        con.execute("UPDATE main.t SET k = 'zz' WHERE k = 'c'").fetchall()
    with pytest.raises(Exception, match="(?i)conversion|could not convert"):
        db.transaction(lambda con: db.retype_columns(con, "t", {"k": "INTEGER"}), any_storage)
    assert stored(any_storage, "t")["k"] == "VARCHAR"
    with pytest.raises(ValueError, match="has no column nope"):
        db.transaction(lambda con: db.retype_columns(con, "t", {"nope": "BIGINT"}), any_storage)
    with pytest.raises(ValueError, match="invalid column type"):
        db.transaction(lambda con: db.retype_columns(con, "t", {"n": "BIGINT); DROP TABLE t; --"}), any_storage)


def test_every_contract_maps_to_duckdb_types():
    models = [m for m in vars(schemas).values()
              if isinstance(m, type) and issubclass(m, pa.DataFrameModel) and m is not pa.DataFrameModel]
    assert len(models) >= 8
    for model in models:
        types = contract(model)
        assert None not in types.values(), model.__name__  # no contract column left untyped
    assert contract(schemas.RawPairs) == {
        **{c: "VARCHAR" for c in ("query", "source", "tweet_id", "tweet", "tweet_author", "reply_id", "reply",
                                  "reply_author", "lang")},
        **{c: "BIGINT" for c in ("tweet_author_followers", "tweet_likes", "tweet_retweets", "reply_author_followers",
                                 "reply_likes", "reply_retweets", "reply_time_diff_seconds")},
        **{c: "TIMESTAMP_NS" for c in ("tweet_created_at", "reply_created_at", "collected_at")},
        "has_media": "BOOLEAN", "has_urls": "BOOLEAN",
    }
    assert schemas.duckdb_type("object") is None
    assert schemas.duckdb_type(pd.StringDtype()) == "VARCHAR"
    assert schemas.duckdb_type("int32") == "INTEGER"
    with pytest.raises(ValueError, match="no DuckDB type for dtype 'complex128'"):
        schemas.duckdb_type("complex128")


def test_columns_the_contract_lacks_take_the_frames_types():
    import duckdb

    from replyassets.defs.storage import frame_types

    frame = pd.DataFrame({"query": pd.Series([], dtype="object"), "extra_empty": pd.Series([], dtype="object"),
                          "extra_n": pd.Series([], dtype="int32")})
    con = duckdb.connect()  # an in-memory database: only DuckDB's type inference is used
    assert frame_types(frame, {"query": "VARCHAR", "rank": "BIGINT"}, con) == {
        "query": "VARCHAR", "rank": "BIGINT", "extra_empty": "VARCHAR", "extra_n": "INTEGER"}
    full = pd.DataFrame({"lists": [[1, 2], None], "texts": ["a", None], "nothing": [None, None]})
    assert frame_types(full, {}, con) == {"lists": "INTEGER[]", "texts": "VARCHAR", "nothing": "VARCHAR"}


def test_time_window_partitions_replace_their_rows(tmp_path):
    storage = db.Storage("duckdb", database=tmp_path / "t.duckdb")
    days = dg.DailyPartitionsDefinition(start_date="2025-03-01", end_date="2025-03-04")
    frames = {
        "2025-03-01": pd.DataFrame({"day": pd.to_datetime(["2025-03-01 01:00", "2025-03-01 23:00"]), "n": [1, 2]}),
        "2025-03-02": pd.DataFrame({"day": pd.to_datetime(["2025-03-02 00:00"]), "n": [3]}),
    }

    @dg.asset(name="daily", partitions_def=days, metadata={"partition_expr": "day"})
    def daily(context) -> pd.DataFrame:
        return frames[context.partition_key]

    for key in ("2025-03-01", "2025-03-02"):
        assert dg.materialize([daily], partition_key=key, resources={"io_manager": io_manager_for(storage)}).success
    frames["2025-03-01"] = pd.DataFrame({"day": pd.to_datetime(["2025-03-01 12:00"]), "n": [9]})
    result = dg.materialize([daily], partition_key="2025-03-01", resources={"io_manager": io_manager_for(storage)})
    assert result.success
    with db.connect(storage) as con:
        assert con.execute("SELECT n FROM main.daily ORDER BY day").fetchall() == [(9,), (3,)]
    query = result.asset_materializations_for_node("daily")[0].metadata["Query"].value
    assert "day >= '2025-03-01 00:00:00' AND day < '2025-03-02 00:00:00'" in query
