"""The graph on the DuckLake backend, through Dagster, on the bundled sample.

Every query partition of raw_tweets (with its rejections and validated_pairs), then
deduped_pairs and curated_set, once on the DuckDB file and once on a DuckLake (PostgreSQL
catalog, local data folder): the tables hold the same rows, and no DuckDB file is created on the
lake run (every store, the embedding cache and review decisions included, went to the lake).
curated_set records the snapshot its commit made; lora_adapter, trained on the lake, names
that snapshot; after curated_set changes, ``AT (VERSION => snapshot)`` still returns exactly
the rows the adapter was trained on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from replyassets.core import db
from replyassets.settings import PROJECT_ROOT
from replyassets_tests.defs.conftest import all_assets_and_checks

TABLES = ["raw_tweets", "raw_tweet_rejections", "validated_pairs", "deduped_pairs", "curated_set",
          "preference_pairs", "preference_kto"]
KEYS = {"raw_tweet_rejections": ["query", "item_id"], "preference_pairs": ["pair_id"]}
SETTINGS = {
    "curation": {"min_pairs": 100, "min_unique_tweets": 40, "min_unique_authors": 80},
    "training": {"max_steps": 4, "eval_steps": 2},
}


def _md(instance, key):
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    assert event is not None, f"{key} was not materialized"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _materialize(instance, resources, selection, partition=None):
    import dagster as dg

    result = dg.materialize(all_assets_and_checks(), selection=selection, partition_key=partition,
                            instance=instance, resources=resources, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def _graph(instance, resources, queries: list[str]) -> str:
    from replyassets.core.review import ReviewStore
    from replyassets.defs.collect import sync_query_partitions

    added, _ = sync_query_partitions(instance)
    assert added == queries
    for q in queries:
        _materialize(instance, resources, ["raw_tweets", "raw_tweet_rejections", "validated_pairs"], q)
    _materialize(instance, resources, ["deduped_pairs"])
    # a reviewer rejects one candidate through the review store, on this run's storage
    storage = db.storage_from_settings()
    with db.connect(storage) as con:
        rid = con.execute("SELECT min(reply_id) FROM main.deduped_pairs WHERE valid AND kept").fetchone()[0]
    ReviewStore(storage).record(rid, "reject", note="test")
    _materialize(instance, resources, ["curated_set"])
    _materialize(instance, resources, ["preference_pairs", "preference_kto"])
    return rid


def _differing_columns(a, b, key: list[str], ignore: tuple[str, ...] = ("collected_at",)) -> list[str]:
    """The columns whose values differ between the two tables' rows (matched by ``key``);
    floats compared to 9 significant digits (scores differ in their last bits run to run)."""
    import numpy as np

    cols = sorted((set(a.columns) | set(b.columns)) - set(ignore))
    missing = [c for c in cols if c not in a.columns or c not in b.columns]
    cols = [c for c in cols if c not in missing]
    x = a.sort_values(key).reset_index(drop=True)
    y = b.sort_values(key).reset_index(drop=True)
    if len(x) != len(y) or not x[key].astype(str).equals(y[key].astype(str)):
        return ["<rows>"]
    out = list(missing)
    for c in cols:
        u, v = x[c], y[c]
        if pd.api.types.is_float_dtype(u) and pd.api.types.is_float_dtype(v):
            same = np.isclose(u.to_numpy(float), v.to_numpy(float), rtol=1e-9, atol=0, equal_nan=True).all()
        else:
            same = u.astype("string").fillna("<null>").equals(v.astype("string").fillna("<null>"))
        if not same:
            out.append(c)
    return out


def _tables(storage: db.Storage) -> dict:
    with db.connect(storage) as con:
        return {t: con.execute(f"SELECT * FROM main.{t}").df() for t in TABLES}


@pytest.mark.slow
def test_graph_on_ducklake_equals_the_duckdb_file(dagster_project, lake_storage, tmp_path, monkeypatch):
    import dagster as dg

    from replyassets import settings as settings_mod
    from replyassets.core.curate import content_hash

    queries = [q["name"] for q in yaml.safe_load((PROJECT_ROOT / "config" / "queries.yaml").read_text())["queries"]]
    assert len(queries) >= 5
    overrides = tmp_path / "settings.yaml"
    overrides.write_text(yaml.safe_dump(SETTINGS))
    monkeypatch.setenv("REPLYASSETS_SETTINGS", str(overrides))
    p = dagster_project

    # -- 1. the DuckDB file
    rejected = _graph(p.instance, p.resources(), queries)
    file_storage = db.Storage("duckdb", database=p.database)
    on_file = _tables(file_storage)
    assert rejected not in set(on_file["curated_set"]["reply_id"])
    file_md = _md(p.instance, "curated_set")
    assert file_md["storage_backend"] == "duckdb" and file_md["lake_snapshot_id"] is None

    # -- 2. the DuckLake: same input, a fresh Dagster instance, no DuckDB file anywhere
    # a password in the catalog string (the test server trusts loopback, so it is only carried):
    # it must not reach the Dagster instance, the data folder or the lake's files
    secret = "lake-secret-8c1f2e"
    monkeypatch.setenv(db.CATALOG_ENV, f"{os.environ[db.CATALOG_ENV]} password={secret}")
    never = tmp_path / "never" / "replyassets.duckdb"
    monkeypatch.setenv("REPLYASSETS_DATABASE", str(never))
    monkeypatch.setenv("REPLYASSETS_STORAGE_BACKEND", "ducklake")
    monkeypatch.setenv("REPLYASSETS_DUCKLAKE_DATA_PATH", lake_storage.data_path)
    settings_mod.get_settings.cache_clear()
    lake_home = tmp_path / "lake_home"
    lake_home.mkdir()
    inst = dg.DagsterInstance.local_temp(str(lake_home))
    try:
        resources = p.resources()
        assert _graph(inst, resources, queries) == rejected
        on_lake = _tables(lake_storage)
        for t in TABLES:
            a, b = on_file[t], on_lake[t]
            assert len(a) == len(b) > 0, (t, len(a), len(b))
            key = KEYS.get(t, ["reply_id"])
            diff = _differing_columns(a, b, key)
            assert diff == [], f"{t}: the lake's rows differ from the file's"
        with db.connect(lake_storage) as con:  # the stores wrote to the lake too
            assert con.execute("SELECT count(*) FROM main.embedding_cache").fetchone()[0] > 0
            assert con.execute("SELECT reply_id, decision FROM main.review_decisions").fetchall() == [(rejected, "reject")]
        assert not never.exists() and not never.parent.exists()
        counts = {t: len(on_lake[t]) for t in TABLES}
        print(f"\nrows on both backends: {json.dumps(counts)}")

        # -- 3. curated_set's snapshot: the exact rows, by version
        curated = _md(inst, "curated_set")
        snapshot = curated["lake_snapshot_id"]
        assert curated["storage_backend"] == "ducklake" and isinstance(snapshot, int)
        with db.connect(lake_storage) as con:
            at = con.execute(f"SELECT * FROM main.curated_set AT (VERSION => {snapshot})").df()
        assert content_hash(at) == curated["content_hash"] == file_md["content_hash"]

        # -- lora_adapter trained on the lake names the snapshot it was trained on
        _materialize(inst, resources, ["base_model"])
        inst.add_dynamic_partitions("experiment", ["default"])
        _materialize(inst, resources, ["lora_adapter"], "default")
        lora = _md(inst, "lora_adapter")
        # the snapshot the set was read at: curated_set's, or a later one with the same rows (checked below)
        assert lora["curated_set_snapshot"] >= snapshot and lora["curated_set_hash"] == curated["content_hash"][:16]
        train_lines = Path(str(curated["train_file"])).read_text().count("\n")

        # -- curated_set changes (another target size): the adapter's snapshot still reads back exactly
        overrides.write_text(yaml.safe_dump({**SETTINGS, "curation": {**SETTINGS["curation"], "target_pairs": 150}}))
        settings_mod.get_settings.cache_clear()
        _materialize(inst, p.resources(), ["curated_set"])
        changed = _md(inst, "curated_set")
        assert changed["lake_snapshot_id"] > snapshot and changed["content_hash"] != curated["content_hash"]
        with db.connect(lake_storage) as con:
            now = con.execute("SELECT * FROM main.curated_set").df()
            then = con.execute(f"SELECT * FROM main.curated_set AT (VERSION => {lora['curated_set_snapshot']})").df()
        assert len(now) == changed["pairs"] != len(then) == curated["pairs"]
        assert content_hash(then) == curated["content_hash"]  # the set the adapter trained on, whole
        assert int((then["split"] == "train").sum()) == train_lines  # the rows of the file it trained on
        print(f"curated_set: snapshot {snapshot} ({len(then)} pairs, trained on), now snapshot "
              f"{changed['lake_snapshot_id']} ({len(now)} pairs)")
        leaked = [f for root in (lake_home, Path(p.data), Path(lake_storage.data_path)) for f in root.rglob("*")
                  if f.is_file() and secret.encode() in f.read_bytes()]
        assert leaked == []
    finally:
        inst.dispose()
        import shutil

        shutil.rmtree(Path(p.data) / "adapters", ignore_errors=True)
