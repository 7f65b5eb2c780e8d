"""``review_decisions`` (written by ``replyassets review``) and ``curated_set`` with its
blocking checks: the checks that stop training on a bad set."""

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from replyassets.core.curate import (
    candidates_from_deduped,
    content_hash,
    curate,
    dataset_card,
    export_curated_set,
)
from replyassets.core.embedding_cache import DuckDBEmbeddingCache
from replyassets.core.quality_checks import (
    CURATED_CHECKS,
    TEST_POWER_CHECK,
    check_test_power,
    run_curated_checks,
    why_curated_empty,
)
from replyassets.core.review import ReviewStore, progress_of
from replyassets.defs.asset_attrs import DUCKDB_POOL, OWNERS, derived_code_version
from replyassets.defs.column_schema import column_schema
from replyassets.defs.metadata import mapping_table, table_md, tidy_metadata
from replyassets.defs.resources import EmbedderResource
from replyassets.defs.settings_access import settings, storage
from replyassets.schemas import CuratedSet
from replyassets.scorers.embeddings import CachedEmbedder

# curated_set reads the curation settings, the collection windows its quality score is scaled
# by, and the thresholds its blocking checks re-apply.
CURATE_CODE_VERSION = derived_code_version(
    "replyassets.defs.curate",
    "replyassets.scorers.embeddings",
    settings_paths=(
        "curation",
        "collection.reply_max_likes",
        "collection.reply_min_followers",
        "collection.reply_max_followers",
        "collection.reply_min_delay_s",
        "collection.reply_max_delay_s",
        "collection.max_replies_per_author",
        "validation.max_toxicity",
        "evaluation.min_cohens_d",
        "evaluation.alpha",
        "evaluation.max_test_tweets",
        "validation.min_lang_confidence",
        "dedup.similarity_threshold",
        "dedup.embedding_model",
        "dedup.embedding_backend",
        "dedup.embedding_precision",
    ),
)
CURATED_CHECK_SPECS = [
    dg.AssetCheckSpec(name=name, asset="curated_set", blocking=spec.blocking, description=spec.description)
    for name, spec in CURATED_CHECKS.items()
] + [dg.AssetCheckSpec(name=TEST_POWER_CHECK.name, asset="curated_set", blocking=False,
                       description=TEST_POWER_CHECK.description)]


