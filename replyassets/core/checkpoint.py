"""Durable collection checkpoints, so an interrupted partition resumes where it stopped.

Per query, a checkpoint maps a key to the raw items already fetched: the key
:data:`SEARCH_KEY` holds the search result, every other key is a tweet id whose replies
were fetched. ``collect_partition`` saves after each call to the source, before doing
anything else, so a crash loses at most the call in flight.

A checkpoint is reused by every later run of the same query (re-materializing a partition
costs nothing and gives the same rows); call ``clear(query)`` to collect afresh.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from replyassets.core.normalize import DamagedInput

SEARCH_KEY = "__search__"
TABLE = "collection_checkpoints"


@runtime_checkable
class CheckpointStore(Protocol):
    def load(self, query: str) -> dict[str, list[dict]]:
        """key -> raw items already fetched for ``query`` (``SEARCH_KEY`` = the search result)."""
        ...

    def save(self, query: str, key: str, items: list[dict]) -> None:
        """Store ``items`` under (query, key), durable when this returns."""
        ...

    def clear(self, query: str) -> None:
        """Forget everything saved for ``query``."""
        ...


def _dumps(items: list[Any]) -> str:
    """``items`` as stored: a JSON list; when it holds :class:`DamagedInput` markers (objects a
    source adds, never items), ``{"items": [... null where a marker was ...], "damaged":
    [[position, marker], ...]}``. Items always sit inside the list, so no item can make the
    stored value a dict and pose as a marker."""
    damaged = [[i, x.as_dict()] for i, x in enumerate(items) if isinstance(x, DamagedInput)]
    doc: Any = items
    if damaged:
        doc = {"items": [None if isinstance(x, DamagedInput) else x for x in items], "damaged": damaged}
    # ensure_ascii keeps lone surrogates and odd characters storable; default=str for datetimes.
    return json.dumps(doc, ensure_ascii=True, default=str, separators=(",", ":"))


def _loads(text: str) -> list[Any]:
    doc = json.loads(text)
    if isinstance(doc, dict):  # written by _dumps with markers
        items = list(doc["items"])
        for i, marker in doc["damaged"]:
            items[i] = DamagedInput.from_dict(marker)
        return items
    return doc


class InMemoryCheckpointStore:
    """A checkpoint store in a dict (tests, one-off CLI runs). Items are copied through JSON
    so that a resumed run sees exactly what a durable store would give back."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, str]] = {}
        self.saves = 0

    def load(self, query: str) -> dict[str, list[dict]]:
        return {k: _loads(v) for k, v in self._data.get(query, {}).items()}

    def save(self, query: str, key: str, items: list[dict]) -> None:
        self._data.setdefault(query, {})[key] = _dumps(items)
        self.saves += 1

    def clear(self, query: str) -> None:
        self._data.pop(query, None)


class DuckDBCheckpointStore:
    """Checkpoints in a DuckDB table (``collection_checkpoints``) of the project's database.

    One short-lived connection per call: DuckDB allows one writer process at a time, so
    holding a connection open would block the IO manager and other writers. A locked file
    is retried for a few seconds before the error is raised.
    """

    def __init__(self, database_path: str | Path, *, lock_timeout_s: float = 30.0) -> None:
        self.database_path = Path(database_path)
        self.lock_timeout_s = lock_timeout_s
        self._ready = False

    def _connect(self):
        import duckdb

        self.database_path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.database_path))
                break
            except duckdb.IOException as exc:  # another process holds the write lock
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        if not self._ready:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                "query VARCHAR NOT NULL, key VARCHAR NOT NULL, items VARCHAR NOT NULL, "
                "saved_at TIMESTAMP NOT NULL, PRIMARY KEY (query, key))"
            )
            self._ready = True
        return con

    def load(self, query: str) -> dict[str, list[dict]]:
        con = self._connect()
        try:
            rows = con.execute(f"SELECT key, items FROM {TABLE} WHERE query = ?", [query]).fetchall()
        finally:
            con.close()
        return {key: _loads(items) for key, items in rows}

    def save(self, query: str, key: str, items: list[dict]) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        con = self._connect()
        try:
            con.execute(
                f"INSERT OR REPLACE INTO {TABLE} (query, key, items, saved_at) VALUES (?, ?, ?, ?)",
                [query, key, _dumps(items), now],
            )
        finally:
            con.close()

    def clear(self, query: str) -> None:
        con = self._connect()
        try:
            con.execute(f"DELETE FROM {TABLE} WHERE query = ?", [query])
        finally:
            con.close()

    def keys(self, query: str) -> list[str]:
        con = self._connect()
        try:
            rows = con.execute(f"SELECT key FROM {TABLE} WHERE query = ? ORDER BY key", [query]).fetchall()
        finally:
            con.close()
        return [r[0] for r in rows]
