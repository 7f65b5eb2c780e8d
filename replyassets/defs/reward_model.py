"""``reward_model``: a Bradley-Terry judge learned from likes (``core/reward_model.py``), trained on
the train split of ``preference_pairs`` and validated on its test split. The fitted model is
the asset's value (one row: the model's JSON and its hash), so it reaches the evaluation as an
input through the IO manager."""

import json

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from replyassets.defs.asset_attrs import DUCKDB_POOL, OWNERS, derived_code_version
from replyassets.defs.column_schema import column_schema
from replyassets.defs.metadata import mapping_table, tidy_metadata
from replyassets.defs.resources import EmbedderResource
from replyassets.defs.settings_access import settings, storage
from replyassets.schemas import RewardModelArtifact

REWARD_MODEL_CODE_VERSION = derived_code_version(
    "replyassets.defs.reward_model", "replyassets.core.reward_model",
    settings_paths=("reward_model", "curation.split_train", "curation.split_eval", "curation.split_test",
                    "curation.seed", "dedup.embedding_model", "dedup.embedding_backend", "dedup.embedding_precision"),
)


def embedding_encoder(embedder: EmbedderResource):
    """The embedder's ``encode`` through the DuckDB embedding cache (the vectors dedup computed)."""
    from replyassets.core.embedding_cache import DuckDBEmbeddingCache
    from replyassets.scorers.embeddings import CachedEmbedder

    return CachedEmbedder(embedder.build(), DuckDBEmbeddingCache(storage()))


@dg.asset(
    description=(
        "A judge learned from engagement: a Bradley-Terry model (a logistic head on frozen "
        "all-MiniLM-L6-v2 embeddings of tweet and reply plus surface features, "
        "`reward_model.features`) fitted on the train split of preference_pairs, and its agreement "
        "with likes on the test split's pairs, with a tweet-clustered bootstrap interval. It never "
        "sees a test tweet in training, and refuses to judge any tweet it trained on. "
        "eval_report judges with it when it is listed in `evaluation.judges` and the lower end of "
        "its interval is above `reward_model.min_agreement_low`."
    ),
    dagster_type=pandera_schema_to_dagster_type(RewardModelArtifact),
    metadata={"dagster/column_schema": column_schema(RewardModelArtifact)},
    code_version=REWARD_MODEL_CODE_VERSION,
    owners=OWNERS,
    kinds={"duckdb", "scikitlearn"},
    group_name="preference",
    pool=DUCKDB_POOL,
)
def reward_model(context: dg.AssetExecutionContext, preference_pairs: pd.DataFrame, deduped_pairs: pd.DataFrame,
                 curated_set: pd.DataFrame, embedder: EmbedderResource):
    from replyassets.core.eval_prompts import evaluation_tweets
    from replyassets.core.reward_model import RewardModelError, fit, validate

    s = settings()
    rm = s.reward_model
    pairs = preference_pairs.astype({"tweet_id": str, "split": str})
    train, test = pairs[pairs["split"] == "train"], pairs[pairs["split"] == "test"]
    encoder = embedding_encoder(embedder)
    # every test-split tweet an evaluation may ask it about (a repost of one under another id
    # is left out of training)
    judged = evaluation_tweets(deduped_pairs, curated_set, s.curation, len(deduped_pairs) + 1)["tweet"]
    try:
        model = fit(train, encoder.encode, embedding_model=encoder.model_id, feature_set=rm.features,
                    regularization=rm.regularization, tie_margin=rm.tie_margin, held_out=test,
                    held_out_tweets=judged)
    except RewardModelError as exc:
        raise dg.Failure(description=f"reward_model: {exc}") from exc
    # The model never judges what it learned from: the held-out tweets are not training tweets.
    assert not set(model.training_tweet_ids) & set(test["tweet_id"]), "test tweets in the reward model's training set"
    held_out = validate(model, test, encoder.encode, resamples=rm.bootstrap_resamples, seed=rm.seed)
    context.log.info(
        f"reward model: {model.training_pairs} train pairs over {len(model.training_tweet_ids)} tweets "
        f"({model.extra.get('left_out_shared_text', 0)} left out: their tweet's text is a test tweet's); held-out agreement with "
        f"likes {held_out['agreement']} [{held_out['ci_low']}, {held_out['ci_high']}] on {held_out['tweets']} "
        f"test tweets / {held_out['pairs']} pairs"
    )
    artifact = pd.DataFrame([{"model_sha256": model.sha256, "training_set_hash": model.training_set_hash,
                              "model_json": model.to_json(), "validation_json": json.dumps(held_out, sort_keys=True)}])
    low = held_out["ci_low"]
    yield dg.Output(
        artifact,
        data_version=dg.DataVersion(model.sha256),
        metadata=tidy_metadata({
            "heldout_agreement": held_out["agreement"],
            "heldout_ci_low": low,
            "heldout_ci_high": held_out["ci_high"],
            "heldout_tweets": held_out["tweets"],
            "heldout_pairs": held_out["pairs"],
            "better_than_chance": bool(low is not None and low > 0.5),
            "judges_locally": bool(low is not None and low > rm.min_agreement_low),
            "heldout": mapping_table({k: v for k, v in held_out.items()}, key="held-out (test split)"),
            "train_pairs": model.training_pairs,
            "train_tweets": len(model.training_tweet_ids),
            "train_pairs_left_out_shared_text": int(model.extra.get("left_out_shared_text", 0)),
            "training_set_hash": model.training_set_hash,
            "model_sha256": model.sha256,
            "features": rm.features,
            "regularization": rm.regularization,
            "embedding_model": model.embedding_model,
        }),
    )
