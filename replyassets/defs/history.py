"""Queries of the Dagster instance's materialization history."""

from __future__ import annotations

import dagster as dg


def latest_materialization(instance: dg.DagsterInstance, key: str, partition: str | None = None):
    """The latest ``AssetMaterialization`` of ``key`` (and ``partition``), or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    return records[0].asset_materialization if records else None
