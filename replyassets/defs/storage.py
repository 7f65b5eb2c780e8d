"""The IO manager: every asset table on the configured storage, written transactionally.

Built on dagster-duckdb's ``DuckDBPandasIOManager``, but every connection comes from
``replyassets/core/db.py`` (the DuckDB file with its inter-process lock, or the DuckLake), and:

- a write is one transaction: the partition's (or table's) old rows are deleted and the new
  ones inserted, committed together or not at all (the stock IO manager autocommits the two,
  so a run killed between them loses the partition);
- on DuckLake a commit that conflicts with another process's is retried, the whole write
  again on a fresh connection (``storage.ducklake.max_retries`` times);
- tables are typed by their contracts: a table is created with the column types of its Pandera
  model (``replyassets/schemas.py``, through ``schemas.duckdb_type``), never from the frame's
  inferred types, so an empty frame creates an empty table of the right types; columns the
  model lacks take their frame's types (``frame_types``); inserts go ``BY NAME`` and new
  columns are added to the table;
- a table whose stored types differ from its contract is repaired in the write's transaction
  when the write replaces the whole table (an unpartitioned asset), and refused with
  ``TableContractError`` when it replaces partitions: the message names the table, each column,
  both types and the command that rewrites only that table (``replyassets retype``);
- every materialization records ``storage_backend`` and, on DuckLake, the snapshot its commit
  made (``lake_snapshot_id``: read the exact rows back with ``SELECT ... FROM <table> AT
  (VERSION => id)``); on the DuckDB file ``lake_snapshot_id`` is null (a file has no versions).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from dagster import (
    DagsterError,
    DagsterInvariantViolationError,
    DagsterType,
    InputContext,
    MetadataValue,
    OutputContext,
    TableSchemaMetadataValue,
    TimeWindow,
)

# Private Dagster APIs (no public path exists; docs/design.md, "Private Dagster APIs";
# replyassets_tests/defs/test_private_apis_storage.py fails when one is gone).
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.storage.db_io_manager import DbIOManager
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler
from pydantic import Field

from replyassets.core import db
from replyassets.schemas import duckdb_type

if TYPE_CHECKING:
    from dagster._core.storage.db_io_manager import TableSlice

SNAPSHOT_KEY = "lake_snapshot_id"
BACKEND_KEY = "storage_backend"
REPAIRED_KEY = "storage_repaired_columns"  # contract columns retyped by this write
RETYPE_COMMAND = "replyassets retype"
UNTYPED_EMPTY = "VARCHAR"  # an object column the contract lacks, with no value to infer a type from


class TableContractError(db.StorageError):
    """A stored table's column types differ from its contract and this write cannot repair it."""


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


def _partition_where(table_slice: TableSlice) -> tuple[str, list]:
    """The WHERE clause selecting a slice's partitions, its values passed as parameters (the
    partition expressions come from the assets' code, never from user input)."""
    clauses: list[str] = []
    params: list = []
    for dim in table_slice.partition_dimensions or []:
        if isinstance(dim.partitions, TimeWindow):
            # the window's wall-clock bounds in the partitions' timezone, as dagster-duckdb compares them
            start, end = (t.replace(tzinfo=None) if isinstance(t, datetime) else t for t in dim.partitions)
            clauses.append(f"{dim.partition_expr} >= ? AND {dim.partition_expr} < ?")
            params += [start, end]
        else:
            keys = list(dim.partitions)
            if not keys:
                clauses.append("false")
                continue
            clauses.append(f"{dim.partition_expr} IN ({', '.join('?' * len(keys))})")
            params += keys
    return " AND ".join(clauses), params


def _qualified(table_slice: TableSlice) -> str:
    return f"{table_slice.schema}.{table_slice.table}"


