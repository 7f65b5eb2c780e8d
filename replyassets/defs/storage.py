"""The IO manager: every asset table on the configured storage, written transactionally.

Built on dagster-duckdb's ``DuckDBPandasIOManager``, but every connection comes from
``replyassets/core/db.py`` (the DuckDB file with its inter-process lock, or the DuckLake), and:

- a write is one transaction: the partition's (or table's) old rows are deleted and the new
  ones inserted, committed together or not at all (the stock IO manager autocommits the two,
  so a run killed between them loses the partition);
- on DuckLake a commit that conflicts with another process's is retried, the whole write
  again on a fresh connection (``storage.ducklake.max_retries`` times);
- inserts go ``BY NAME``, new columns are added to the table, and an empty frame still
  creates the table so downstream assets can read it;
- every materialization records ``storage_backend`` and, on DuckLake, the snapshot its commit
  made (``lake_snapshot_id``: read the exact rows back with ``SELECT ... FROM <table> AT
  (VERSION => id)``); on the DuckDB file ``lake_snapshot_id`` is null (a file has no versions).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import InputContext, MetadataValue, OutputContext
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.errors import DagsterInvalidMetadata, DagsterInvariantViolationError
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDbClient, _get_cleanup_statement
from dagster_duckdb_pandas import DuckDBPandasIOManager
from dagster_duckdb_pandas.duckdb_pandas_type_handler import DuckDBPandasTypeHandler
from pydantic import Field

from replyassets.core import db

SNAPSHOT_KEY = "lake_snapshot_id"
BACKEND_KEY = "storage_backend"


def _storage_of(config: dict) -> db.Storage:
    backend = config.get("backend") or "duckdb"
    if backend == "ducklake":
        return db.Storage(
            "ducklake", data_path=config.get("data_path"), catalog_env=config.get("catalog_env") or db.CATALOG_ENV,
            lock_timeout_s=float(config.get("lock_timeout_s") or db.DEFAULT_LOCK_TIMEOUT_S),
            max_retries=int(config.get("max_retries", db.DEFAULT_MAX_RETRIES)),
        )
    return db.Storage("duckdb", database=Path(config["database"]),
                      lock_timeout_s=float(config.get("lock_timeout_s") or db.DEFAULT_LOCK_TIMEOUT_S))


class TransactionalDuckDbClient(DuckDbClient):
    """Connections through ``core/db.py``; a write's statements run in one transaction."""

    @staticmethod
    @contextmanager
    def connect(context, table_slice):
        with db.connect(_storage_of(context.resource_config), purpose=_purpose(context)) as conn:
            _run(conn, "BEGIN TRANSACTION")
            try:
                yield conn
            except BaseException:
                _run_quietly(conn, "ROLLBACK")
                raise
            _run(conn, "COMMIT")

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        """dagster-duckdb's SELECT, in a fixed order: by the partition column(s), then in the
        order the rows were inserted (``rowid`` on the file and on DuckLake). Without it a scan
        returns rows in storage order, which differs between the backends and with the order
        partitions were written in, and order-sensitive consumers (dedup's tie-break between
        copies of one reply under two queries, embedding batches) would differ too."""
        keys = [d.partition_expr for d in table_slice.partition_dimensions or []]
        return DuckDbClient.get_select_statement(table_slice) + " ORDER BY " + ", ".join([*keys, "rowid"])

    @staticmethod
    def ensure_schema_exists(context: OutputContext, table_slice: TableSlice, connection) -> None:
        found = _run(connection, "SELECT count(*) FROM duckdb_schemas() WHERE database_name = current_database() "
                                 "AND schema_name = ?", [table_slice.schema])[0][0]
        if not found:
            _run(connection, f"CREATE SCHEMA IF NOT EXISTS {table_slice.schema}")

    @staticmethod
    def delete_table_slice(context: OutputContext, table_slice: TableSlice, connection) -> None:
        # Inside a transaction a failed DELETE aborts it: look before deleting.
        if _table_exists(connection, table_slice):
            _run(connection, _get_cleanup_statement(table_slice))


def _purpose(context) -> str:
    try:
        key = "/".join(context.asset_key.path) if context.has_asset_key else context.name
    except Exception:  # noqa: BLE001 - only a label for whoever waits for the lock
        key = "asset"
    try:
        run = context.run_id[:8]
    except Exception:  # noqa: BLE001
        run = "?"
    return f"dagster run {run}: {key}"


def _run(connection, sql: str, params=None):
    """Execute and drain the result (DuckDB refuses new work on a connection with a pending result)."""
    return connection.execute(sql, params).fetchall() if params is not None else connection.execute(sql).fetchall()


def _run_quietly(connection, sql: str) -> None:
    try:
        _run(connection, sql)
    except Exception:  # noqa: BLE001 - a rollback after a failed commit finds no transaction
        pass


def _table_exists(connection, table_slice: TableSlice) -> bool:
    return db.table_exists(connection, table_slice.table, table_slice.schema)


