"""Write frames through the project's storage (the transactional DuckDB IO manager) and read them back."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd


def store_partitioned(database: Path, tables: dict[str, pd.DataFrame], partition: str) -> None:
    """Materialize each frame as the ``partition`` partition of an asset named after its table,
    through ``ReplyAssetsDuckDBIOManager`` (partition_expr ``query``), as raw_tweets is stored."""
    import dagster as dg

    from replyassets.defs.storage import ReplyAssetsDuckDBIOManager

    parts = dg.StaticPartitionsDefinition([partition])
    assets = []
    for table, frame in tables.items():
        def make(table=table, frame=frame):
            @dg.asset(name=table, partitions_def=parts, metadata={"partition_expr": "query"})
            def _asset() -> pd.DataFrame:
                return frame

            return _asset

        assets.append(make())
    result = dg.materialize(
        assets,
        partition_key=partition,
        resources={"io_manager": ReplyAssetsDuckDBIOManager(database=str(database), schema="main")},
    )
    assert result.success


def read_table(database: Path, table: str, where: str = "", params: list | None = None) -> pd.DataFrame:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(f"SELECT * FROM main.{table} {where}", params or []).df()
    finally:
        con.close()


def table_names(database: Path) -> list[str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return sorted(r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall())
    finally:
        con.close()


def integrity_ok(database: Path) -> None:
    """The file opens, every table can be scanned in full, and a checkpoint succeeds."""
    con = duckdb.connect(str(database))
    try:
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall():
            con.execute(f'SELECT * FROM main."{name}"').fetchall()
        con.execute("CHECKPOINT").fetchall()
    finally:
        con.close()


def content_equal(a: pd.DataFrame, b: pd.DataFrame, key: list[str], ignore: tuple[str, ...] = ()) -> bool:
    """Same rows (as multisets) on the shared content columns, ignoring ``ignore``."""
    cols = sorted((set(a.columns) & set(b.columns)) - set(ignore))
    def norm(df: pd.DataFrame) -> pd.DataFrame:
        out = df[cols].copy()
        for c in cols:
            out[c] = out[c].astype("string").fillna("<null>")
        return out.sort_values(key + [c for c in cols if c not in key]).reset_index(drop=True)
    return norm(a).equals(norm(b))
