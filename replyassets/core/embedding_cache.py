"""Embedding cache in DuckDB, keyed by (model_id, sha256 of the text).

``model_id`` is the embedder's: it names the model and, for every backend but PyTorch, the
backend and precision (``...:l2+openvino-bf16``), so vectors from two backends of the same
model never answer for each other (scorers/embeddings.py).

Rows: ``model_id VARCHAR, text_sha256 VARCHAR, dim INTEGER, vector FLOAT[], created_at
TIMESTAMP`` with primary key ``(model_id, text_sha256)``. Reads and writes go through a
registered Arrow table joined/inserted in one statement (no per-row SQL), with
``INSERT OR IGNORE`` so a retried or concurrent write never duplicates a row. Each call
opens and closes its own connection, so the cache coexists with the other writers of the
project's DuckDB file (DuckDB allows one writer process at a time: a call that finds the
file locked retries for ``lock_timeout_s`` seconds before raising).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# DuckDB shares one database instance per file inside a process; concurrent open/close of
# that instance from several threads races, so calls on the same file are serialized here
# (other processes are handled by the file lock retry).
_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: str) -> threading.Lock:
    key = str(Path(path).resolve())
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.Lock())


def text_hash(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text (the cache key next to the model id); a lone surrogate
    (from a hand-made JSONL ``"\\ud800"``) hashes as its surrogatepass bytes, never raises."""
    return hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()


class DuckDBEmbeddingCache:
    def __init__(self, database_path: str | Path, table: str = "embedding_cache",
                 lock_timeout_s: float = 30.0) -> None:
        if not _IDENT.match(table):
            raise ValueError(f"invalid table name {table!r}")
        self.database_path = str(database_path)
        self.table = table
        self.lock_timeout_s = lock_timeout_s
        self._lock = _file_lock(self.database_path)
        if self.database_path == ":memory:":
            raise ValueError("the embedding cache needs a database file (':memory:' would not persist)")
        Path(self.database_path).parent.mkdir(parents=True, exist_ok=True)
        self._run(lambda con: None)

    # one short-lived connection per call, retried while another process holds the lock
    def _run(self, fn):
        with self._lock:
            return self._run_unlocked(fn)

    def _run_unlocked(self, fn):
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(self.database_path)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            try:
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} ("
                    " model_id VARCHAR NOT NULL, text_sha256 VARCHAR NOT NULL,"
                    " dim INTEGER NOT NULL, vector FLOAT[] NOT NULL,"
                    " created_at TIMESTAMP DEFAULT current_timestamp,"
                    " PRIMARY KEY (model_id, text_sha256))"
                )
                return fn(con)
            finally:
                con.close()

    def get_many(self, model_id: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return {}
        keys = pa.table({"text_sha256": pa.array(wanted, pa.string())})

        def fn(con):
            con.register("wanted_keys", keys)
            rel = con.sql(
                f"SELECT c.text_sha256, c.dim, c.vector FROM {self.table} c"
                " JOIN wanted_keys w USING (text_sha256) WHERE c.model_id = ?",
                params=[model_id],
            )
            # duckdb >= 2 names it to_arrow_table; 1.x arrow()
            return (getattr(rel, "to_arrow_table", None) or rel.arrow)()

        got = self._run(fn)
        if got.num_rows == 0:
            return {}
        dims = got.column("dim").to_numpy()
        flat = got.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        out: dict[str, np.ndarray] = {}
        offset = 0
        for h, dim in zip(got.column("text_sha256").to_pylist(), dims.tolist()):
            out[h] = np.asarray(flat[offset:offset + dim], dtype=np.float32)
            offset += dim
        return out

    def put_many(self, model_id: str, items: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]]) -> int:
        """Store vectors; existing (model_id, hash) rows are left as they are. Returns rows given."""
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        if not pairs:
            return 0
        vecs = [np.asarray(v, dtype=np.float32).ravel() for _, v in pairs]
        lengths = np.array([v.size for v in vecs], dtype=np.int32)
        offsets = np.r_[0, np.cumsum(lengths)].astype(np.int32)
        flat = pa.array(np.concatenate(vecs), pa.float32())
        rows = pa.table({
            "text_sha256": pa.array([h for h, _ in pairs], pa.string()),
            "dim": pa.array(lengths, pa.int32()),
            "vector": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat),
        })

        def fn(con):
            con.register("new_rows", rows)
            con.execute(
                f"INSERT OR IGNORE INTO {self.table} (model_id, text_sha256, dim, vector)"
                " SELECT DISTINCT ON (text_sha256) ?, text_sha256, dim, vector FROM new_rows",
                [model_id],
            )

        self._run(fn)
        return len(pairs)

    def count(self, model_id: str | None = None) -> int:
        def fn(con):
            if model_id is None:
                return con.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]
            return con.execute(f"SELECT count(*) FROM {self.table} WHERE model_id = ?", [model_id]).fetchone()[0]

        return int(self._run(fn))
