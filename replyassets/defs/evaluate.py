"""``eval_report``: base vs adapter replies on the held-out test tweets, judged pairwise in both
orders, with the statistics and a report a person reads."""

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from replyassets.defs.common import (
    DUCKDB_POOL,
    OWNERS,
    derived_code_version,
    fmt_num,
    frame_hash,
    json_md,
    latest_materialization,
    mapping_table,
    ordered,
    records_table,
    settings,
    table_md,
    tidy_metadata,
)
from replyassets.defs.resources import JudgeResource

EVAL_CODE_VERSION = derived_code_version(
    "replyassets.defs.evaluate",
    "replyassets.judges.factory",
    "replyassets.judges.offline",
    "replyassets.judges.anthropic_judge",
    settings_paths=("evaluation",),
)


def _meta(instance: dg.DagsterInstance, key: str) -> dict:
    mat = latest_materialization(instance, key)
    if mat is None:
        raise dg.Failure(f"{key} has not been materialized yet")
    return {k: v.value for k, v in mat.metadata.items()}


@dg.asset(
    description=(
        "Replies from the base model and from base + adapter for every tweet of curated_set's test "
        "split (same decoding settings and seeds, thinking disabled), judged pairwise in both orders "
        "(a split verdict is a tie) and scored alone; win rate with a bootstrap interval, "
        "length-controlled win rate, Mann-Whitney U, Wilcoxon, Cohen's d, position bias, sanity and "
        "forgetting checks, and the verdict against the success criteria. Writes report.md/.html "
        "under `data/reports/{run id}/`."
    ),
    deps=["lora_adapter", "base_model"],
    code_version=EVAL_CODE_VERSION,
    owners=OWNERS,
    kinds={"duckdb", "pytorch"},
    group_name="evaluate",
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec("perplexity", asset="eval_report", description="WARN when test perplexity exceeds the limit"),
        dg.AssetCheckSpec("forgetting", asset="eval_report", description="WARN when the adapter is markedly worse on general text"),
    ],
)
def eval_report(context: dg.AssetExecutionContext, curated_set: pd.DataFrame, judge: JudgeResource):
    from replyassets.core.human_eval import export_sheet, judge_human_agreement, load_ratings
    from replyassets.core.generation import decoding_config, generate_pair, load_general_texts, perplexity
    from replyassets.core.judging import DuckDBVerdictCache, JudgingFailed, judge_pairs
    from replyassets.core.report import HUMAN_AGREEMENT_KEY, write_report
    from replyassets.core.stats import compute_stats, forgetting_check, sanity_stats, verdict
    from replyassets.judges.base import JudgeError

    s = settings()
    ev = s.evaluation
    if s.training.cpu_threads > 0:  # tiny local models generate fastest on one thread
        import torch

        torch.set_num_threads(s.training.cpu_threads)
    adapter_md = _meta(context.instance, "lora_adapter")
    base_md = _meta(context.instance, "base_model")
    base_path = str(base_md["model_path"])
    adapter_path = str(adapter_md["adapter_path"])
    check_same_curated_set(adapter_md, curated_set)

    test = curated_set[curated_set["split"] == "test"].sort_values("rank")
    if test.empty:
        raise dg.Failure("curated_set has no test split: nothing to evaluate")
    prompts = test["prompt"].tolist()
    references = test["train_reply"].tolist()
    tweets = (test["tweet_clean"] if "tweet_clean" in test else test["tweet"]).tolist()
    context.log.info(f"generating {len(prompts)} replies with the base model and with base + adapter")
    base_replies, adapter_replies = generate_pair(base_path, adapter_path, prompts, ev)

    items = [
        {"item_id": rid, "tweet": tw, "base_reply": b, "adapter_reply": a, "reference": ref}
        for rid, tw, b, a, ref in zip(test["reply_id"], tweets, base_replies, adapter_replies, references, strict=True)
    ]
    j = judge.build()
    try:
        judged = judge_pairs(
            j, items, cache=DuckDBVerdictCache(s.database_path), concurrency=ev.judge_concurrency,
            max_error_fraction=ev.max_judge_error_fraction,
        )
    except (JudgingFailed, JudgeError) as exc:
        raise dg.Failure(description=f"judging failed: {exc}") from exc
    stats = compute_stats(judged, ev)
    decision = verdict(stats, ev)

    # Perplexity on the reply tokens only (as the training loss), and on general text (forgetting).
    ppl_base = perplexity(base_path, None, references, prompts=prompts)
    ppl_adapter = perplexity(base_path, adapter_path, references, prompts=prompts)
    general = load_general_texts()
    forgetting = forgetting_check(perplexity(base_path, None, general), perplexity(base_path, adapter_path, general), ev)
    sanity = sanity_stats(base_replies, adapter_replies, references)
    sanity.update(
        perplexity_test={"base": ppl_base, "adapter": ppl_adapter, "warn_above": ev.perplexity_warn},
        forgetting=forgetting,
    )
    decoding = decoding_config(ev)
    meta = {
        "run_id": context.run.run_id,
        "profile": s.profile,
        "base_model": base_path,
        "adapter_path": adapter_path,
        "adapter_sha256": adapter_md.get("adapter_sha256"),
        "curated_set_hash": adapter_md.get("curated_set_hash"),
        "judge_name": j.name,
        "judge_model": j.model_id,
        "judge_offline": bool(getattr(j, "offline", False)),
        "decoding": decoding,
        "verdict": decision,
        "test_tweets": len(prompts),
    }
    # Human raters: a blinded sheet per report; ratings imported for these exact generations
    # (`replyassets human-eval import`) are compared with the judge.
    report_dir = s.data_dir / "reports" / context.run.run_id
    sheet = export_sheet(judged, report_dir, seed=ev.generation_seed)
    key_ids = pd.read_csv(sheet["key"], dtype=str)["pair_id"].tolist()
    ratings = load_ratings(s.database_path, key_ids)
    agreement = judge_human_agreement(judged, ratings) if len(ratings) else None
    if agreement:
        meta[HUMAN_AGREEMENT_KEY] = agreement
    paths = write_report(report_dir, stats, judged, sanity, meta)

    # Generations and verdicts are stored with the models, adapter hash and decoding settings.
    judged = judged.assign(
        run_id=context.run.run_id,
        base_model=base_path,
        adapter_path=adapter_path,
        adapter_sha256=str(adapter_md.get("adapter_sha256")),
        decoding=json.dumps(decoding, sort_keys=True, default=str),
    )
    metadata = eval_metadata(
        stats=stats, decision=decision, sanity=sanity, meta=meta, paths=paths, sheet=sheet,
        agreement=agreement, items=items, perplexity_warn=ev.perplexity_warn,
    )
    context.log.info(f"verdict: {metadata['verdict']} ({decision.get('summary')})")
    yield dg.Output(
        judged,
        data_version=dg.DataVersion(frame_hash(judged.drop(columns=["run_id"]))),
        metadata=metadata,
    )
    yield dg.AssetCheckResult(
        check_name="perplexity",
        passed=bool(ppl_adapter is not None and ppl_adapter <= ev.perplexity_warn),
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"adapter test perplexity {fmt_num(ppl_adapter, PPL_SIG_DIGITS)}, base "
            f"{fmt_num(ppl_base, PPL_SIG_DIGITS)} (warn above {fmt_num(ev.perplexity_warn, PPL_SIG_DIGITS)})"
            if ppl_adapter is not None and ppl_base is not None
            else "perplexity not computable"
        ),
        metadata=tidy_metadata(
            {"adapter": _num(ppl_adapter), "base": _num(ppl_base), "warn_above": float(ev.perplexity_warn)},
            sig=PPL_SIG_DIGITS,
        ),
    )
    yield dg.AssetCheckResult(
        check_name="forgetting",
        passed=not forgetting.get("warn"),
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"general-text perplexity ratio adapter/base = {fmt_num(forgetting.get('ratio'))} "
            f"(warn above {fmt_num(ev.forgetting_warn_ratio)})"
        ),
        metadata=tidy_metadata({"ratio": _num(forgetting.get("ratio")), "threshold": ev.forgetting_warn_ratio}),
    )


