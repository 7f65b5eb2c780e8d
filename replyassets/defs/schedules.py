"""Optional periodic re-collection (off by default: turn it on in the UI)."""

import dagster as dg

from replyassets.defs.common import QUERY_PARTITIONS

collect_job = dg.define_asset_job(
    "recollect_queries",
    selection=dg.AssetSelection.assets("raw_tweets", "raw_tweet_rejections"),
    description="Re-collect query partitions from the source (checkpoints cleared: fresh replies).",
)


@dg.schedule(
    cron_schedule="0 6 * * 1",
    job=collect_job,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Weekly re-collection of every query (off by default; it spends Apify credit in production).",
)
def weekly_recollection(context: dg.ScheduleEvaluationContext):
    keys = context.instance.get_dynamic_partitions(QUERY_PARTITIONS.name)
    for key in keys:
        yield dg.RunRequest(
            partition_key=key,
            run_key=f"recollect-{key}-{context.scheduled_execution_time:%Y%m%d}",
            run_config={"ops": {"raw_tweets": {"config": {"refresh": True}}}},
        )
