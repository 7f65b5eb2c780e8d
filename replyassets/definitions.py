"""The one ``Definitions`` of the replyassets code location.

Assets, checks, resources (chosen by ``REPLYASSETS_PROFILE``), sensors and schedules come
from the per-stage modules in ``replyassets/defs``.
"""

import dagster as dg

from replyassets.defs import collect, curate, dedupe, evaluate, schedules, train, validate
from replyassets.defs.resources import resources_for_profile

defs = dg.Definitions(
    assets=[
        collect.raw_tweets,
        validate.validated_pairs,
        dedupe.deduped_pairs,
        curate.review_decisions,
        curate.curated_set,
        train.base_model,
        train.lora_adapter,
        evaluate.eval_report,
    ],
    jobs=[schedules.collect_job],
    schedules=[schedules.weekly_recollection],
    sensors=[
        collect.query_partitions_sensor,
        # Declarative automation (validated_pairs and deduped_pairs follow new raw data;
        # review_decisions is observed every 5 minutes) runs as soon as the daemon does.
        # lora_adapter has no automation condition: it trains only when asked.
        dg.AutomationConditionSensorDefinition(
            "replyassets_automation",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=30,
        ),
    ],
    resources=resources_for_profile(),
)
