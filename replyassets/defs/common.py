"""The old names of the asset modules' shared helpers, re-exported for the modules that still
import them from here (``defs/evaluate.py``, ``defs/leaderboard.py`` and ``demo.py``, which
concurrent changes reshape). Nothing is defined here: new code imports from the module named
for each job:

* ``replyassets.defs.asset_attrs``: ``DUCKDB_POOL``, ``OWNERS``, ``derived_code_version``;
* ``replyassets.defs.partitions``: ``QUERY_PARTITIONS``, ``EXPERIMENT_PARTITIONS``;
* ``replyassets.defs.settings_access``: ``settings``, ``storage``;
* ``replyassets.defs.metadata``: metadata values (``tidy_metadata``, ``records_table``, ...);
* ``replyassets.defs.column_schema``: ``column_schema``;
* ``replyassets.defs.history``: ``latest_materialization``;
* ``replyassets.core.frame_hash``, ``replyassets.core.numbers``, ``replyassets.core.markdown``:
  the pure logic (no Dagster).
"""

from __future__ import annotations

from replyassets.core.frame_hash import frame_hash
from replyassets.core.numbers import fmt_num
from replyassets.defs.asset_attrs import DUCKDB_POOL, OWNERS, derived_code_version
from replyassets.defs.history import latest_materialization
from replyassets.defs.metadata import (
    mapping_table,
    ordered,
    records_table,
    table_md,
    tidy_metadata,
)
from replyassets.defs.partitions import EXPERIMENT_PARTITIONS
from replyassets.defs.settings_access import settings, storage

__all__ = [
    "DUCKDB_POOL",
    "EXPERIMENT_PARTITIONS",
    "OWNERS",
    "derived_code_version",
    "fmt_num",
    "frame_hash",
    "latest_materialization",
    "mapping_table",
    "ordered",
    "records_table",
    "settings",
    "storage",
    "table_md",
    "tidy_metadata",
]
