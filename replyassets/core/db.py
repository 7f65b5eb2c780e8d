"""One way to open the project's storage: :func:`connect` (and :func:`transaction` for writes).

Every table of the project is opened through this module: the Dagster IO manager
(``replyassets/defs/storage.py``), collection checkpoints, the embedding cache, review
decisions, the judge's verdict cache, human ratings and the leaderboard/champion tables. It
imports no Dagster.

    from replyassets.core import db

    with db.connect() as con:                 # the configured storage; closed on exit
        n = con.execute("SELECT count(*) FROM main.raw_tweets").fetchone()[0]

    with db.connect("/tmp/x.duckdb") as con:  # a given DuckDB file (tests, a CLI's --db)
        ...

    def replace(con):                         # several statements, one transaction
        con.execute("DELETE FROM main.t WHERE query = ?", [q])
        con.execute("INSERT INTO main.t SELECT * FROM frame")

    db.transaction(replace)                   # commit or roll back; DuckLake conflicts retried

The *target* of both is ``None`` (the storage the settings name: ``storage.backend``), a path
(a DuckDB file) or a :class:`Storage` (:func:`storage_from_settings` builds one). Table names are
the same on every backend (``main.raw_tweets``).

Backends
--------
``duckdb`` (the ``local`` profile): one DuckDB file. DuckDB lets one process at a time open a
file for writing, so :func:`connect` holds an exclusive ``fcntl`` lock on ``<file>.lock`` for as
long as its connection is open, and nobody else's. Another process that wants the file waits
for the lock (up to ``storage.lock_timeout_s``) instead of failing with DuckDB's "Could not set
lock on file"; a timeout raises :class:`StorageBusy`, naming the holder (pid, host, purpose,
since when). The operating system drops the lock of a process that dies, so a lock is never
stale. A process that opens the file without this module (a DuckDB shell) is waited for too:
DuckDB's own lock error is retried until the same deadline. The lock is re-entrant within a
thread and serializes the threads of a process.

``ducklake`` (the ``production`` profile): a DuckLake whose catalog is a PostgreSQL database
(libpq keyword string in the environment variable ``REPLYASSETS_DUCKLAKE_CATALOG``, e.g.
``host=db port=5432 user=replyassets dbname=lake``; the password comes from the environment
too, ``PGPASSWORD`` or the same variable, and is never logged) and whose data files (Parquet)
live under ``storage.ducklake.data_path`` (a shared folder or an object-store URL). Any number
of processes and machines read and write the same tables, each with its own DuckDB: each
process keeps one in-memory DuckDB with the lake attached as ``lake`` and hands out a new
connection on it per :func:`connect` (``USE lake``). There is no lock: DuckLake commits
optimistically and a commit that conflicts with a concurrent one raises;
:func:`transaction` retries it (``storage.ducklake.max_retries`` times).

Rules for callers: keep connections short (open, read or write, close); never hold one across
a network call or model inference. ``transaction(fn)`` may call ``fn`` more than once: keep
side effects outside the database out of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)

BACKENDS = ("duckdb", "ducklake")
CATALOG_ENV = "REPLYASSETS_DUCKLAKE_CATALOG"
LAKE = "lake"  # the name the DuckLake is attached under
DEFAULT_LOCK_TIMEOUT_S = 600.0
DEFAULT_MAX_RETRIES = 10
# DuckLake's extensions, as packaged on the package registry (pyproject.toml pins them with duckdb).
LAKE_EXTENSIONS = ("postgres_scanner", "ducklake")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
_SECRET = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)


class StorageError(RuntimeError):
    """The storage cannot be opened (misconfigured, unreachable, unreadable file)."""


class StorageBusy(StorageError, TimeoutError):
    """The DuckDB file stayed locked by another process for longer than the timeout."""


# --------------------------------------------------------------------------- what to open


@dataclass(frozen=True)
class Storage:
    """Where the tables live. ``database``: the DuckDB file (``duckdb``); ``data_path`` and the
    catalog variable ``catalog_env`` (``ducklake``)."""

    backend: str = "duckdb"
    database: Path | None = None
    data_path: str | None = None
    catalog_env: str = CATALOG_ENV
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise StorageError(f"unknown storage backend {self.backend!r}; use one of {BACKENDS}")
        if self.backend == "duckdb" and self.database is None:
            raise StorageError("the duckdb backend needs a database file")
        if self.backend == "ducklake" and not self.data_path:
            raise StorageError("the ducklake backend needs storage.ducklake.data_path")

    @property
    def is_lake(self) -> bool:
        return self.backend == "ducklake"

    def catalog(self) -> str:
        """The catalog's libpq string, from the environment (never stored, never logged)."""
        value = os.environ.get(self.catalog_env, "").strip()
        if not value:
            raise StorageError(
                f"the ducklake backend needs the PostgreSQL catalog in ${self.catalog_env} "
                "(libpq keywords, e.g. 'host=db.internal port=5432 user=replyassets dbname=lake'; "
                "the password in PGPASSWORD or in the same variable)"
            )
        return value

    def describe(self) -> str:
        """A line for logs and metadata: never a password."""
        if not self.is_lake:
            return f"duckdb file {self.database}"
        catalog = os.environ.get(self.catalog_env, "")
        shown = scrub(catalog) if catalog else f"${self.catalog_env} unset"
        return f"ducklake (catalog postgres: {shown}; data {self.data_path})"

    def exists(self) -> bool:
        """Whether there is anything to read (a DuckDB file that does not exist yet is not created)."""
        return True if self.is_lake else Path(self.database).exists()  # type: ignore[arg-type]


