"""Observed sources: what the graph reads that Dagster does not compute.

* ``query_inputs`` (one partition per query): the query's entry in the queries file (text and
  overrides) and, in the local profile, the content of its replay export files.
* ``review_decisions``: the manual review decisions ``replyassets review`` writes into the
  DuckDB table ``main.review_decisions``.

Both are external assets (``AssetSpec``): Dagster does not compute them, it records what the
``observe_sources`` sensor (every minute while the daemon runs) and ``make demo`` (before it
asks Dagster what is stale) see. Each observation that finds new content records an
``AssetObservation`` and then an external ``AssetMaterialization``, both carrying the content
hash as data version: Dagster reads a partitioned source's newer versions from observations
and records the version a downstream run consumed from materializations, so both are written,
the observation first. Nothing is recorded while the content is unchanged. An edited query or
export marks its ``raw_tweets`` and ``raw_tweet_rejections`` partitions stale, and ``base_model``
(which depends on every query: the local base model pretrains on the sample's tweets); when
their new data versions equal the old ones, nothing downstream is. A new decision marks
``curated_set`` stale.
"""

import hashlib
import json

import dagster as dg

from replyassets.core.frame_hash import frame_hash
from replyassets.defs.asset_attrs import OWNERS
from replyassets.defs.column_schema import column_schema
from replyassets.defs.partitions import EXPERIMENT_PARTITIONS, QUERY_PARTITIONS
from replyassets.defs.settings_access import settings, storage
from replyassets.schemas import ReviewDecisions
from replyassets.settings import QuerySpec, load_queries

DATA_VERSION_TAG = "dagster/data_version"
OBSERVE_INTERVAL_S = 60

query_inputs = dg.AssetSpec(
    "query_inputs",
    description=(
        "A search query as the pipeline reads it: its entry in `config/queries.yaml` (text and "
        "per-query overrides) and, in the local profile, the replay export files it names. "
        "Observed by the `observe_sources` sensor: a changed query or export makes its "
        "`raw_tweets` and `raw_tweet_rejections` partitions stale, and `base_model` (the local "
        "base model pretrains on the sample's tweets of every query)."
    ),
    partitions_def=QUERY_PARTITIONS,
    group_name="collect",
    owners=OWNERS,
    kinds={"yaml", "json"},
)

review_decisions = dg.AssetSpec(
    "review_decisions",
    description=(
        "Manual review decisions (keep / reject / edit) keyed by reply id, written one at a time "
        "by `replyassets review` into the DuckDB table `main.review_decisions`. They survive every "
        "re-materialization; `curated_set` applies them. Observed every minute by the "
        "`observe_sources` sensor (and by `make demo`)."
    ),
    group_name="curate",
    owners=OWNERS,
    kinds={"duckdb"},
    metadata={"dagster/column_schema": column_schema(ReviewDecisions)},
)


experiment_specs = dg.AssetSpec(
    "experiment_specs",
    description=(
        "A training recipe as the pipeline reads it: its entry in `config/experiments.yaml` "
        "(overrides of the training and decoding settings). Observed by the `observe_sources` "
        "sensor: an edited recipe makes exactly its `lora_adapter` partition stale."
    ),
    partitions_def=EXPERIMENT_PARTITIONS,
    group_name="train",
    owners=OWNERS,
    kinds={"yaml"},
)


def experiment_version(exp) -> tuple[str, dict]:
    doc = exp.model_dump(mode="json")
    doc.pop("description", None)
    version = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    overrides = exp.overrides()
    return version, {"overrides": ", ".join(f"{k}={v}" for k, v in overrides.items()) or "none (the profile's settings)"}


def query_inputs_version(spec: QuerySpec) -> tuple[str, dict]:
    """(data version, metadata) of one query: its spec and its replay files' content."""
    s = settings()
    files: dict[str, str | None] = {}
    if s.profile == "local" or spec.replay:
        for rel in spec.replay:
            path = s.sample_dir / rel
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    doc = {"spec": spec.model_dump(mode="json"), "files": files}
    version = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    meta = {"query_text": spec.text, "replay_files": len(files), "missing_files": sum(v is None for v in files.values())}
    return version, meta


