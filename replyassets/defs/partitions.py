"""The dynamic partitions the assets share."""

from __future__ import annotations

import dagster as dg

QUERY_PARTITIONS = dg.DynamicPartitionsDefinition(name="query")
# One partition per named training recipe of config/experiments.yaml (replyassets/experiments.py).
EXPERIMENT_PARTITIONS = dg.DynamicPartitionsDefinition(name="experiment")
