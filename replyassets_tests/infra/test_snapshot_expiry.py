"""Expiring old DuckLake snapshots keeps the ones adapters name (``core.db.expire_snapshots``)."""

from __future__ import annotations

import duckdb
import pytest

from replyassets.core import db


def _write(storage, rows):
    def fn(con):
        con.execute("CREATE TABLE IF NOT EXISTS main.t (x INTEGER)")
        con.execute("DELETE FROM main.t")
        con.execute("INSERT INTO main.t SELECT range FROM range(?, ?)", list(rows))
    return db.transaction(fn, storage, commit_message=f"rows {rows[0]}-{rows[1]}").snapshot_id


def test_expiry_keeps_the_named_snapshots_and_the_latest(lake_storage):
    s1 = _write(lake_storage, (0, 3000))
    s2 = _write(lake_storage, (3000, 5000))  # an adapter was trained on this one
    s3 = _write(lake_storage, (5000, 5500))
    assert s1 < s2 < s3

    plan = db.expire_snapshots(lake_storage, older_than_days=0, keep=[s2], dry_run=True)
    assert s1 in plan["expired"] and s2 not in plan["expired"] and s3 not in plan["expired"]
    assert plan["kept"] == [s2] and plan["files_deleted"] == 0
    with db.connect(lake_storage) as con:  # a dry run changes nothing
        assert con.execute(f"SELECT count(*) FROM main.t AT (VERSION => {s1})").fetchone()[0] == 3000

    done = db.expire_snapshots(lake_storage, older_than_days=0, keep=[s2])
    assert done["expired"] == plan["expired"] and done["files_deleted"] >= 1
    with db.connect(lake_storage) as con:
        assert con.execute(f"SELECT min(x), max(x) FROM main.t AT (VERSION => {s2})").fetchone() == (3000, 4999)
        assert con.execute("SELECT count(*) FROM main.t").fetchone()[0] == 500
        with pytest.raises(duckdb.Error):
            con.execute(f"SELECT count(*) FROM main.t AT (VERSION => {s1})").fetchall()

    # nothing is old enough with a week's margin: nothing expires
    assert db.expire_snapshots(lake_storage, older_than_days=7)["expired"] == []


def test_expiry_on_the_file_backend_and_bad_input(tmp_path):
    storage = db.Storage("duckdb", database=tmp_path / "x.duckdb")
    assert db.expire_snapshots(storage, older_than_days=30)["expired"] == []
    with pytest.raises(ValueError, match="older_than_days"):
        db.expire_snapshots(storage, older_than_days=-1)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_the_maintenance_job_keeps_what_adapters_were_trained_on(lake_storage, monkeypatch):
    """The ``expire_lake_snapshots`` job reads every ``lora_adapter`` materialization's
    ``curated_set_snapshot`` from the Dagster instance and keeps those snapshots."""
    import dagster as dg

    from replyassets.defs.schedules import expire_snapshots_job

    monkeypatch.setenv("REPLYASSETS_STORAGE_BACKEND", "ducklake")
    monkeypatch.setenv("REPLYASSETS_DUCKLAKE_DATA_PATH", lake_storage.data_path)
    s1 = _write(lake_storage, (0, 3000))
    s2 = _write(lake_storage, (3000, 5000))
    _write(lake_storage, (5000, 5500))
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "lora_adapter", partition="default", metadata={"curated_set_snapshot": s2}))
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "lora_adapter", partition="r8", metadata={"curated_set_snapshot": None}))
        result = expire_snapshots_job.execute_in_process(
            instance=instance, run_config={"ops": {"expire_old_snapshots": {"config": {"older_than_days": 0}}}})
        assert result.success
        out = result.output_for_node("expire_old_snapshots")
    assert s1 in out["expired"] and s2 not in out["expired"] and out["kept"] == [s2]
    with db.connect(lake_storage) as con:
        assert con.execute(f"SELECT count(*) FROM main.t AT (VERSION => {s2})").fetchone()[0] == 2000