def scrub(text: str) -> str:
    """``text`` with every ``password=...`` value replaced by ``***``."""
    return _SECRET.sub(r"\1***", str(text))


def storage_from_settings(settings: Any = None) -> Storage:
    """The storage the settings name (``storage.backend``; env ``REPLYASSETS_STORAGE_BACKEND``)."""
    if settings is None:
        from replyassets.settings import get_settings

        settings = get_settings()
    st = settings.storage
    if settings.storage_backend == "ducklake":
        return Storage(
            "ducklake",
            data_path=settings.lake_data_path,
            catalog_env=st.ducklake.catalog_env,
            lock_timeout_s=st.lock_timeout_s,
            max_retries=st.ducklake.max_retries,
        )
    return Storage("duckdb", database=settings.database_path, lock_timeout_s=st.lock_timeout_s,
                   max_retries=st.ducklake.max_retries)


def as_storage(target: Storage | str | os.PathLike | None = None) -> Storage:
    if target is None:
        return storage_from_settings()
    if isinstance(target, Storage):
        return target
    return Storage("duckdb", database=Path(target))


# --------------------------------------------------------------------------- connect


@contextlib.contextmanager
def connect(target: Storage | str | os.PathLike | None = None, *, timeout_s: float | None = None,
            purpose: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection on ``target``'s storage, closed (and its lock released) on exit.

    ``timeout_s``: how long to wait for a locked DuckDB file (default ``storage.lock_timeout_s``);
    ``purpose``: what the holder is doing, shown to whoever waits for it.
    """
    storage = as_storage(target)
    if storage.is_lake:
        with _lake_connection(storage) as con:
            yield con
        return
    path = Path(storage.database)  # type: ignore[arg-type]
    timeout = storage.lock_timeout_s if timeout_s is None else float(timeout_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with _file_lock(path, deadline, timeout, purpose):
        con = _open_file(path, deadline, timeout)
        try:
            yield con
        finally:
            con.close()


@dataclass(frozen=True)
class Committed:
    """What :func:`transaction` returns: ``fn``'s value, the DuckLake snapshot the commit made
    (when a ``commit_message`` was given; ``None`` on the duckdb backend) and the retries spent."""

    value: Any
    snapshot_id: int | None
    retries: int


def transaction(fn: Callable[[duckdb.DuckDBPyConnection], Any], target: Storage | str | os.PathLike | None = None,
                *, retries: int | None = None, purpose: str | None = None, commit_message: str | None = None,
                timeout_s: float | None = None,
                on_retry: Callable[[int, BaseException], None] | None = None) -> Committed:
    """Run ``fn(con)`` inside BEGIN ... COMMIT on a fresh connection; roll back on any error.

    A DuckLake write conflict (another process committed a change this one collides with)
    retries the whole transaction, with a fresh connection, up to ``retries`` times
    (default ``storage.max_retries``) with jittered backoff; then the conflict is raised.
    ``commit_message`` (DuckLake) is recorded with the snapshot, whose id is returned.
    """
    storage = as_storage(target)
    retries = storage.max_retries if retries is None else int(retries)
    attempt = 0
    while True:
        with connect(storage, timeout_s=timeout_s, purpose=purpose) as con:
            con.execute("BEGIN TRANSACTION")
            token = None
            try:
                value = fn(con)
                if storage.is_lake and commit_message is not None:
                    token = f"replyassets:{uuid.uuid4().hex}"
                    con.execute(f"CALL {LAKE}.set_commit_message(?, ?, extra_info => ?)",
                                ["replyassets", str(commit_message), token]).fetchall()
                con.execute("COMMIT")
            except BaseException as exc:
                _rollback(con)
                if not (isinstance(exc, Exception) and is_conflict(exc)) or attempt >= retries:
                    raise
                attempt += 1
                if on_retry is not None:
                    on_retry(attempt, exc)
                log.info("storage write conflict (attempt %d of %d): %s", attempt, retries, str(exc).splitlines()[-1])
            else:
                snapshot = _snapshot_of(con, token) if token else None
                return Committed(value, snapshot, attempt)
        time.sleep(min(2.0, 0.05 * 2 ** attempt) * random.uniform(0.5, 1.5))


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a DuckLake (or DuckDB) transaction conflict that a retry can resolve."""
    if not isinstance(exc, duckdb.Error):
        return False
    msg = str(exc).lower()
    return "transaction conflict" in msg or "write-write conflict" in msg


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


# --------------------------------------------------------------------------- helpers on a connection


def table_exists(con: duckdb.DuckDBPyConnection, table: str, schema: str = "main") -> bool:
    """Whether ``schema.table`` exists in the connection's current database (file or lake)."""
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?", [schema, table],
    ).fetchone()[0])


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT current_database()").fetchone()[0] == LAKE


