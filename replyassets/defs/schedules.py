"""Optional periodic re-collection (off by default: turn it on in the UI)."""

import dagster as dg

from replyassets.defs.partitions import QUERY_PARTITIONS

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


class ExpireSnapshotsConfig(dg.Config):
    older_than_days: float = 30.0
    dry_run: bool = False


def adapter_snapshots(instance: dg.DagsterInstance, page: int = 1000) -> set[int]:
    """Every DuckLake snapshot a ``lora_adapter`` materialization (any experiment, any time) was
    trained on: its ``curated_set_snapshot``."""
    keep: set[int] = set()
    cursor = None
    while True:
        result = instance.fetch_materializations(dg.AssetKey("lora_adapter"), limit=page, cursor=cursor)
        for record in result.records:
            value = record.asset_materialization.metadata.get("curated_set_snapshot")
            value = getattr(value, "value", value)
            if isinstance(value, int):
                keep.add(value)
        if not result.has_more:
            return keep
        cursor = result.cursor


@dg.op(description="Expire DuckLake snapshots older than the configured age, except the ones adapters "
                   "were trained on and the latest; delete the data files no snapshot needs.")
def expire_old_snapshots(context: dg.OpExecutionContext, config: ExpireSnapshotsConfig) -> dict:
    from replyassets.core import db
    from replyassets.defs.settings_access import storage

    keep = adapter_snapshots(context.instance)
    out = db.expire_snapshots(storage(), config.older_than_days, keep=keep, dry_run=config.dry_run)
    context.log.info(f"{'would expire' if config.dry_run else 'expired'} {len(out['expired'])} snapshot(s) on the "
                     f"{out['backend']} backend (older than {config.older_than_days} days); kept "
                     f"{len(out['kept'])} named by adapters; {out['files_deleted']} data file(s) deleted")
    return out


@dg.job(name="expire_lake_snapshots",
        description="DuckLake maintenance: expire old snapshots, keep the ones adapters were trained on.")
def expire_snapshots_job():
    expire_old_snapshots()


@dg.schedule(
    cron_schedule="0 3 * * 0",
    job=expire_snapshots_job,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Weekly DuckLake snapshot expiry (off by default; the DuckDB file backend has no snapshots).",
)
def weekly_snapshot_expiry(context: dg.ScheduleEvaluationContext):
    return dg.RunRequest(run_key=f"expire-{context.scheduled_execution_time:%Y%m%d}")
