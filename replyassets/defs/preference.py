"""``preference_pairs`` and ``preference_kto``: engagement turned into preferences, with the
blocking checks that stop preference training on pairs that would leak or mislead."""

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from replyassets.core.curate import tweet_split
from replyassets.core.frame_hash import frame_hash
from replyassets.core.preference import (
    RULES,
    build_preferences,
    export_preference_files,
    same_reply_pairs,
    split_conflicts,
)
from replyassets.core.review import ReviewStore
from replyassets.defs.asset_attrs import DUCKDB_POOL, OWNERS, derived_code_version
from replyassets.defs.column_schema import column_schema
from replyassets.defs.metadata import (
    histogram_md,
    mapping_table,
    table_md,
    tidy_metadata,
)
from replyassets.defs.settings_access import settings, storage
from replyassets.schemas import PreferenceKto, PreferencePairs

PREFERENCE_CODE_VERSION = derived_code_version(
    "replyassets.defs.preference", "replyassets.core.preference", settings_paths=("preference", "curation")
)

PREFERENCE_CHECKS = {
    "no_tweet_in_two_splits": (
        "Every tweet's pairs sit in one split, the curated set's split for its tweets: no test tweet "
        "ever feeds preference training."
    ),
    "chosen_differs_from_rejected": "No pair's chosen and rejected reply are one reply or one text.",
    "min_pairs": "At least preference.min_train_pairs pairs in the train split to train on.",
}
PREFERENCE_CHECK_SPECS = [
    dg.AssetCheckSpec(name=name, asset="preference_pairs", blocking=True, description=desc)
    for name, desc in PREFERENCE_CHECKS.items()
]


@dg.multi_asset(
    outs={
        "preference_pairs": dg.AssetOut(
            description=(
                "Preference pairs from likes: for each tweet, a (chosen, rejected) pair of its validated, "
                "deduplicated replies when the chosen one has at least `preference.min_like_ratio` times the "
                "likes (optionally per follower), at least `preference.min_likes` likes, and was posted no "
                "earlier (the exposure rule); at most `preference.max_pairs_per_tweet` per tweet. Splits are "
                "the curated set's, by tweet. Exports DPO/KTO JSONL (train and eval splits) under "
                "`data/preference/`; the test split checks the judge against likes."
            ),
            dagster_type=pandera_schema_to_dagster_type(PreferencePairs),
            metadata={"dagster/column_schema": column_schema(PreferencePairs)},
            code_version=PREFERENCE_CODE_VERSION,
            owners=OWNERS,
            kinds={"duckdb", "pandera"},
            group_name="preference",
        ),
        "preference_kto": dg.AssetOut(
            description=(
                "The KTO view: single replies labelled desirable (top half by engagement within their "
                "tweet) or undesirable (bottom half), same splits as preference_pairs."
            ),
            dagster_type=pandera_schema_to_dagster_type(PreferenceKto),
            metadata={"dagster/column_schema": column_schema(PreferenceKto)},
            code_version=PREFERENCE_CODE_VERSION,
            owners=OWNERS,
            kinds={"duckdb", "pandera"},
            group_name="preference",
        ),
    },
    deps=["review_decisions"],
    pool=DUCKDB_POOL,
    check_specs=PREFERENCE_CHECK_SPECS,
)
def preference_assets(context: dg.AssetExecutionContext, deduped_pairs: pd.DataFrame, curated_set: pd.DataFrame):
    s = settings()
    cur = curated_set.astype({"tweet_id": str}) if len(curated_set) else curated_set
    curated_split = dict(zip(cur["tweet_id"], cur["split"], strict=True)) if len(cur) else {}

    def split_of(tweet_id: str) -> str:
        return curated_split.get(tweet_id) or tweet_split(tweet_id, s.curation)

    decisions = ReviewStore(storage()).decisions()
    res = build_preferences(deduped_pairs, s.preference, split_of, s.curation, decisions)
    pairs, kto = res.pairs, res.kto
    pairs_hash, kto_hash, files = export_preferences(pairs, kto)
    per_split = {sp: int((pairs["split"] == sp).sum()) for sp in ("train", "eval", "test")}
    kto_split = {
        f"{sp} {'desirable' if lab else 'undesirable'}": int(((kto["split"] == sp) & (kto["label"] == lab)).sum())
        for sp in ("train", "eval", "test") for lab in (True, False)
    }
    tweets_with_pairs = int(pairs["tweet_id"].nunique())
    ratio = pairs["engagement_ratio"].dropna()
    funnel = {"candidate pairs": res.candidate_pairs, **{f"rejected: {r}": res.rejected_by_rule.get(r, 0) for r in RULES},
              "kept": len(pairs)}
    context.log.info(
        f"{len(pairs)} preference pairs over {tweets_with_pairs} tweets from {res.replies_used} replies "
        f"({res.candidate_pairs} candidate pairs); KTO view {len(kto)} replies"
    )
    yield dg.Output(
        pairs,
        output_name="preference_pairs",
        data_version=dg.DataVersion(pairs_hash),
        metadata=tidy_metadata({
            "pairs": len(pairs),
            "tweets_with_pairs": tweets_with_pairs,
            "tweets_considered": res.tweets_considered,
            "pairs_per_tweet": round(len(pairs) / tweets_with_pairs, 3) if tweets_with_pairs else 0.0,
            "splits": mapping_table(per_split, key="split", value="pairs"),
            "funnel": mapping_table(funnel, key="stage", value="pairs"),
            "replies_used": res.replies_used,
            "replies_excluded": mapping_table(res.replies_excluded or {"none": 0}, key="reason", value="replies"),
            "engagement_ratio_median": float(ratio.median()) if len(ratio) else float("nan"),
            "engagement_ratio": histogram_md(ratio.clip(upper=50), bins=10, title="chosen / rejected engagement (capped at 50)"),
            "normalize_by_followers": s.preference.normalize_by_followers,
            "content_hash": pairs_hash,
            "preference_train_file": dg.MetadataValue.path(files["preference_train.jsonl"]["path"]),
            "preference_eval_file": dg.MetadataValue.path(files["preference_eval.jsonl"]["path"]),
            "kto_train_file": dg.MetadataValue.path(files["kto_train.jsonl"]["path"]),
            "kto_eval_file": dg.MetadataValue.path(files["kto_eval.jsonl"]["path"]),
            "files_sha256": mapping_table({k: v["sha256"] for k, v in files.items()}, key="file", value="sha256"),
            "example_pairs": table_md(
                pairs.head(5)[["split", "chosen_likes", "rejected_likes", "chosen", "rejected"]].to_dict("records")
            ),
        }),
    )
    yield dg.Output(
        kto,
        output_name="preference_kto",
        data_version=dg.DataVersion(kto_hash),
        metadata=tidy_metadata({
            "replies": len(kto),
            "desirable": int(kto["label"].sum()) if len(kto) else 0,
            "undesirable": int((~kto["label"].astype(bool)).sum()) if len(kto) else 0,
            "by_split": mapping_table(kto_split, key="split / label", value="replies"),
            "content_hash": kto_hash,
        }),
    )
    yield from preference_check_results(pairs, cur, s.preference.min_train_pairs)