def review_decisions_version() -> tuple[str, dict]:
    from replyassets.core.review import ReviewStore

    decisions = ReviewStore(storage()).decisions()
    version = frame_hash(decisions.drop(columns=["decided_at"], errors="ignore"))
    counts = decisions["decision"].value_counts().to_dict() if len(decisions) and "decision" in decisions else {}
    return version, {"decisions": len(decisions), **{f"{k}": int(v) for k, v in counts.items()}}


def _latest_version(instance: dg.DagsterInstance, key: str, partition: str | None) -> str | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    if not records:
        return None
    event = records[0].asset_materialization
    return (event.tags or {}).get(DATA_VERSION_TAG) if event else None


def _events(key: str, partition: str | None, version: str, meta: dict) -> list:
    tags = {DATA_VERSION_TAG: version}
    return [
        dg.AssetObservation(asset_key=key, partition=partition, tags=tags, metadata=meta),
        dg.AssetMaterialization(asset_key=key, partition=partition, tags=tags, metadata=meta),
    ]


def source_observations(instance: dg.DagsterInstance) -> tuple[list, list[str]]:
    """Observations for every source whose content changed since its last observation.

    Returns (observations, problems); a source that cannot be read now (e.g. the DuckDB file is
    held by a writer) is left for the next tick and named in ``problems``.
    """
    events: list[dg.AssetMaterialization] = []
    problems: list[str] = []
    from replyassets.experiments import load_experiments

    s = settings()
    for key, partitions, what, load, version_of in (
        ("query_inputs", QUERY_PARTITIONS, "queries file", lambda: load_queries(s.queries_path), query_inputs_version),
        ("experiment_specs", EXPERIMENT_PARTITIONS, "experiments file",
         lambda: load_experiments(s.experiments_path, s), experiment_version),
    ):
        registered = set(instance.get_dynamic_partitions(partitions.name))
        try:
            entries = load()
        except (OSError, ValueError) as exc:
            problems.append(f"{what} unreadable: {exc}")
            continue
        for entry in entries:
            if entry.name not in registered:
                continue
            version, meta = version_of(entry)
            if version != _latest_version(instance, key, entry.name):
                events += _events(key, entry.name, version, meta)
    try:
        version, meta = review_decisions_version()
    except Exception as exc:  # noqa: BLE001 - a busy DuckDB file is retried on the next tick
        problems.append(f"review_decisions not readable now: {type(exc).__name__}: {str(exc)[:200]}")
    else:
        if version != _latest_version(instance, "review_decisions", None):
            events += _events("review_decisions", None, version, meta)
    return events, problems


def observe_now(instance: dg.DagsterInstance) -> tuple[int, list[str]]:
    """Record the changed sources' observations directly (``make demo``, tests).

    Returns (sources whose content changed, problems).
    """
    events, problems = source_observations(instance)
    for event in events:
        instance.report_runless_asset_event(event)
    return len(events) // 2, problems


@dg.sensor(
    name="observe_sources",
    minimum_interval_seconds=OBSERVE_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every minute: records a new data version for each query (spec and replay files) and for "
        "the review decisions whose content changed, so Dagster marks what they feed stale."
    ),
)
def observe_sources(context: dg.SensorEvaluationContext):
    events, problems = source_observations(context.instance)
    for problem in problems:
        context.log.warning(problem)
    if not events:
        return dg.SkipReason("no source changed" + (f" ({'; '.join(problems)})" if problems else ""))
    # A tick that requests no run is shown as skipped: say what it recorded instead of Dagster's
    # default "Sensor function returned an empty result".
    return dg.SensorResult(asset_events=events, skip_reason=recorded_summary(events))


def recorded_summary(events: list) -> str:
    """``recorded new data versions: review_decisions (decisions: 1), query_inputs[ai-agents]``."""
    names = []
    for event in events:
        if not isinstance(event, dg.AssetObservation):
            continue
        name = event.asset_key.to_user_string() + (f"[{event.partition}]" if event.partition else "")
        count = event.metadata.get("decisions")
        names.append(name + (f" (decisions: {getattr(count, 'value', count)})" if count is not None else ""))
    return "no run to request; recorded new data versions: " + ", ".join(names)
