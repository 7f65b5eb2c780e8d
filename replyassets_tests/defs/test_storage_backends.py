"""The IO manager and the stores without a test of their own, on both storage backends.

Each test runs on a DuckDB file and on a DuckLake (``any_storage``): the IO manager replaces a
partition in one transaction, adds new columns, creates a table from an empty frame, loads
inputs and records its backend and (DuckLake) the snapshot its commit made; human ratings and
the champion history round-trip.
"""

from __future__ import annotations

import pandas as pd
import pytest

from replyassets.core import db

LOADED: list = []


def io_manager_for(storage: db.Storage):
    from replyassets.defs.storage import ReplyAssetsDuckDBIOManager

    if storage.is_lake:
        return ReplyAssetsDuckDBIOManager(backend="ducklake", database="lake", data_path=storage.data_path,
                                          schema="main")
    return ReplyAssetsDuckDBIOManager(database=str(storage.database), schema="main")


def _materialize(storage, frames: dict[str, pd.DataFrame], partition: str):
    import dagster as dg

    parts = dg.StaticPartitionsDefinition(["a", "b"])

    @dg.asset(name="parted", partitions_def=parts, metadata={"partition_expr": "query"})
    def parted() -> pd.DataFrame:
        return frames[partition]

    @dg.asset(name="whole")
    def whole(parted: pd.DataFrame) -> pd.DataFrame:  # reads every partition back through the IO manager
        LOADED[:] = list(zip(parted["query"], parted["x"]))
        return parted.assign(seen=len(parted))

    result = dg.materialize([parted], partition_key=partition, resources={"io_manager": io_manager_for(storage)})
    assert result.success
    md = result.asset_materializations_for_node("parted")[0].metadata
    return {k: v.value for k, v in md.items()}, (parted, whole)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_io_manager_round_trip(any_storage):
    import dagster as dg

    a1 = pd.DataFrame({"query": ["a"] * 3, "x": [1, 2, 3]})
    b1 = pd.DataFrame({"query": ["b"] * 2, "x": [20, 10]})
    a2 = pd.DataFrame({"query": ["a"] * 4, "x": [8, 5, 7, 6], "extra": ["s", "p", "r", "q"]})
    md_a1, _ = _materialize(any_storage, {"a": a1}, "a")
    _materialize(any_storage, {"b": b1}, "b")
    md_a2, (parted, whole) = _materialize(any_storage, {"a": a2}, "a")  # replaces a's rows, adds a column

    with db.connect(any_storage) as con:
        rows = con.execute("SELECT query, x, extra FROM main.parted ORDER BY query, x").fetchall()
    assert rows == [("a", 5, "p"), ("a", 6, "q"), ("a", 7, "r"), ("a", 8, "s"), ("b", 10, None), ("b", 20, None)]
    assert md_a2["storage_backend"] == any_storage.backend and md_a2["dagster/partition_row_count"] == 4
    assert md_a2["dagster/storage_kind"] == ("ducklake" if any_storage.is_lake else "duckdb")
    if any_storage.is_lake:
        first, second = md_a1["lake_snapshot_id"], md_a2["lake_snapshot_id"]
        assert isinstance(first, int) and second > first
        with db.connect(any_storage) as con:  # the first write, read back by its snapshot
            old = con.execute(f"SELECT query, x FROM main.parted AT (VERSION => {first}) ORDER BY x").fetchall()
        assert old == [("a", 1), ("a", 2), ("a", 3)]
    else:
        assert md_a1["lake_snapshot_id"] is None and md_a2["lake_snapshot_id"] is None

    # a downstream asset loads every partition through the IO manager
    result = dg.materialize([parted.to_source_asset(), whole], selection=["whole"],
                            resources={"io_manager": io_manager_for(any_storage)})
    assert result.success
    with db.connect(any_storage) as con:
        assert con.execute("SELECT count(*), max(seen) FROM main.whole").fetchone() == (6, 6)
    # loaded in a fixed order on every backend: by partition, then as each partition was written
    # (a was rewritten after b: storage order would put it last)
    assert LOADED == [("a", 8), ("a", 5), ("a", 7), ("a", 6), ("b", 20), ("b", 10)]