class TransactionalDuckDbClient:
    """The SQL of the IO manager's reads and writes (the ``DbClient`` interface that
    ``DbIOManager`` calls), on connections from ``core/db.py``, values always as parameters."""

    @staticmethod
    def select(table_slice: TableSlice) -> tuple[str, list]:
        """The slice's rows in a fixed order: by the partition column(s), then in the order the
        rows were inserted (``rowid`` on the file and on DuckLake). Without it a scan returns
        rows in storage order, which differs between the backends and with the order partitions
        were written in, and order-sensitive consumers (dedup's tie-break between copies of one
        reply under two queries, embedding batches) would differ too."""
        cols = ", ".join(f'"{c}"' for c in table_slice.columns) if table_slice.columns else "*"
        table = _qualified(table_slice)
        sql = f"SELECT {cols} FROM {table}"
        where, params = _partition_where(table_slice)
        if where:
            sql += f" WHERE {where}"
        keys = [d.partition_expr for d in table_slice.partition_dimensions or []]
        return sql + " ORDER BY " + ", ".join([*keys, "rowid"]), params

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        """:meth:`select` with its values written in (for display: the ``Query`` metadata)."""
        sql, params = TransactionalDuckDbClient.select(table_slice)
        for value in params:
            sql = sql.replace("?", "'" + str(value).replace("'", "''") + "'", 1)
        return sql

    @staticmethod
    def get_table_name(table_slice: TableSlice) -> str:
        """``catalog.schema.table`` as DuckDB names it (the catalog of a database file is its
        stem: ``replyassets.main.eval_report``), not the file's absolute path."""
        prefix = f"{Path(str(table_slice.database)).stem}." if table_slice.database else ""
        return prefix + _qualified(table_slice)

    @staticmethod
    def ensure_schema_exists(context: OutputContext, table_slice: TableSlice, connection) -> None:
        found = _run(connection, "SELECT count(*) FROM duckdb_schemas() WHERE database_name = current_database() "
                                 "AND schema_name = ?", [table_slice.schema])[0][0]
        if not found:
            _run(connection, f"CREATE SCHEMA IF NOT EXISTS {table_slice.schema}")

    @staticmethod
    def delete_table_slice(context: OutputContext, table_slice: TableSlice, connection) -> None:
        """Delete the rows the write replaces: the slice's partitions, or every row. Inside a
        transaction a failed DELETE aborts it: look before deleting."""
        if not _table_exists(connection, table_slice):
            return
        where, params = _partition_where(table_slice)
        table = _qualified(table_slice)
        _run(connection, f"DELETE FROM {table}" + (f" WHERE {where}" if where else ""), params)


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


def _table_exists(connection, table_slice: TableSlice) -> bool:
    return db.table_exists(connection, table_slice.table, table_slice.schema)


def contract_types(dagster_type: DagsterType | None, table: str) -> dict[str, str]:
    """The DuckDB type of every column of an output's contract: the Pandera model
    (``replyassets/schemas.py``) as ``dagster_pandera`` records it on the output's Dagster type
    (its ``schema`` metadata), each dtype through :func:`replyassets.schemas.duckdb_type`.
    Empty for an output without a contract; an ``object`` column of a contract is left to the
    frame like a column the contract lacks."""
    schema = (dagster_type.metadata or {}).get("schema") if dagster_type is not None else None
    if not isinstance(schema, TableSchemaMetadataValue):
        return {}
    out: dict[str, str] = {}
    for col in schema.schema.columns:
        try:
            sql_type = duckdb_type(col.type)
        except ValueError as exc:
            raise TableContractError(
                f"table {table}: column {col.name} of contract {dagster_type.display_name} has dtype "
                f"{col.type!r}, which has no DuckDB type (replyassets/schemas.py::duckdb_type)"
            ) from exc
        if sql_type is not None:
            out[col.name] = sql_type
    return out


def frame_types(obj: pd.DataFrame, contract: dict[str, str], connection) -> dict[str, str]:
    """The stored type of every column a write needs: the contract's columns with the
    contract's types, whatever the frame holds (an empty frame too), then each column the
    contract lacks (contracts are not strict) typed from the frame: its pandas dtype through
    the same mapping, or, for an ``object`` column, the type DuckDB infers from its values
    (``VARCHAR`` when it holds none, never DuckDB's guess for an empty column)."""
    types = dict(contract)
    inferred: dict[str, str] | None = None
    for name in obj.columns:
        name = str(name)
        if name in types:
            continue
        sql_type = duckdb_type(obj[name].dtype)
        if sql_type is None and obj[name].notna().any():
            if inferred is None:
                connection.register("obj", obj)
                try:
                    inferred = {r[0]: r[1] for r in _run(connection, "DESCRIBE SELECT * FROM obj")}
                finally:
                    connection.unregister("obj")
            sql_type = inferred.get(name)
        types[name] = sql_type or UNTYPED_EMPTY
    return types