@dg.asset(
    description=(
        "The training set: valid, deduplicated pairs ranked by quality (engagement, author "
        "credibility, timing), review decisions applied, at most N replies per author, up to the "
        "target size, split train/eval/test grouped by source tweet. Exports train/eval/test JSONL "
        "in the Qwen3 chat format and a dataset card under `data/curated/{export hash}/` (a hash of "
        "every byte in the folder, so a recorded folder is never written again). Blocking "
        "checks stop lora_adapter when the set is not fit to train on."
    ),
    deps=["review_decisions"],
    dagster_type=pandera_schema_to_dagster_type(CuratedSet),
    metadata={"dagster/column_schema": column_schema(CuratedSet)},
    code_version=CURATE_CODE_VERSION,
    owners=OWNERS,
    kinds={"duckdb", "pandera"},
    group_name="curate",
    pool=DUCKDB_POOL,
    check_specs=CURATED_CHECK_SPECS,
)
def curated_set(context: dg.AssetExecutionContext, deduped_pairs: pd.DataFrame, embedder: EmbedderResource):
    s = settings()
    candidates = candidates_from_deduped(deduped_pairs)
    store = ReviewStore(storage())
    decisions = store.decisions()
    curated = curate(candidates, decisions, s.curation, s.collection)
    digest = content_hash(curated)
    # the folder is named by every byte it holds: a recorded folder is never written again
    export = export_curated_set(curated, s.data_dir / "curated", s.curation)
    card = dataset_card(curated, s.curation)
    progress = progress_of(candidates, decisions)
    context.log.info(f"curated {len(curated)} pairs (content hash {digest[:12]}); review progress {progress}")
    power = check_test_power(curated, s, collected=deduped_pairs)
    if not power.passed:
        context.log.warning(f"test_power: {power.description}")
    why_empty = why_curated_empty(deduped_pairs, s) if curated.empty else ""

    yield dg.Output(
        curated,
        data_version=dg.DataVersion(digest),
        metadata={
            "pairs": len(curated),
            "content_hash": digest,
            "splits": mapping_table(card.get("splits", {}), key="split", value="pairs"),
            "unique_tweets": card.get("unique_tweets", 0),
            "unique_authors": card.get("unique_authors", 0),
            "review_policy": s.curation.review_policy,
            "review_progress": mapping_table(progress, key="review", value="count"),
            "export_dir": dg.MetadataValue.path(str(export["out_dir"])),
            "export_hash": export["export_hash"],
            "train_file": dg.MetadataValue.path(str(export["files"]["train.jsonl"]["path"])),
            "eval_file": dg.MetadataValue.path(str(export["files"]["eval.jsonl"]["path"])),
            "test_file": dg.MetadataValue.path(str(export["files"]["test.jsonl"]["path"])),
            "files_sha256": mapping_table({k: v["sha256"] for k, v in export["files"].items()}, key="file", value="sha256"),
            "dataset_card": dg.MetadataValue.md(_read(export["files"].get("dataset_card.md", {}).get("path"))),
            "top_pairs": table_md(curated.head(8)[["rank", "split", "quality_score", "train_reply"]].to_dict("records")),
            "test_power": power.description,
            "test_tweets": power.metadata["test_tweets"],
            "test_tweets_needed": power.metadata["tweets_needed"],
            "more_tweets_to_collect": power.metadata["more_tweets_to_collect"] or 0,
            **({"why_empty": why_empty} if why_empty else {}),
        },
    )

    embed = CachedEmbedder(embedder.build(), DuckDBEmbeddingCache(storage()))
    outcomes = run_curated_checks(curated, s, embed=embed.encode)
    for name, outcome in outcomes.items():
        yield dg.AssetCheckResult(
            check_name=name,
            asset_key="curated_set",
            passed=bool(outcome.passed),
            severity=dg.AssetCheckSeverity.ERROR,
            description=outcome.description + (f". Empty: {why_empty}" if why_empty and not outcome.passed else ""),
            metadata=tidy_metadata(outcome.metadata),
        )
    yield dg.AssetCheckResult(
        check_name=TEST_POWER_CHECK.name,
        asset_key="curated_set",
        passed=bool(power.passed),
        severity=dg.AssetCheckSeverity.WARN,
        description=power.description,
        metadata=tidy_metadata(power.metadata),
    )


def _read(path) -> str:
    try:
        return open(path, encoding="utf-8").read()[:20000] if path else ""
    except OSError:
        return ""


# ----------------------------------------------------------------------------- the guard


def blocking_problems(curated: pd.DataFrame, embedder: EmbedderResource) -> list[str]:
    """The blocking checks of ``curated_set`` that this set fails, by the checks' own code.

    ``lora_adapter`` runs them on the set it receives as its input, so that any later run,
    backfill, schedule or automation refuses to train on a set that fails them: the guard asks
    the value itself, never the instance's record of an earlier check run.
    """
    embed = CachedEmbedder(embedder.build(), DuckDBEmbeddingCache(storage()))
    outcomes = run_curated_checks(curated, settings(), embed=embed.encode)
    return [f"{name}: FAILED ({outcome.description})" for name, outcome in outcomes.items()
            if CURATED_CHECKS[name].blocking and not outcome.passed]


def curated_export(curated: pd.DataFrame) -> dict:
    """The training files of ``curated`` (``core/curate.export_curated_set``): a folder named by
    every byte it holds, so exporting the same set again returns the folder ``curated_set``
    recorded, written once."""
    return export_curated_set(curated, settings().data_dir / "curated", settings().curation)
