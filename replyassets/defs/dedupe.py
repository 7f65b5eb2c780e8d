"""``deduped_pairs``: exact then semantic dedup over all query partitions, incremental."""

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from replyassets.core.dedup import (
    dedup_summary,
    dedupe,
    method_choice_text,
    semantic_path_metadata,
)
from replyassets.core.embedding_cache import DuckDBEmbeddingCache
from replyassets.core.frame_hash import frame_hash
from replyassets.defs.asset_attrs import DUCKDB_POOL, OWNERS, derived_code_version
from replyassets.defs.column_schema import column_schema
from replyassets.defs.metadata import funnel_table, table_md
from replyassets.defs.resources import EmbedderResource
from replyassets.defs.settings_access import settings, storage
from replyassets.schemas import DedupedPairs
from replyassets.scorers.embeddings import CachedEmbedder

DEDUP_CODE_VERSION = derived_code_version(
    "replyassets.defs.dedupe", "replyassets.scorers.embeddings", "replyassets.scorers.static_embeddings",
    settings_paths=("dedup.similarity_threshold", "dedup.embedding_model", "dedup.embedding_backend",
                    "dedup.embedding_precision", "dedup.ann_threshold_rows", "dedup.candidate_model",
                    "dedup.candidate_threshold"),
)


@dg.asset(
    description=(
        "All validated pairs across every query with the global dedup decision: exact duplicates "
        "on normalized text, then semantic duplicates (cosine >= threshold, all-MiniLM-L6-v2); the "
        "higher-engagement reply survives and each dropped row names the row it duplicates. "
        "Embeddings (OpenVINO by default, dedup.embedding_backend) are cached in DuckDB by model, "
        "backend and text hash, so only new replies are embedded. With dedup.candidate_model: static "
        "(the cascade), a static model distilled from the same model screens the replies first and only "
        "those with a close neighbour are embedded; the metadata says which path ran."
    ),
    dagster_type=pandera_schema_to_dagster_type(DedupedPairs),
    metadata={"dagster/column_schema": column_schema(DedupedPairs)},
    code_version=DEDUP_CODE_VERSION,
    owners=OWNERS,
    kinds={"duckdb", "pandera", "pytorch"},
    group_name="dedupe",
    pool=DUCKDB_POOL,
    automation_condition=dg.AutomationCondition.eager(),
)
def deduped_pairs(
    context: dg.AssetExecutionContext, validated_pairs: pd.DataFrame, embedder: EmbedderResource
) -> dg.Output:
    s = settings()
    df = validated_pairs.reset_index(drop=True)
    valid = df[df["valid"]]
    cached = CachedEmbedder(embedder.build(), DuckDBEmbeddingCache(storage()))
    static = None
    if s.dedup.candidate_model == "static":
        from replyassets.scorers.embedding_backends import EmbeddingBackendError
        from replyassets.scorers.static_embeddings import StaticEmbedder

        try:
            static = StaticEmbedder(embedder.model)
        except EmbeddingBackendError as exc:
            raise dg.Failure(description=str(exc)) from exc
    # functions: dedupe embeds only the rows its semantic step needs (the exact survivors; with
    # the cascade, those with a static candidate)
    out = dedupe(df, cached.encode if len(valid) else None, threshold=s.dedup.similarity_threshold,
                 text_col="reply_clean", ann_threshold_rows=s.dedup.ann_threshold_rows,
                 candidates=static.encode if static is not None else None,
                 candidate_threshold=s.dedup.candidate_threshold if static is not None else None)
    how = out.attrs.pop("semantic_dedup", {})
    if static is not None and static.built_now:
        context.log.info(f"built the static candidate model under {static.models_dir / 'static'}")
    stats = cached.stats()
    summary = dedup_summary(out)
    n_valid, kept = summary["valid"], summary["kept"]
    exact, semantic = summary["exact_duplicates"], summary["semantic_duplicates"]
    context.log.info(f"{kept}/{n_valid} valid pairs kept ({exact} exact, {semantic} semantic duplicates); cache {stats}")
    examples = (
        out.loc[out["dup_kind"] == "semantic", ["reply_id", "duplicate_of", "similarity", "reply_clean"]]
        .head(8)
        .to_dict("records")
    )
    by_query = out.groupby("query").agg(pairs=("reply_id", "size"), valid=("valid", "sum"), kept=("kept", "sum"))
    return dg.Output(
        out,
        data_version=dg.DataVersion(frame_hash(out.drop(columns=["collected_at"], errors="ignore"))),
        metadata={
            "rows_in": len(df),
            "valid_in": n_valid,
            "kept": kept,
            "exact_duplicates": exact,
            "semantic_duplicates": semantic,
            "similarity_threshold": s.dedup.similarity_threshold,
            "semantic_method": str(how.get("method", "none")),
            **semantic_path_metadata(how, s.dedup.candidate_model),
            **({"semantic_method_why": why} if (why := method_choice_text(how)) else {}),
            "screen_dims": int(how.get("prefilter_dims", 0)),
            "screened_pairs": int(how.get("screened_pairs", how.get("lsh_screened_pairs", 0))),
            "embedding_model": embedder.model,
            "embedding_model_id": cached.model_id,
            "embedding_cache_hits": int(stats.get("cache_hits", 0)),
            "embedding_cache_misses": int(stats.get("cache_misses", 0)),
            "texts_embedded": int(stats.get("texts_embedded", 0)),
            "funnel": funnel_table(summary["funnel"]),
            "by_query": table_md(by_query.reset_index().to_dict("records")),
            "semantic_duplicate_examples": table_md(examples),
        },
    )
