"""Embedding cache in DuckDB, keyed by (model_id, sha256 of the text).

Rows: ``model_id VARCHAR, text_sha256 VARCHAR, dim INTEGER, vector FLOAT[], created_at
TIMESTAMP`` with primary key ``(model_id, text_sha256)``. Reads and writes go through a
registered Arrow table joined/inserted in one statement (no per-row SQL), with
an insert of only the keys not stored yet, so a retried write never duplicates a row (the
first write wins). Each call is one short connection through ``replyassets/core/db.py``, on
the project's storage (a DuckDB file, whose lock makes writers take turns, or the DuckLake).
The DuckLake has no primary keys: two processes caching the same text at the same instant may
both insert it, so reads take one row per key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from replyassets.core import db

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def text_hash(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text (the cache key next to the model id); a lone surrogate
    (from a hand-made JSONL ``"\\ud800"``) hashes as its surrogatepass bytes, never raises."""
    return hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()


class DuckDBEmbeddingCache:
    def __init__(self, database_path: db.Storage | str | Path | None = None, table: str = "embedding_cache",
                 lock_timeout_s: float | None = None) -> None:
        if not _IDENT.match(table):
            raise ValueError(f"invalid table name {table!r}")
        if str(database_path) == ":memory:":
            raise ValueError("the embedding cache needs a database file (':memory:' would not persist)")
        self.storage = db.as_storage(database_path)
        self.database_path = str(self.storage.database) if self.storage.database else self.storage.describe()
        self.table = table
        self.lock_timeout_s = lock_timeout_s
        self._ready = False
        self._run(lambda con: None, write=True)

    # one short-lived connection per call (db.connect: the file lock, or the DuckLake)
    def _run(self, fn, write: bool = False):
        def body(con):
            if write and not self._ready:
                con.execute(db.create_table_sql(
                    self.storage, self.table,
                    ["model_id VARCHAR NOT NULL", "text_sha256 VARCHAR NOT NULL", "dim INTEGER NOT NULL",
                     "vector FLOAT[] NOT NULL", "created_at TIMESTAMP DEFAULT current_timestamp"],
                    primary_key=("model_id", "text_sha256"),
                ))
            elif not write and not db.table_exists(con, self.table):
                return None
            return fn(con)

        if write:
            value = db.transaction(body, self.storage, timeout_s=self.lock_timeout_s, purpose="embedding cache").value
            self._ready = True
            return value
        with db.connect(self.storage, timeout_s=self.lock_timeout_s, purpose="embedding cache") as con:
            return body(con)

    def get_many(self, model_id: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return {}
        keys = pa.table({"text_sha256": pa.array(wanted, pa.string())})

        def fn(con):
            con.register("wanted_keys", keys)
            rel = con.sql(
                f"SELECT DISTINCT ON (c.text_sha256) c.text_sha256, c.dim, c.vector FROM {self.table} c"
                " JOIN wanted_keys w USING (text_sha256) WHERE c.model_id = ? ORDER BY c.text_sha256, c.created_at",
                params=[model_id],
            )
            # duckdb >= 2 names it to_arrow_table; 1.x arrow()
            return (getattr(rel, "to_arrow_table", None) or rel.arrow)()

        got = self._run(fn)
        if got is None or got.num_rows == 0:
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
                f"INSERT INTO {self.table} (model_id, text_sha256, dim, vector)"
                " SELECT DISTINCT ON (text_sha256) ?, text_sha256, dim, vector FROM new_rows n"
                f" WHERE NOT EXISTS (SELECT 1 FROM {self.table} c WHERE c.model_id = ? AND c.text_sha256 = n.text_sha256)",
                [model_id, model_id],
            )

        self._run(fn, write=True)
        return len(pairs)

    def count(self, model_id: str | None = None) -> int:
        def fn(con):
            if model_id is None:
                return con.execute(f"SELECT count(DISTINCT (model_id, text_sha256)) FROM {self.table}").fetchone()[0]
            return con.execute(f"SELECT count(DISTINCT text_sha256) FROM {self.table} WHERE model_id = ?",
                               [model_id]).fetchone()[0]

        return int(self._run(fn) or 0)
