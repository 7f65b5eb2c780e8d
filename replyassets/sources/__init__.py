"""Where tweets come from (no Dagster)."""