def export_preferences(pairs: pd.DataFrame, kto: pd.DataFrame) -> tuple[str, str, dict]:
    """``(pairs hash, kto hash, files)``: the training program's files of these frames, in a folder
    named by their hashes (same frames, same folder and bytes: ``lora_adapter`` exports the
    frames it receives as inputs again and gets the files this asset recorded)."""
    pairs_hash = frame_hash(pairs, ["pair_id", "split", "prompt", "chosen", "rejected"])
    kto_hash = frame_hash(kto, ["reply_id", "split", "prompt", "completion", "label"])
    files = export_preference_files(pairs, kto, settings().data_dir / "preference" / f"{pairs_hash[:8]}{kto_hash[:8]}")
    return pairs_hash, kto_hash, files


def preference_blocking_problems(pairs: pd.DataFrame, curated: pd.DataFrame, min_train_pairs: int) -> list[str]:
    """The blocking checks of ``preference_pairs`` that these frames fail (the checks' own code)."""
    cur = curated.astype({"tweet_id": str}) if len(curated) else curated
    blocking = {spec.name for spec in PREFERENCE_CHECK_SPECS if spec.blocking}
    return [f"{r.check_name}: FAILED ({r.description})"
            for r in preference_check_results(pairs, cur, min_train_pairs)
            if r.check_name in blocking and not r.passed]


def preference_check_results(pairs: pd.DataFrame, curated: pd.DataFrame, min_train_pairs: int):
    conflicts = split_conflicts(pairs, curated)
    yield dg.AssetCheckResult(
        asset_key="preference_pairs", check_name="no_tweet_in_two_splits", passed=not conflicts,
        description=f"{len(conflicts)} tweets in two splits" if conflicts else "every tweet in one split",
        metadata={"tweets_in_two_splits": len(conflicts), "examples": ", ".join(conflicts[:5]) or "none"},
    )
    same = same_reply_pairs(pairs)
    yield dg.AssetCheckResult(
        asset_key="preference_pairs", check_name="chosen_differs_from_rejected", passed=not same,
        description=f"{len(same)} pairs compare a reply with itself" if same else "every pair compares two replies",
        metadata={"same_reply_pairs": len(same), "examples": ", ".join(same[:5]) or "none"},
    )
    train = int((pairs["split"] == "train").sum()) if len(pairs) else 0
    yield dg.AssetCheckResult(
        asset_key="preference_pairs", check_name="min_pairs", passed=train >= min_train_pairs,
        description=f"{train} train pairs (minimum {min_train_pairs})",
        metadata={"train_pairs": train, "min_train_pairs": min_train_pairs},
    )
