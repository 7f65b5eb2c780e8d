"""``validated_pairs``: every raw pair with each rule's verdict, scores and cleaned text."""

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from replyassets.core.frame_hash import frame_hash
from replyassets.core.rule_settings import (
    rule_rows,
    rule_text,
    setting_ref,
    top_rules_text,
)
from replyassets.core.validate import validate_pairs, validation_funnel_rows
from replyassets.defs.asset_attrs import DUCKDB_POOL, OWNERS, derived_code_version
from replyassets.defs.column_schema import column_schema
from replyassets.defs.metadata import funnel_table, histogram_md, table_md
from replyassets.defs.partitions import QUERY_PARTITIONS
from replyassets.defs.resources import LanguageResource, ToxicityResource
from replyassets.defs.settings_access import settings
from replyassets.schemas import ValidatedPairs

VALIDATE_CODE_VERSION = derived_code_version(
    "replyassets.defs.validate", "replyassets.scorers.language", "replyassets.scorers.toxicity",
    settings_paths=("validation",),
)


@dg.asset(
    description=(
        "Every raw pair of a query with each validation rule's verdict (length, URLs, engagement, "
        "English confidence, toxicity, spam/crypto keywords, meaningful words, generic phrases, "
        "personal data), the scores, and the cleaned training text. Rejected rows stay, with reasons."
    ),
    partitions_def=QUERY_PARTITIONS,
    metadata={"partition_expr": "query", "dagster/column_schema": column_schema(ValidatedPairs)},
    dagster_type=pandera_schema_to_dagster_type(ValidatedPairs),
    code_version=VALIDATE_CODE_VERSION,
    owners=OWNERS,
    kinds={"duckdb", "pandera"},
    group_name="validate",
    pool=DUCKDB_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        dg.AssetCheckSpec("non_empty", asset="validated_pairs", partitions_def=QUERY_PARTITIONS,
                          description="the partition has valid pairs"),
        dg.AssetCheckSpec(
            "rejection_rate", asset="validated_pairs", partitions_def=QUERY_PARTITIONS,
            description="WARN when validation rejects more than validation.rejection_rate_alarm of a partition",
        ),
    ],
)
def validated_pairs(
    context: dg.AssetExecutionContext,
    raw_tweets: pd.DataFrame,
    language: LanguageResource,
    toxicity: ToxicityResource,
):
    s = settings()
    df = validate_pairs(raw_tweets, s.validation, language.build(), toxicity.build())
    n, valid = len(df), int(df["valid"].sum()) if len(df) else 0
    context.log.info(f"{context.partition_key}: {valid}/{n} pairs valid")
    funnel, by_rule = validation_funnel_rows(df)
    rules = rule_rows({("validation", code): k for code, k in by_rule.items()}, s)
    funnel = funnel[:2] + [{"stage": f"rejected: {rule_text(r)}", "count": r["items"]} for r in rules]
    if valid:
        why_empty = ""
    elif n:
        why_empty = f"every pair failed validation; the rules that removed the most pairs: {top_rules_text(rules)}"
    else:
        why_empty = (f"no pairs in: raw_tweets[{context.partition_key}] is empty; its `non_empty` check and "
                     "its `top_rejection_rules` name the collection rules (and settings) that removed the most items")
    rejected_examples = (
        df.loc[~df["valid"], ["reply_id", "reasons", "reply"]].head(8).to_dict("records") if n else []
    )
    yield dg.Output(
        df,
        data_version=dg.DataVersion(frame_hash(df.drop(columns=["collected_at"], errors="ignore"))),
        metadata={
            "pairs_in": n,
            "valid": valid,
            "rejected": n - valid,
            "rejection_rate": float(round(1 - valid / n, 4)) if n else 0.0,
            "funnel": funnel_table(funnel),
            "length_distribution": histogram_md(df["reply_clean"].str.len() if n else pd.Series(dtype=float), title="cleaned reply length (chars)"),
            "toxicity_distribution": histogram_md(df["toxicity"] if n else pd.Series(dtype=float), title="toxicity"),
            "language_confidence_distribution": histogram_md(df["lang_confidence"] if n else pd.Series(dtype=float), title="English confidence"),
            "rejected_examples": table_md(rejected_examples),
            "top_rejection_rules": top_rules_text(rules),
            **({"why_empty": why_empty} if why_empty else {}),
        },
    )
    rate = 1 - valid / n if n else 1.0
    yield dg.AssetCheckResult(
        check_name="non_empty",
        passed=valid > 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{context.partition_key}: {valid} valid pairs of {n}" + (f": {why_empty}" if why_empty else ""),
        metadata={"valid": valid, "pairs": n},
    )
    yield dg.AssetCheckResult(
        check_name="rejection_rate",
        passed=rate <= s.validation.rejection_rate_alarm,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{context.partition_key}: rejection rate {rate:.1%} (alarm above {setting_ref('validation.rejection_rate_alarm', s)})"
                     + (f"; the rules that removed the most pairs: {top_rules_text(rules)}" if rules else "")),
        metadata={"rejection_rate": float(round(rate, 4)), "alarm": s.validation.rejection_rate_alarm},
    )