_SQL_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*( WITH TIME ZONE)?(\[\])?$")


def column_types(con: duckdb.DuckDBPyConnection, table: str, schema: str = "main") -> dict[str, str]:
    """``schema.table``'s columns and their stored DuckDB types, in table order (file or lake)."""
    return dict(con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index", [schema, table],
    ).fetchall())


def retype_columns(con: duckdb.DuckDBPyConnection, table: str, types: dict[str, str], schema: str = "main") -> int:
    """Rewrite ``schema.table`` with ``types`` (column -> DuckDB type) cast in, keeping its rows,
    their order and every other column; run it inside :func:`transaction` (the rewrite is
    create + drop + rename, committed together or not at all). SQL that runs on both backends
    (DuckLake changes a column's type only by widening it). Returns the rows rewritten; a value
    that does not cast raises DuckDB's conversion error and the transaction rolls back."""
    for ident in (schema, table, *types):
        if not _IDENT.match(ident):
            raise ValueError(f"invalid identifier {ident!r}")
    for sql_type in types.values():
        if not _SQL_TYPE.match(sql_type):
            raise ValueError(f"invalid column type {sql_type!r}")
    have = column_types(con, table, schema)
    if not have:
        raise ValueError(f"table {schema}.{table} does not exist")
    missing = [c for c in types if c not in have]
    if missing:
        raise ValueError(f"table {schema}.{table} has no column {', '.join(missing)} (columns: {', '.join(have)})")
    scratch = f"{table}__retyped"
    casts = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in types.items())
    con.execute(f"CREATE TABLE {schema}.{scratch} AS SELECT * REPLACE ({casts}) FROM {schema}.{table} "
                "ORDER BY rowid").fetchall()
    rows = con.execute(f"SELECT count(*) FROM {schema}.{scratch}").fetchall()[0][0]
    con.execute(f"DROP TABLE {schema}.{table}").fetchall()
    con.execute(f"ALTER TABLE {schema}.{scratch} RENAME TO {table}").fetchall()
    return int(rows)