def test_empty_frame_creates_the_table(any_storage):
    import dagster as dg

    @dg.asset(name="empty")
    def empty() -> pd.DataFrame:
        return pd.DataFrame({"a": pd.Series([], dtype="object"), "n": pd.Series([], dtype="int64")})

    assert dg.materialize([empty], resources={"io_manager": io_manager_for(any_storage)}).success
    with db.connect(any_storage) as con:
        assert db.table_exists(con, "empty") and con.execute("SELECT count(*) FROM main.empty").fetchone()[0] == 0


def test_human_ratings_round_trip(any_storage):
    from replyassets.core.human_eval import RATING_COLUMNS, load_ratings, store_ratings

    assert load_ratings(any_storage).empty  # nothing imported yet
    def sheet(preferred: list[str], rater: str = "ana") -> pd.DataFrame:
        return pd.DataFrame([{"pair_id": f"p{i}", "item_id": f"i{i}", "rater_id": rater, "preferred": pref,
                              "human_outcome": {"1": "win", "2": "loss", "tie": "tie"}[pref],
                              "source_file": "sheet.csv", "row": i + 2} for i, pref in enumerate(preferred)],
                            columns=RATING_COLUMNS)

    assert store_ratings(any_storage, sheet(["1", "2", "tie"])) == 3
    assert store_ratings(any_storage, sheet(["2", "2", "tie"])) == 3  # a corrected sheet replaces the rater's
    assert store_ratings(any_storage, sheet(["tie"], rater="bo")) == 1
    got = load_ratings(any_storage).sort_values(["rater_id", "pair_id"])
    assert list(zip(got["rater_id"], got["pair_id"], got["preferred"])) == [
        ("ana", "p0", "2"), ("ana", "p1", "2"), ("ana", "p2", "tie"), ("bo", "p0", "tie")]
    assert list(load_ratings(any_storage, ["p1"])["pair_id"]) == ["p1"]


def test_champion_history_round_trip(any_storage):
    import dagster as dg

    from replyassets.defs.champion import HISTORY_COLUMNS, _history

    assert _history(any_storage).empty
    rows = pd.DataFrame([{"promoted_at": pd.Timestamp("2025-01-0%d" % (i + 1)), "experiment": f"e{i}",
                          "adapter_path": f"/a/{i}", "adapter_sha256": "0" * 64, "curated_set_hash": "h",
                          "win_rate": 0.6 + i / 100, "p_holm": 0.01, "reason": "promote", "run_id": f"r{i}"}
                         for i in range(2)], columns=HISTORY_COLUMNS)

    @dg.asset(name="champion")
    def champion() -> pd.DataFrame:  # the champion asset's table, written as the IO manager writes it
        return rows

    assert dg.materialize([champion], resources={"io_manager": io_manager_for(any_storage)}).success
    got = _history(any_storage)
    assert list(got["experiment"]) == ["e0", "e1"] and list(got.columns) == HISTORY_COLUMNS


@pytest.mark.parametrize("backend", ["duckdb", "ducklake"])
def test_settings_choose_the_io_manager_backend(backend, monkeypatch, tmp_path):
    from replyassets import settings as settings_mod
    from replyassets.defs.resources import resources_for_profile

    monkeypatch.setenv("REPLYASSETS_STORAGE_BACKEND", backend)
    monkeypatch.setenv("REPLYASSETS_DUCKLAKE_DATA_PATH", str(tmp_path / "lake"))
    monkeypatch.setenv("REPLYASSETS_DATABASE", str(tmp_path / "x.duckdb"))
    monkeypatch.setenv(db.CATALOG_ENV, "host=h port=1 user=u password=topsecret dbname=d")
    settings_mod.get_settings.cache_clear()
    try:
        io = resources_for_profile("local")["io_manager"]
        storage = db.storage_from_settings()
    finally:
        settings_mod.get_settings.cache_clear()
    assert io.backend == backend == storage.backend
    assert "topsecret" not in repr(io) and "topsecret" not in str(io.model_dump())  # only the variable's name
    if backend == "ducklake":
        assert io.data_path == storage.data_path == str(tmp_path / "lake")
    else:
        assert io.database == str(tmp_path / "x.duckdb") == str(storage.database)
    assert settings_mod.load_settings("production").storage.backend == "ducklake"
    assert settings_mod.load_settings("local").storage.backend == "duckdb"
