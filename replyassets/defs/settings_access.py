"""The asset modules' access to the loaded settings and to the tables' storage."""

from __future__ import annotations

from replyassets.core import db
from replyassets.settings import Settings, get_settings


def settings() -> Settings:
    return get_settings()


def storage(s: Settings | None = None) -> db.Storage:
    """Where the tables live (``storage.backend``: the DuckDB file or the DuckLake)."""
    return db.storage_from_settings(s or settings())
