"""``raw_tweets`` (and its rejections), partitioned by query; the queries-file sensor."""


import hashlib
import json

import dagster as dg
from dagster_pandera import pandera_schema_to_dagster_type

from replyassets.core.checkpoint import DuckDBCheckpointStore
from replyassets.core.collect import collect_partition, funnel_rows, reason_counts
from replyassets.core.frame_hash import frame_hash
from replyassets.core.rule_settings import top_rules_text
from replyassets.defs.asset_attrs import OWNERS, derived_code_version
from replyassets.defs.column_schema import column_schema
from replyassets.defs.metadata import funnel_table, table_md
from replyassets.defs.partitions import QUERY_PARTITIONS
from replyassets.defs.resources import TweetSourceResource
from replyassets.defs.settings_access import settings, storage
from replyassets.schemas import RawPairs, Rejections
from replyassets.settings import QuerySpec, load_queries
from replyassets.sources.base import SourceError

COLLECT_CODE_VERSION = derived_code_version(
    "replyassets.defs.collect", "replyassets.sources.replay", "replyassets.sources.apify",
    settings_paths=("collection", "validation.min_chars", "validation.max_chars"),
)


class CollectConfig(dg.Config):
    refresh: bool = False
    """Forget this query's collection checkpoint and fetch everything again from the source."""


def query_spec(name: str) -> QuerySpec:
    for spec in load_queries(settings().queries_path):
        if spec.name == name:
            return spec
    raise dg.Failure(
        f"query {name!r} is a partition but is not in {settings().queries_path}; "
        "add it back to the queries file or delete the partition"
    )


def checkpoint_key(spec: QuerySpec) -> str:
    """Checkpoints belong to a query name *and* its text and overrides: editing them starts afresh."""
    digest = hashlib.sha256(json.dumps([spec.text, spec.overrides], sort_keys=True).encode()).hexdigest()[:12]
    return f"{spec.name}@{digest}"


