"""What the asset decorators share: the DuckDB pool, the owners and the derived code version."""

from __future__ import annotations

from replyassets.settings import get_settings

# Steps that work on the tables for long (read, compute, write) run in this pool (dagster.yaml
# limits it to 1), so they queue in Dagster rather than wait on the file lock of
# replyassets/core/db.py, which alone keeps concurrent writers correct (and which the ducklake
# backend does not need). Collection (raw_tweets) is not in it: it waits on its source and writes
# only briefly, each write serialized by that lock.
DUCKDB_POOL = "duckdb"
OWNERS = ["team:ml-data"]


def derived_code_version(*modules: str, settings_paths: tuple[str, ...] = ()) -> str:
    """The asset's code version: a hash of the code it runs and the settings it reads.

    See ``replyassets/core/code_version.py``. Computed when the definitions load, with the
    active profile's settings, so a changed threshold or changed logic marks the asset stale.
    """
    from replyassets.core.code_version import code_version

    return code_version(modules, get_settings(), settings_paths)
