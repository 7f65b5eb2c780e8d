"""Durable collection checkpoints, so an interrupted partition resumes where it stopped.

Per query, a checkpoint maps a key to the raw items already fetched: the key
:data:`SEARCH_KEY` holds the search result, every other key is a tweet id whose replies
were fetched. :data:`SEARCH_KEY` holds a character that no tweet id can hold (ids are checked
by ``normalize.parse_id``), so no tweet's replies can overwrite the saved search;
:func:`split_saved` still reads a search saved under the earlier key, :data:`LEGACY_SEARCH_KEY`. ``collect_partition`` saves after each call to the source, before doing
anything else, so a crash loses at most the call in flight.

A checkpoint is reused by every later run of the same query (re-materializing a partition
costs nothing and gives the same rows); call ``clear(query)`` to collect afresh.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from replyassets.core import db
from replyassets.core.normalize import DamagedInput

# '#' is outside the id alphabet (normalize._ID_RE): no tweet id equals this key.
SEARCH_KEY = "#search"
# The search's key until it changed: a valid tweet id, so a tweet of that id could overwrite it.
LEGACY_SEARCH_KEY = "__search__"
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


def split_saved(saved: dict[str, list]) -> tuple[list | None, dict[str, list], bool]:
    """``(search items or None, tweet id -> replies, legacy)`` of what ``load`` gave back.

    A row under :data:`SEARCH_KEY` is the search, and every other key is a tweet id. Without one,
    a row under :data:`LEGACY_SEARCH_KEY` is a search saved by the earlier code (``legacy`` is
    then True: the caller re-saves it under :data:`SEARCH_KEY` before saving any reply, so that a
    tweet of that id gets a row of its own), and is no tweet's replies."""
    if SEARCH_KEY in saved:
        return saved[SEARCH_KEY], {k: v for k, v in saved.items() if k != SEARCH_KEY}, False
    if LEGACY_SEARCH_KEY in saved:
        return saved[LEGACY_SEARCH_KEY], {k: v for k, v in saved.items() if k != LEGACY_SEARCH_KEY}, True
    return None, dict(saved), False


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
    """Checkpoints in the table ``collection_checkpoints`` of the project's storage (a DuckDB
    file or the DuckLake: ``replyassets/core/db.py``).

    Rows are keyed by (query, key): partitions collecting at the same time in different
    processes write rows that never collide. Every call is one short connection (a save: one
    transaction, delete + insert of its row), never held across a call to the source; on the
    DuckDB file the storage lock makes concurrent savers take turns, on DuckLake a conflicting
    commit is retried.
    """

    def __init__(self, database: db.Storage | str | Path | None = None, *, lock_timeout_s: float | None = None) -> None:
        self.storage = db.as_storage(database)
        self.lock_timeout_s = lock_timeout_s
        self._ready = False

    @property
    def database_path(self) -> Path | None:
        return self.storage.database

    def _create(self, con) -> None:
        if not self._ready:
            con.execute(db.create_table_sql(
                self.storage, TABLE,
                ["query VARCHAR NOT NULL", "key VARCHAR NOT NULL", "items VARCHAR NOT NULL", "saved_at TIMESTAMP NOT NULL"],
                primary_key=("query", "key"),
            ))

    def _read(self, sql: str, params: list) -> list[tuple]:
        if not self.storage.exists():
            return []
        with db.connect(self.storage, timeout_s=self.lock_timeout_s, purpose="collection checkpoint") as con:
            if not db.table_exists(con, TABLE):
                return []
            return con.execute(sql, params).fetchall()

    def _write(self, fn) -> None:
        def body(con):
            self._create(con)
            fn(con)

        db.transaction(body, self.storage, timeout_s=self.lock_timeout_s, purpose="collection checkpoint")
        self._ready = True

    def load(self, query: str) -> dict[str, list[dict]]:
        rows = self._read(f"SELECT key, items FROM {TABLE} WHERE query = ?", [query])
        return {key: _loads(items) for key, items in rows}

    def save(self, query: str, key: str, items: list[dict]) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        text = _dumps(items)

        def fn(con):
            con.execute(f"DELETE FROM {TABLE} WHERE query = ? AND key = ?", [query, key])
            con.execute(f"INSERT INTO {TABLE} (query, key, items, saved_at) VALUES (?, ?, ?, ?)",
                        [query, key, text, now])

        self._write(fn)

    def clear(self, query: str) -> None:
        self._write(lambda con: con.execute(f"DELETE FROM {TABLE} WHERE query = ?", [query]))

    def keys(self, query: str) -> list[str]:
        return [r[0] for r in self._read(f"SELECT key FROM {TABLE} WHERE query = ? ORDER BY key", [query])]