@dg.multi_asset(
    outs={
        "raw_tweets": dg.AssetOut(
            description=(
                "Tweet/reply pairs for one search query that passed the collection filters "
                "(engagement window, no retweets/quotes, English; reply likes, author followers, "
                "delay, no media/URLs, length, at most 10 replies per author)."
            ),
            metadata={"partition_expr": "query", "dagster/column_schema": column_schema(RawPairs)},
            dagster_type=pandera_schema_to_dagster_type(RawPairs),
            code_version=COLLECT_CODE_VERSION,
            owners=OWNERS,
            kinds={"duckdb", "pandera"},
            group_name="collect",
            tags={"replyassets/stage": "collect"},
        ),
        "raw_tweet_rejections": dg.AssetOut(
            description="Every collected item that did not become a pair, with all its reasons.",
            metadata={"partition_expr": "query", "dagster/column_schema": column_schema(Rejections)},
            dagster_type=pandera_schema_to_dagster_type(Rejections),
            code_version=COLLECT_CODE_VERSION,
            owners=OWNERS,
            kinds={"duckdb", "pandera"},
            group_name="collect",
        ),
    },
    partitions_def=QUERY_PARTITIONS,
    deps=["query_inputs"],
    # No "duckdb" pool: a production partition spends its time waiting for Apify actor runs
    # (tens of minutes per query), holding nothing. Its only storage work is short writes (the
    # checkpoint after each source call, the IO manager's final write), which the storage layer
    # serializes across processes; so a backfill collects as many queries at once as the run
    # queue allows (dagster.yaml).
    check_specs=[
        dg.AssetCheckSpec(
            "non_empty", asset="raw_tweets", partitions_def=QUERY_PARTITIONS,
            description="the query yielded at least one pair that passed the filters",
        )
    ],
    retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
)
def raw_tweets(context: dg.AssetExecutionContext, config: CollectConfig, tweet_source: TweetSourceResource):
    """Collect one query: search its tweets, fetch replies per conversation, normalize, filter.

    Re-materializing a partition replaces exactly its rows. Fetched replies are checkpointed
    in the project's storage as they arrive (paid sources), so an interrupted run resumes
    without paying twice.
    Partitions run in parallel: each has its own checkpoint key and its own rows, and no
    connection is held while the source is fetching.
    """
    s = settings()
    spec = query_spec(context.partition_key)
    source = tweet_source.build()
    checkpoint = None
    if tweet_source.kind != "replay":
        checkpoint = _NamespacedCheckpoint(DuckDBCheckpointStore(storage()), checkpoint_key(spec))
        if config.refresh:
            checkpoint.clear(spec.name)
    try:
        result = collect_partition(spec, source, s.collection, checkpoint=checkpoint, lengths=(s.validation.min_chars, s.validation.max_chars))
    except SourceError as exc:
        raise dg.Failure(description=f"collection of query {spec.name!r} failed: {exc}") from exc

    pairs, rejections = result.pairs, result.rejections
    context.log.info(
        f"query {spec.name!r}: {len(pairs)} pairs kept, {len(rejections)} items rejected, "
        f"{result.fetched_tweets} tweets fetched, {result.resumed_tweets} resumed from checkpoint"
    )
    top = top_rules_text(result.funnel["rejected_by_rule"])
    check_text = (f"{context.partition_key}: {len(pairs)} pairs from {result.funnel['items_in']} items "
                  f"({result.funnel['identity']})")
    if not len(pairs):
        check_text = f"no pairs: {check_text}. The rules that removed the most items: {top}"
    preview = pairs.head(5)[["tweet_id", "reply_likes", "reply_author_followers", "reply"]].to_dict("records")
    yield dg.Output(
        pairs,
        output_name="raw_tweets",
        data_version=dg.DataVersion(frame_hash(pairs.drop(columns=["collected_at"]))),
        metadata={
            "query_text": spec.text,
            "source": source.name if hasattr(source, "name") else tweet_source.kind,
            "pairs": len(pairs),
            "unique_tweets": int(pairs["tweet_id"].nunique()),
            "unique_reply_authors": int(pairs["reply_author"].nunique()),
            "funnel": funnel_table(funnel_rows(result.funnel, rejections)),
            "item_identity": result.funnel["identity"],
            "top_rejection_rules": top,
            "fetched_tweets": result.fetched_tweets,
            "resumed_tweets": result.resumed_tweets,
            "estimated_cost_usd": float(round(result.cost_usd, 4)),
            "preview": table_md(preview),
        },
    )
    yield dg.AssetCheckResult(
        check_name="non_empty",
        asset_key="raw_tweets",
        passed=len(pairs) > 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check_text,
        metadata={"pairs": len(pairs), "top_rejection_rules": top},
    )
    by_reason = reason_counts(rejections)
    yield dg.Output(
        rejections,
        output_name="raw_tweet_rejections",
        data_version=dg.DataVersion(frame_hash(rejections.drop(columns=["collected_at"]))),
        metadata={
            "rejected_items": len(rejections),
            "by_reason": table_md([{"reason": k, "items": v} for k, v in by_reason.items()]),
            "by_rule": table_md(result.funnel["rejected_by_rule"], columns=["stage", "code", "items", "setting"]),
        },
    )


class _NamespacedCheckpoint:
    """Store checkpoints under ``name@hash`` so an edited query starts afresh."""

    def __init__(self, store: DuckDBCheckpointStore, key: str):
        self._store, self._key = store, key

    def load(self, query: str):
        return self._store.load(self._key)

    def save(self, query: str, key: str, items):
        self._store.save(self._key, key, items)

    def clear(self, query: str):
        self._store.clear(self._key)


# ----------------------------------------------------------------------------- partitions


def sync_query_partitions(instance: dg.DagsterInstance) -> tuple[list[str], list[str]]:
    """Add a partition for every query in the queries file. Returns (added, orphaned).

    Partitions whose query left the file are reported, never deleted: their data stays.
    """
    names = [q.name for q in load_queries(settings().queries_path)]
    existing = set(instance.get_dynamic_partitions(QUERY_PARTITIONS.name))
    added = [n for n in names if n not in existing]
    if added:
        instance.add_dynamic_partitions(QUERY_PARTITIONS.name, added)
    orphaned = sorted(existing - set(names))
    return added, orphaned


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers a partition for each new query in config/queries.yaml and collects it.",
    target=dg.AssetSelection.assets("raw_tweets", "raw_tweet_rejections"),
)
def query_partitions_sensor(context: dg.SensorEvaluationContext):
    try:
        names = [q.name for q in load_queries(settings().queries_path)]
    except Exception as exc:  # a broken queries file must not crash the daemon
        return dg.SkipReason(f"queries file unreadable: {exc}")
    existing = set(context.instance.get_dynamic_partitions(QUERY_PARTITIONS.name))
    new = [n for n in names if n not in existing]
    if not new:
        return dg.SkipReason(f"{len(names)} queries, all registered")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=n, run_key=f"collect-{n}") for n in new],
        dynamic_partitions_requests=[QUERY_PARTITIONS.build_add_request(new)],
    )