def create_table_sql(storage: Storage, table: str, columns: list[str], *, primary_key: tuple[str, ...] = (),
                     checks: tuple[str, ...] = ()) -> str:
    """``CREATE TABLE IF NOT EXISTS``; primary keys and CHECK constraints only where the backend
    has them (a DuckDB file: yes; DuckLake: no, the stores keep keys unique by delete + insert
    in one transaction)."""
    if not _IDENT.match(table):
        raise ValueError(f"invalid table name {table!r}")
    parts = list(columns)
    if not storage.is_lake:
        parts += ["CHECK (" + c + ")" for c in checks]
        if primary_key:
            parts.append("PRIMARY KEY (" + ", ".join(primary_key) + ")")
    column_defs = ", ".join(parts)  # definitions written in the stores' code, never user values
    return f"CREATE TABLE IF NOT EXISTS {table} ({column_defs})"


def current_snapshot(target: Storage | str | os.PathLike | None = None) -> int | None:
    """The DuckLake's latest snapshot id; ``None`` on the duckdb backend (a file has no versions)."""
    storage = as_storage(target)
    if not storage.is_lake:
        return None
    with connect(storage) as con:
        return int(con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()[0])


def expire_snapshots(target: Storage | str | os.PathLike | None, older_than_days: float,
                     keep: Iterable[int] = (), dry_run: bool = False) -> dict:
    """Expire the DuckLake snapshots older than ``older_than_days``, except those in ``keep``
    (e.g. the snapshots adapters were trained on) and the latest; then delete the data files
    no remaining snapshot needs. Returns what was (or, ``dry_run``, would be) expired:
    ``{"expired": [ids], "kept": [ids asked to keep that exist], "files_deleted": n}``.
    A file backend has no snapshots: ``{"expired": [], ...}`` with ``backend: duckdb``."""
    storage = as_storage(target)
    if older_than_days < 0:
        raise ValueError(f"older_than_days must be >= 0, got {older_than_days}")
    if not storage.is_lake:
        return {"backend": storage.backend, "expired": [], "kept": [], "files_deleted": 0}
    keep = {int(k) for k in keep if k is not None}
    with connect(storage) as con:
        rows = con.execute(
            f"SELECT snapshot_id, snapshot_time <= now() - to_seconds(?::DOUBLE) AS old "
            f"FROM {LAKE}.snapshots() ORDER BY snapshot_id", [float(older_than_days) * 86400]).fetchall()
        latest = max((r[0] for r in rows), default=None)
        expire = [int(i) for i, old in rows if old and i != latest and i not in keep]
        deleted = 0
        if expire and not dry_run:
            con.execute(f"CALL ducklake_expire_snapshots({_literal(LAKE)}, versions => {expire})")
            deleted = len(con.execute(
                f"CALL ducklake_cleanup_old_files({_literal(LAKE)}, cleanup_all => true)").fetchall())
    return {"backend": storage.backend, "expired": expire, "kept": sorted(keep & {int(r[0]) for r in rows}),
            "files_deleted": deleted}


