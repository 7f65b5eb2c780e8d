"""Input fingerprints: what an asset's latest materialization was computed from.

Each asset records ``input_fingerprint`` in its metadata: a hash of its code version, the
settings section it reads, and the data versions of its upstream assets (for
``raw_tweets``: the query spec and its replay files; for ``review_decisions``: the current
decisions). ``make demo`` recomputes the fingerprint and skips a step whose latest
materialization has the same one, so a second demo recomputes nothing that has not changed.
"""

import hashlib
import json

import dagster as dg

from replyassets.defs.common import QUERY_PARTITIONS, settings

PARTITIONED = {"raw_tweets", "raw_tweet_rejections", "validated_pairs"}
UPSTREAM: dict[str, list[str]] = {
    "raw_tweets": [],
    "validated_pairs": ["raw_tweets"],
    "deduped_pairs": ["validated_pairs"],
    "curated_set": ["deduped_pairs", "review_decisions"],
    "base_model": [],
    "lora_adapter": ["curated_set", "base_model"],
    "eval_report": ["lora_adapter", "curated_set", "base_model"],
}
SETTINGS_SECTIONS = {
    "raw_tweets": ["collection"],
    "validated_pairs": ["validation"],
    "deduped_pairs": ["dedup"],
    "curated_set": ["curation", "collection", "validation", "dedup"],
    "base_model": ["training"],
    "lora_adapter": ["training"],
    "eval_report": ["evaluation"],
}


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _record(instance: dg.DagsterInstance, key: str, partition: str | None = None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    return records[0] if records else None


def latest_materialization(instance: dg.DagsterInstance, key: str, partition: str | None = None):
    rec = _record(instance, key, partition)
    return rec.asset_materialization if rec else None


def data_version(instance: dg.DagsterInstance, key: str, partition: str | None = None) -> str | None:
    mat = latest_materialization(instance, key, partition)
    return (mat.tags or {}).get("dagster/data_version") if mat else None


def recorded_fingerprint(instance: dg.DagsterInstance, key: str, partition: str | None = None) -> str | None:
    mat = latest_materialization(instance, key, partition)
    if mat is None:
        return None
    value = mat.metadata.get("input_fingerprint")
    return value.value if value is not None else None


def _raw_inputs(partition: str) -> dict:
    from replyassets.settings import load_queries

    s = settings()
    spec = next((q for q in load_queries(s.queries_path) if q.name == partition), None)
    if spec is None:
        return {"missing": partition}
    files = {}
    for rel in spec.replay:
        path = s.sample_dir / rel
        files[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return {"spec": spec.model_dump(mode="json"), "files": files}


def fingerprint(instance: dg.DagsterInstance, key: str, code_version: str, partition: str | None = None) -> str:
    s = settings()
    parts: dict = {
        "code_version": code_version,
        "profile": s.profile,
        "settings": {sec: getattr(s, sec).model_dump(mode="json") for sec in SETTINGS_SECTIONS.get(key, [])},
    }
    if key == "raw_tweets" and partition:
        parts["inputs"] = _raw_inputs(partition)
    if key == "base_model" and s.training.base_model == "local-tiny":
        files = sorted(p for p in s.sample_dir.rglob("*") if p.is_file()) + [s.queries_path]
        parts["sample"] = {str(p.name): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}
    for up in UPSTREAM.get(key, []):
        if up == "review_decisions":
            from replyassets.core.review import ReviewStore

            dec = ReviewStore(s.database_path).decisions()
            parts[up] = _sha(dec.drop(columns=["decided_at"], errors="ignore").astype(str).values.tolist())
        elif up in PARTITIONED and partition:
            parts[up] = data_version(instance, up, partition)
        elif up in PARTITIONED:
            keys = sorted(instance.get_dynamic_partitions(QUERY_PARTITIONS.name))
            parts[up] = {p: data_version(instance, up, p) for p in keys}
        else:
            parts[up] = data_version(instance, up)
    return _sha(parts)
