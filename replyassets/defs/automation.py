"""Declarative automation: the sensor that evaluates every asset's automation condition.

``validated_pairs`` and ``deduped_pairs`` follow new raw data (eager); ``lora_adapter`` has no
condition: it trains only when asked. The target includes the observed sources
(``query_inputs``, ``review_decisions``) so a condition placed on them is evaluated too.
"""

import dagster as dg

replyassets_automation = dg.AutomationConditionSensorDefinition(
    "replyassets_automation",
    target=dg.AssetSelection.all(include_sources=True),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