def _snapshot_of(con: duckdb.DuckDBPyConnection, token: str) -> int | None:
    row = con.execute(
        f"SELECT max(snapshot_id) FROM {LAKE}.snapshots() WHERE commit_extra_info = ?", [token]
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else None


# --------------------------------------------------------------------------- the DuckDB file


class _PathLock:
    """Per lock file: one thread of this process at a time (re-entrant), then the fcntl lock."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.owner: int | None = None
        self.depth = 0


_PATH_LOCKS: dict[str, _PathLock] = {}
_PATH_LOCKS_GUARD = threading.Lock()


def lock_path(database: str | os.PathLike) -> Path:
    """The lock file next to a DuckDB file."""
    p = Path(database)
    return p.with_name(p.name + ".lock")


def lock_holder(database: str | os.PathLike) -> dict[str, Any] | None:
    """Who holds (or last held) the lock of a DuckDB file, as its holder wrote it."""
    try:
        text = lock_path(database).read_text(encoding="utf-8").strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def _holder_line(info: dict[str, Any] | None) -> str:
    if not info:
        return "another process (it did not say which)"
    since = info.get("since", "?")
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')} ({info.get('purpose', '?')}, since {since} UTC)"


@contextlib.contextmanager
def _file_lock(path: Path, deadline: float, timeout: float, purpose: str | None) -> Iterator[None]:
    import fcntl

    lp = lock_path(path)
    key = str(lp.resolve())
    with _PATH_LOCKS_GUARD:
        state = _PATH_LOCKS.setdefault(key, _PathLock())
    me = threading.get_ident()
    if state.owner == me:  # re-entrant: this thread already holds it
        state.depth += 1
        try:
            yield
        finally:
            state.depth -= 1
        return
    if not state.mutex.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise StorageBusy(f"{path} stayed busy for {timeout:g} s: another thread of this process "
                          f"holds it ({_holder_line(lock_holder(path))})")
    try:
        fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            delay, told = 0.01, False
            started = time.monotonic()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    now = time.monotonic()
                    if now >= deadline:
                        raise StorageBusy(
                            f"{path} is locked by {_holder_line(lock_holder(path))}; waited {timeout:g} s "
                            "(storage.lock_timeout_s). The lock is released when that connection closes "
                            "or that process ends."
                        ) from None
                    if not told and now - started > 5:
                        told = True
                        log.info("waiting for %s, locked by %s", path, _holder_line(lock_holder(path)))
                    time.sleep(min(delay, max(0.0, deadline - now)))
                    delay = min(delay * 1.5, 0.2)
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "purpose": purpose or _default_purpose(),
                    "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            state.owner, state.depth = me, 1
            try:
                yield
            finally:
                state.owner, state.depth = None, 0
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        state.mutex.release()


def _default_purpose() -> str:
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:3]]
    return " ".join(a for a in argv if a)[:80]


def _open_file(path: Path, deadline: float, timeout: float) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect(path)``, retrying while a process outside this module holds the file."""
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            msg = str(exc)
            if "version number" in msg and "newer version" in msg.lower():
                raise StorageError(
                    f"{path} was written by a newer DuckDB than this project's (duckdb=={duckdb.__version__}, "
                    "pinned for DuckLake): it cannot be read here. For the local demo data, delete it "
                    "(`make clean-data`) and materialize again."
                ) from None
            if "lock" not in msg.lower():
                raise
            if time.monotonic() >= deadline:
                raise StorageBusy(f"{path} stayed locked by a process outside replyassets for {timeout:g} s: {msg}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


# --------------------------------------------------------------------------- DuckLake


_LAKES: dict[tuple, duckdb.DuckDBPyConnection] = {}
_LAKES_GUARD = threading.Lock()


def reset() -> None:
    """Close this process's DuckLake connections (the next :func:`connect` attaches again)."""
    with _LAKES_GUARD:
        for con in _LAKES.values():
            with contextlib.suppress(Exception):
                con.close()
        _LAKES.clear()


def _forget_after_fork() -> None:
    """A forked child never uses its parent's connections, nor its lock state (a thread of the
    parent may have held a lock at the fork: the child starts with none)."""
    global _LAKES_GUARD, _PATH_LOCKS_GUARD
    _LAKES.clear()
    _PATH_LOCKS.clear()
    _LAKES_GUARD = threading.Lock()
    _PATH_LOCKS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


@contextlib.contextmanager
def _lake_connection(storage: Storage) -> Iterator[duckdb.DuckDBPyConnection]:
    catalog = storage.catalog()
    key = (os.getpid(), catalog, storage.data_path)
    with _LAKES_GUARD:
        base = _LAKES.get(key)
        if base is None:
            base = _attach_lake(storage, catalog)
            _LAKES[key] = base
        con = base.cursor()
    try:
        try:
            con.execute(f"USE {LAKE}")
        except duckdb.Error as exc:  # the attached catalog went away: attach afresh next time
            with _LAKES_GUARD:
                if _LAKES.get(key) is base:
                    _LAKES.pop(key)
            raise StorageError(f"the DuckLake is not usable ({storage.describe()}): {scrub(str(exc))}") from None
        yield con
    finally:
        con.close()


def _attach_lake(storage: Storage, catalog: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the extensions loaded and the DuckLake attached as ``lake``.

    The first attach of an empty catalog creates DuckLake's tables; processes doing that at the
    same moment collide in PostgreSQL (a duplicate table): the losers attach again once the
    winner's catalog exists.
    """
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    try:
        for name in LAKE_EXTENSIONS + _url_extensions(storage.data_path or ""):
            load_extension(con, name)
        data_path = _data_path(storage.data_path or "")
        _object_store_secret(con, data_path)
    except BaseException:
        con.close()
        raise
    sql = f"ATTACH {_literal('ducklake:postgres:' + catalog)} AS {LAKE} (DATA_PATH {_literal(data_path)})"
    failure = None
    for attempt in range(8):
        try:
            con.execute(sql)
            return con
        except duckdb.Error as exc:
            failure = f"cannot attach the DuckLake ({storage.describe()}): {scrub(str(exc))}"
            racing = any(m in str(exc) for m in ("duplicate key", "already exists"))
        if not racing:
            break
        time.sleep(0.2 * (attempt + 1) * random.uniform(0.5, 1.5))
    con.close()
    raise StorageError(failure)  # outside the except: the message with the password is not chained


S3_SCHEMES = ("s3", "s3a", "r2", "gs", "gcs")


def _object_store_secret(con: duckdb.DuckDBPyConnection, data_path: str) -> None:
    """Credentials for an S3-compatible data path, from the standard AWS environment variables
    only (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, optional ``AWS_SESSION_TOKEN``,
    ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL`` for MinIO, Ceph, R2 or
    any other S3-compatible store; on Kubernetes they come from a secret, deploy/). A
    temporary DuckDB secret of this in-memory connection: never written anywhere, never
    logged (a failure names the variables, not their values)."""
    scheme = data_path.split("://", 1)[0].lower() if _URL.match(data_path) else ""
    if scheme not in S3_SCHEMES:
        return
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        return  # a public bucket, or credentials DuckDB finds on its own
    parts = {"TYPE": "s3", "KEY_ID": key, "SECRET": secret}
    if os.environ.get("AWS_SESSION_TOKEN"):
        parts["SESSION_TOKEN"] = os.environ["AWS_SESSION_TOKEN"]
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        parts["REGION"] = region
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        plain = endpoint.lower().startswith("http://")
        parts["ENDPOINT"] = endpoint.split("://", 1)[-1].rstrip("/")
        parts["URL_STYLE"] = "path"
        parts["USE_SSL"] = "false" if plain else "true"
    body = ", ".join(f"{k} {v if k == 'TYPE' or v in ('true', 'false') else _literal(v)}" for k, v in parts.items())
    try:
        con.execute(f"CREATE TEMPORARY SECRET replyassets_lake_s3 ({body})")
    except duckdb.Error:
        raise StorageError(
            "cannot use the object-store credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
            "(and AWS_ENDPOINT_URL, AWS_REGION when set)") from None


def _data_path(path: str) -> str:
    if _URL.match(path):
        return path if path.endswith("/") else path + "/"
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return str(p) + "/"


def _url_extensions(path: str) -> tuple[str, ...]:
    scheme = path.split("://", 1)[0].lower() if _URL.match(path) else ""
    if scheme in ("s3", "s3a", "gs", "gcs", "r2", "http", "https", "hf"):
        return ("httpfs",)
    if scheme in ("az", "azure", "abfss"):
        return ("azure",)
    return ()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def extension_file(name: str) -> Path | None:
    """The extension binary shipped by the ``duckdb-extension-<name>`` package, if installed."""
    import importlib

    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        return None
    root = Path(list(module.__path__)[0]) / "extensions"
    exact = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if exact.is_file():
        return exact
    found = sorted(root.glob(f"*/{name}.duckdb_extension"))
    if found:
        raise StorageError(
            f"the packaged {name} extension is for DuckDB {found[0].parent.name}, not v{duckdb.__version__}: "
            "install the duckdb-extension-* packages of the same version as duckdb (pyproject.toml pins both)"
        )
    return None


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load a DuckDB extension: the registry package's binary when installed (offline; DuckDB
    checks its signature), else one installed the usual way (``INSTALL name``, online)."""
    path = extension_file(name)
    try:
        con.execute(f"LOAD {_literal(str(path))}" if path else f"LOAD {name}")
    except duckdb.Error as exc:
        package = f"duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}"
        raise StorageError(
            f"cannot load DuckDB's {name} extension ({exc}); install the package {package} "
            f"(or run `INSTALL {name}` once with internet access)"
        ) from None


__all__ = [
    "BACKENDS", "CATALOG_ENV", "LAKE", "Committed", "Storage", "StorageBusy", "StorageError",
    "as_storage", "connect", "create_table_sql", "current_snapshot", "expire_snapshots", "extension_file", "is_conflict",
    "is_lake", "load_extension", "lock_holder", "lock_path", "reset", "scrub", "storage_from_settings",
    "table_exists", "transaction",
]
