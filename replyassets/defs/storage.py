"""DuckDB storage through dagster-duckdb, made transactional.

The stock ``DuckDBPandasIOManager`` deletes a partition's rows and inserts the new ones in
two autocommitted statements: a run killed between them loses the partition, and a frame
whose columns changed since the table was created cannot be inserted. Here each write is
one transaction (delete + insert commit together or not at all), inserts go ``BY NAME``,
new columns are added to the table, and empty frames still create the table so downstream
assets can read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import pandas as pd
from dagster import OutputContext
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDbClient, _get_cleanup_statement
from dagster._core.definitions.metadata import TableMetadataSet
from dagster_duckdb_pandas import DuckDBPandasIOManager
from dagster_duckdb_pandas.duckdb_pandas_type_handler import DuckDBPandasTypeHandler


class TransactionalDuckDbClient(DuckDbClient):
    @staticmethod
    @contextmanager
    def connect(context, table_slice):
        with DuckDbClient.connect(context, table_slice) as conn:
            _run(conn, "BEGIN TRANSACTION")
            try:
                yield conn
            except BaseException:
                _run(conn, "ROLLBACK")
                raise
            _run(conn, "COMMIT")

    @staticmethod
    def ensure_schema_exists(context: OutputContext, table_slice: TableSlice, connection) -> None:
        _run(connection, f"CREATE SCHEMA IF NOT EXISTS {table_slice.schema}")

    @staticmethod
    def delete_table_slice(context: OutputContext, table_slice: TableSlice, connection) -> None:
        # Inside a transaction a failed DELETE aborts it: look before deleting.
        if _table_exists(connection, table_slice):
            _run(connection, _get_cleanup_statement(table_slice))


def _run(connection, sql: str, params=None):
    """Execute and drain the result (DuckDB 2 refuses new work while a result is pending)."""
    return connection.execute(sql, params).fetchall() if params is not None else connection.execute(sql).fetchall()


def _table_exists(connection, table_slice: TableSlice) -> bool:
    rows = _run(
        connection,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [table_slice.schema, table_slice.table],
    )
    return bool(rows[0][0])


class ByNamePandasTypeHandler(DuckDBPandasTypeHandler):
    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection):
        table = f"{table_slice.schema}.{table_slice.table}"
        connection.register("obj", obj)
        try:
            if not _table_exists(connection, table_slice):
                _run(connection, f"CREATE TABLE {table} AS SELECT * FROM obj")
            else:
                have = {
                    r[0]
                    for r in connection.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                        [table_slice.schema, table_slice.table],
                    ).fetchall()
                }
                described = connection.execute("DESCRIBE SELECT * FROM obj").fetchall()
                for name, col_type, *_ in described:
                    if name not in have:
                        _run(connection, f'ALTER TABLE {table} ADD COLUMN "{name}" {col_type}')
                if len(obj):
                    _run(connection, f"INSERT INTO {table} BY NAME SELECT * FROM obj")
        finally:
            connection.unregister("obj")

        return {
            **(
                TableMetadataSet(partition_row_count=obj.shape[0], storage_kind="duckdb")
                if context.has_partition_key
                else TableMetadataSet(row_count=obj.shape[0], storage_kind="duckdb")
            ),
        }


class ReplyAssetsDuckDBIOManager(DuckDBPandasIOManager):
    """``DuckDBPandasIOManager`` with transactional, schema-tolerant writes."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [ByNamePandasTypeHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="ReplyAssetsDuckDBIOManager",
        )
