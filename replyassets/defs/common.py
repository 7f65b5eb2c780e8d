"""Shared constants and small helpers for the asset modules."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dagster as dg
import pandas as pd

from replyassets.settings import Settings, get_settings

# Every step that opens the DuckDB file runs in this pool; dagster.yaml limits it to 1.
DUCKDB_POOL = "duckdb"
OWNERS = ["team:ml-data"]
QUERY_PARTITIONS = dg.DynamicPartitionsDefinition(name="query")


def settings() -> Settings:
    return get_settings()


def frame_hash(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    """Order-independent content hash of a frame (used as the Dagster data version).

    Floats enter as 10 significant digits, so the same inputs give the same version in any process.
    """
    cols = sorted(columns or list(df.columns))
    if df.empty:
        return hashlib.sha256(("|".join(cols)).encode()).hexdigest()
    sub = df[cols].copy()
    for c in cols:
        if pd.api.types.is_float_dtype(sub[c]):
            # Scores (language confidence, toxicity, similarity) differ in the last bits from one
            # process to another; canonical 10-significant-digit text keeps the version stable.
            sub[c] = sub[c].map(lambda v: "\x00" if pd.isna(v) else f"{v + 0.0:.10g}").astype("string")
        else:
            sub[c] = sub[c].astype("string").fillna("\x00")
    row_hashes = pd.util.hash_pandas_object(sub, index=False).sort_values().to_numpy()
    return hashlib.sha256(row_hashes.tobytes() + "|".join(cols).encode()).hexdigest()


def table_md(rows: list[dict[str, Any]], columns: list[str] | None = None) -> dg.MetadataValue:
    """A small list of dicts as a markdown table for the UI."""
    if not rows:
        return dg.MetadataValue.md("_(none)_")
    cols = columns or list(rows[0].keys())
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return dg.MetadataValue.md("\n".join(out))


def _cell(v: Any) -> str:
    s = "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    return s.replace("|", "\\|").replace("\n", " ")[:200]


def funnel_table(funnel_rows: list[dict[str, Any]]) -> dg.MetadataValue:
    """Funnel rows ``{"stage": ..., "count": ...}`` as a typed Dagster table."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn("stage", "string"), dg.TableColumn("count", "int")]
    )
    records = [dg.TableRecord({"stage": str(r["stage"]), "count": int(r["count"])}) for r in funnel_rows]
    return dg.MetadataValue.table(records=records, schema=schema)


def histogram_md(values: pd.Series, bins: int = 10, title: str = "") -> dg.MetadataValue:
    """A text histogram (renders in the UI without images)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return dg.MetadataValue.md(f"**{title}**: no values")
    counts, edges = pd.cut(v, bins=bins, retbins=True, include_lowest=True)
    vc = counts.value_counts(sort=False)
    peak = max(int(vc.max()), 1)
    lines = [f"**{title}** (n={len(v)}, mean={v.mean():.3g}, median={v.median():.3g})", "", "```"]
    for interval, n in vc.items():
        bar = "#" * int(round(30 * n / peak))
        lines.append(f"{interval.left:>9.3g} – {interval.right:<9.3g} {n:>6} {bar}")
    lines.append("```")
    return dg.MetadataValue.md("\n".join(lines))


def json_md(obj: Any) -> dg.MetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(obj, default=str)))


def column_schema(model) -> dg.TableSchema:
    """A Pandera DataFrameModel as a Dagster TableSchema (``dagster/column_schema`` metadata)."""
    schema = model.to_schema()
    columns = []
    for name, col in schema.columns.items():
        desc = getattr(col, "description", None) or ""
        checks = ", ".join(str(c.name or c) for c in (col.checks or []))
        columns.append(
            dg.TableColumn(
                name=name,
                type=str(col.dtype),
                description=(desc + (f" [{checks}]" if checks else "")).strip() or None,
                constraints=dg.TableColumnConstraints(nullable=bool(col.nullable), unique=bool(col.unique)),
            )
        )
    return dg.TableSchema(columns=columns)


def derived_code_version(*modules: str, settings_paths: tuple[str, ...] = ()) -> str:
    """The asset's code version: a hash of the code it runs and the settings it reads.

    See ``replyassets/core/code_version.py``. Computed when the definitions load, with the
    active profile's settings, so a changed threshold or changed logic marks the asset stale.
    """
    from replyassets.core.code_version import code_version

    return code_version(modules, get_settings(), settings_paths)


def latest_materialization(instance: dg.DagsterInstance, key: str, partition: str | None = None):
    """The latest ``AssetMaterialization`` of ``key`` (and ``partition``), or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    return records[0].asset_materialization if records else None