def _create(connection, table: str, types: dict[str, str]) -> None:
    _run(connection, f"CREATE TABLE {table} (" + ", ".join(f'"{c}" {t}' for c, t in types.items()) + ")")


def _drift_message(table: str, contract_name: str, drift: list[tuple[str, str, str]]) -> str:
    cols = "; ".join(f"column {c} is stored as {have}, its contract says {want}" for c, have, want in drift)
    command = " ".join([RETYPE_COMMAND, table, *(shlex.quote(f"{c}={want}") for c, _, want in drift)])
    return (
        f"table {table} does not match its contract {contract_name} (replyassets/schemas.py): {cols}. "
        f"A partitioned write replaces only its own partitions, so it does not rewrite the table. "
        f"Fix it with `{command}` (rewrites only {table} in one transaction, keeping its rows; "
        f"nothing else is touched), then run again."
    )


class ByNamePandasTypeHandler(DuckDBPandasTypeHandler):
    """Tables typed by their contracts, written ``BY NAME``."""

    @staticmethod
    def prepare_table(context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection) -> list[str]:
        """Make the table ready for the write, before the slice's old rows are deleted (DuckDB
        refuses to commit a transaction that alters a table after deleting from it):

        - missing: created with :func:`frame_types` (the contract's types), even for an empty frame;
        - a contract column stored with another type (an older version, an earlier bug):
          repaired (dropped and created typed, in the write's transaction) when the write
          replaces the whole table; refused with :class:`TableContractError` naming the table,
          the columns, both types and the command that fixes it when it replaces partitions;
        - columns the table lacks are added with their types.

        Returns the repaired columns as ``column: stored -> contract``."""
        table = _qualified(table_slice)
        dagster_type = getattr(context, "dagster_type", None)
        contract = contract_types(dagster_type, table)
        types = frame_types(obj, contract, connection)
        if not _table_exists(connection, table_slice):
            _create(connection, table, types)
            return []
        have = db.column_types(connection, table_slice.table, table_slice.schema)
        drift = [(c, have[c], want) for c, want in contract.items() if c in have and have[c] != want]
        repaired: list[str] = []
        if drift:
            if table_slice.partition_dimensions:
                raise TableContractError(_drift_message(table, dagster_type.display_name, drift))
            _run(connection, f"DROP TABLE {table}")
            _create(connection, table, types)
            repaired = [f"{c}: {old} -> {new}" for c, old, new in drift]
            context.log.warning(f"{table}: repaired to its contract while replacing the whole table "
                                f"({'; '.join(repaired)})")
            return repaired
        for name, col_type in types.items():
            if name not in have:
                _run(connection, f'ALTER TABLE {table} ADD COLUMN "{name}" {col_type}')
        return repaired

    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection):
        """Insert the frame's rows (the IO manager prepared the table and deleted the slice)."""
        if len(obj):
            connection.register("obj", obj)
            try:
                table = _qualified(table_slice)
                _run(connection, f"INSERT INTO {table} BY NAME SELECT * FROM obj")
            finally:
                connection.unregister("obj")
        kind = "ducklake" if db.is_lake(connection) else "duckdb"
        return dict(
            TableMetadataSet(partition_row_count=obj.shape[0], storage_kind=kind)
            if context.has_partition_key
            else TableMetadataSet(row_count=obj.shape[0], storage_kind=kind)
        )

    def load_input(self, context: InputContext, table_slice: TableSlice, connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        sql, params = TransactionalDuckDbClient.select(table_slice)
        return connection.execute(sql, params).fetchdf()


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
            repaired = handler.prepare_table(context, table_slice, obj, conn)
            client.delete_table_slice(context, table_slice, conn)
            out = handler.handle_output(context, table_slice, obj, conn)
            return {**out, **({REPAIRED_KEY: "; ".join(repaired)} if repaired else {})}

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
        except DagsterError:  # already attached by the asset (DagsterInvalidMetadata)
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
    def type_handlers() -> Sequence[DuckDBPandasTypeHandler]:
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