def check_same_curated_set(adapter_md: dict, curated_set: pd.DataFrame) -> None:
    """Refuse to evaluate an adapter on a curated set it was not trained on.

    After a re-curation the test split can hold tweets the adapter trained on, which would
    inflate every statistic of the report.
    """
    from replyassets.core.curate import content_hash

    trained_on = str(adapter_md.get("curated_set_hash") or "")
    current = content_hash(curated_set)
    if trained_on != current:
        raise dg.Failure(
            description=(
                f"lora_adapter was trained on curated_set {trained_on[:16] or '(unknown)'} but the current "
                f"curated_set is {current[:16]}: its test split may hold tweets the adapter trained on. "
                "Materialize lora_adapter again (it trains on the current set), then eval_report."
            ),
            metadata={"adapter_curated_set_hash": trained_on, "current_curated_set_hash": current},
        )


# --------------------------------------------------------------------------- metadata (presentation)

# The order a person reads the asset page in (Dagster shows metadata in insertion order).
EVAL_METADATA_ORDER = (
    "verdict", "criteria", "success",
    # headline numbers
    "win_rate", "win_rate_ci", "lc_win_rate", "adapter_score_mean", "base_score_mean", "relative_improvement",
    "wilcoxon_p", "cohens_d", "n_items", "n_valid", "wins", "ties", "losses",
    # plots
    "outcomes_plot", "score_distribution", "length_distribution",
    # tables
    "perplexity_test", "forgetting", "sanity", "decoding", "judge", "judge_human_agreement", "examples",
    # the report and the rest
    "report", "report_md", "report_html", "human_eval_sheet", "human_eval_key",
)
PLOT_KEYS = {"outcomes.png": ("outcomes_plot", "pairwise outcomes"),
             "scores.png": ("score_distribution", "judge score distributions"),
             "lengths.png": ("length_distribution", "reply lengths")}