class ByNamePandasTypeHandler(DuckDBPandasTypeHandler):
    @staticmethod
    def add_missing_columns(table_slice: TableSlice, obj: pd.DataFrame, connection) -> None:
        """Add the frame's new columns to an existing table. Called before the partition's rows
        are deleted: DuckDB refuses to commit a transaction that alters a table after deleting
        from it ("another transaction has altered this table")."""
        if not _table_exists(connection, table_slice):
            return
        table = f"{table_slice.schema}.{table_slice.table}"
        have = {
            r[0]
            for r in connection.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                "AND schema_name = ? AND table_name = ?",
                [table_slice.schema, table_slice.table],
            ).fetchall()
        }
        connection.register("obj", obj)
        try:
            described = connection.execute("DESCRIBE SELECT * FROM obj").fetchall()
        finally:
            connection.unregister("obj")
        for name, col_type, *_ in described:
            if name not in have:
                _run(connection, f'ALTER TABLE {table} ADD COLUMN "{name}" {col_type}')

    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection):
        table = f"{table_slice.schema}.{table_slice.table}"
        self.add_missing_columns(table_slice, obj, connection)  # a no-op when the IO manager did it first
        connection.register("obj", obj)
        try:
            if not _table_exists(connection, table_slice):
                _run(connection, f"CREATE TABLE {table} AS SELECT * FROM obj")
            elif len(obj):
                _run(connection, f"INSERT INTO {table} BY NAME SELECT * FROM obj")
        finally:
            connection.unregister("obj")

        kind = "ducklake" if db.is_lake(connection) else "duckdb"
        return {
            **(
                TableMetadataSet(partition_row_count=obj.shape[0], storage_kind=kind)
                if context.has_partition_key
                else TableMetadataSet(row_count=obj.shape[0], storage_kind=kind)
            ),
        }


    def load_input(self, context: InputContext, table_slice: TableSlice, connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        return connection.execute(TransactionalDuckDbClient.get_select_statement(table_slice)).fetchdf()


class _TransactionalDbIOManager(DbIOManager):
    """``DbIOManager`` whose write is one :func:`replyassets.core.db.transaction`: retried as a
    whole on a DuckLake conflict, tagged with a commit message, its snapshot recorded."""

    def __init__(self, *, storage: db.Storage, **kwargs):
        super().__init__(**kwargs)
        self._storage = storage

    def handle_output(self, context: OutputContext, obj: object) -> None:
        if obj is None:
            raise DagsterInvariantViolationError(
                "Unexpected 'None' output value. If a 'None' value is intentional, set the output"
                " type to None by adding return type annotation '-> None'.",
            )
        self._check_supported_type(type(obj))
        table_slice = self._get_table_slice(context, context)
        handler = self._resolve_handler(type(obj))
        client = self._db_client

        def write(conn):
            client.ensure_schema_exists(context, table_slice, conn)
            if isinstance(handler, ByNamePandasTypeHandler):
                handler.add_missing_columns(table_slice, obj, conn)
            client.delete_table_slice(context, table_slice, conn)
            return handler.handle_output(context, table_slice, obj, conn)

        def retried(attempt: int, exc: BaseException) -> None:
            context.log.warning(f"{table_slice.table}: write conflict with another writer, retry {attempt}: "
                                f"{str(exc).splitlines()[-1]}")

        partition = ",".join(context.asset_partition_keys) if context.has_asset_partitions else ""
        message = f"{table_slice.schema}.{table_slice.table}" + (f" [{partition}]" if partition else "")
        try:
            message += f" (run {context.run_id})"
        except Exception:  # noqa: BLE001 - outside a run (direct IO manager calls in tests)
            pass
        done = db.transaction(write, self._storage, purpose=_purpose(context), commit_message=message,
                              on_retry=retried)
        context.add_output_metadata({
            **(done.value or {}),
            "Query": client.get_select_statement(table_slice),
            BACKEND_KEY: self._storage.backend,
            SNAPSHOT_KEY: MetadataValue.int(done.snapshot_id) if done.snapshot_id is not None else MetadataValue.null(),
            "storage_write_retries": done.retries,
        })
        try:
            context.add_output_metadata(dict(TableMetadataSet(table_name=client.get_table_name(table_slice))))
        except DagsterInvalidMetadata:
            pass

    def load_input(self, context: InputContext) -> object:
        obj_type = context.dagster_type.typing_type
        load_type = self._default_load_type if obj_type is Any and self._default_load_type is not None else obj_type
        self._check_supported_type(load_type)
        table_slice = self._get_table_slice(context, context.upstream_output)  # type: ignore[arg-type]
        with db.connect(self._storage, purpose=_purpose(context)) as conn:
            return self._resolve_handler(load_type).load_input(context, table_slice, conn)


class ReplyAssetsDuckDBIOManager(DuckDBPandasIOManager):
    """``DuckDBPandasIOManager`` on the project's storage, with transactional, schema-tolerant
    writes. ``backend``: ``duckdb`` (``database`` is the file) or ``ducklake`` (``data_path``;
    the catalog's connection string is read from the environment variable ``catalog_env`` when
    a connection opens, never stored in this config)."""

    backend: str = Field(default="duckdb", description="duckdb (the file `database`) or ducklake")
    data_path: str | None = Field(default=None, description="DuckLake data path (folder or object-store URL)")
    catalog_env: str = Field(default=db.CATALOG_ENV, description="env var holding the DuckLake catalog's libpq string")
    lock_timeout_s: float = Field(default=db.DEFAULT_LOCK_TIMEOUT_S, description="wait for a locked DuckDB file")
    max_retries: int = Field(default=db.DEFAULT_MAX_RETRIES, description="retries of a conflicting DuckLake commit")

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [ByNamePandasTypeHandler()]

    def storage(self) -> db.Storage:
        return _storage_of({"backend": self.backend, "database": self.database, "data_path": self.data_path,
                            "catalog_env": self.catalog_env, "lock_timeout_s": self.lock_timeout_s,
                            "max_retries": self.max_retries})

    def create_io_manager(self, context) -> DbIOManager:
        return _TransactionalDbIOManager(
            storage=self.storage(),
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="ReplyAssetsDuckDBIOManager",
        )