NO_RATINGS = "no human ratings imported yet"
PPL_SIG_DIGITS = 4  # 1872 vs 2017, not 1870 vs 2020


def criteria_table(decision: Mapping[str, Any]) -> dg.MetadataValue:
    """The success criteria: criterion, value, threshold, pass (empty when not computable), note."""
    rows = [
        {"criterion": name, "value": fmt_num(c.get("value")), "threshold": str(c.get("threshold", "")),
         "pass": None if c.get("passed") is None else bool(c["passed"]), "note": str(c.get("note") or "")}
        for name, c in (decision.get("criteria") or {}).items()
    ]
    return records_table(rows, ["criterion", "value", "threshold", "pass", "note"])


def sanity_table(sanity: Mapping[str, Any]) -> dg.MetadataValue:
    """Length, diversity and repetition measures: one row per measure, one column per model."""
    models = [m for m in ("base", "adapter", "reference") if isinstance(sanity.get(m), Mapping)]
    measures = list(dict.fromkeys(k for m in models for k in sanity[m]))
    rows = [{"measure": k, **{m: sanity[m].get(k) for m in models}} for k in measures]
    return records_table(rows, ["measure", *models])


def eval_metadata(
    *,
    stats: Mapping[str, Any],
    decision: Mapping[str, Any],
    sanity: Mapping[str, Any],
    meta: Mapping[str, Any],
    paths: Mapping[str, Any],
    sheet: Mapping[str, Any] | None = None,
    agreement: Mapping[str, Any] | None = None,
    items: list[Mapping[str, Any]] | None = None,
    perplexity_warn: float | None = None,
) -> dict[str, Any]:
    """``eval_report``'s metadata in reading order: the verdict line, the criteria table, the
    headline numbers, the plots (PNG data URIs, the same files the report shows), the tables,
    then links and the rest. Every float is rounded for display (report.json keeps the exact
    figures)."""
    from replyassets.core.plots import image_md
    from replyassets.core.report import ui_metadata, verdict_line

    flat = {k: v for k, v in ui_metadata(dict(stats), dict(meta)).items() if v is not None}
    for k in ("verdict", "verdict_passed", "criteria_passed"):
        flat.pop(k, None)  # the verdict line and the criteria table say it
    md: dict[str, Any] = {
        "verdict": verdict_line(dict(decision)),
        "criteria": criteria_table(decision),
        "success": dg.MetadataValue.bool(bool(decision.get("success"))),
        **flat,
        "win_rate_ci": f"[{fmt_num(stats.get('win_rate_ci_low'))}, {fmt_num(stats.get('win_rate_ci_high'))}]",
        "cohens_d_ci": f"[{fmt_num(stats.get('cohens_d_ci_low'))}, {fmt_num(stats.get('cohens_d_ci_high'))}]",
    }
    for k in ("win_rate_ci_low", "win_rate_ci_high", "cohens_d_ci_low", "cohens_d_ci_high"):
        md.pop(k, None)
    for name, (key, alt) in PLOT_KEYS.items():
        path = (paths.get("plots") or {}).get(name)
        if path and Path(path).is_file():
            md[key] = dg.MetadataValue.md(image_md(Path(path).read_bytes(), alt))
    ppl = sanity.get("perplexity_test") or {}
    base, adapter = ppl.get("base"), ppl.get("adapter")
    md["perplexity_test"] = mapping_table(
        {"base": base, "adapter": adapter,
         "adapter / base": adapter / base if isinstance(adapter, (int, float)) and base else None,
         "warn above (adapter)": ppl.get("warn_above", perplexity_warn)},
        key="test-reply perplexity", sig=PPL_SIG_DIGITS,
    )
    forgetting = sanity.get("forgetting") or {}
    md["forgetting"] = mapping_table(
        {"base": forgetting.get("base_ppl"), "adapter": forgetting.get("adapter_ppl"),
         "adapter / base": forgetting.get("ratio"), "warn above (ratio)": forgetting.get("threshold"),
         "warning": forgetting.get("warn")},
        key="general-text perplexity", sig=PPL_SIG_DIGITS,
    )
    md["sanity"] = sanity_table(sanity)
    md["decoding"] = mapping_table(meta.get("decoding") or {}, key="setting")
    md["judge_human_agreement"] = json_md(agreement) if agreement else NO_RATINGS
    md["examples"] = table_md(
        [{"tweet": i["tweet"][:90], "base": i["base_reply"][:90], "adapter": i["adapter_reply"][:90]}
         for i in (items or [])[:6]]
    )
    md["report"] = dg.MetadataValue.md(_report_for_ui(paths.get("report_md")))
    md["report_md"] = dg.MetadataValue.path(str(paths["report_md"]))
    md["report_html"] = dg.MetadataValue.path(str(paths["report_html"]))
    if sheet:
        md["human_eval_sheet"] = dg.MetadataValue.path(str(sheet["sheet"]))
        md["human_eval_key"] = dg.MetadataValue.path(str(sheet["key"]))
    return tidy_metadata(ordered(md, EVAL_METADATA_ORDER))


_REPORT_IMG = re.compile(r"^!\[([^\]]*)\]\([\w.-]+\.png\)$", re.MULTILINE)


def _report_for_ui(path) -> str:
    """report.md for the asset page: its relative image links would not resolve there, so they
    point at the plot entries above."""
    return _REPORT_IMG.sub(r"_(plot: \1, shown in this asset's metadata above)_", _read(path))


def _read(path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")[:30000]
    except OSError:
        return ""


def _num(v):
    return float(v) if isinstance(v, (int, float)) and v == v else dg.MetadataValue.null()

