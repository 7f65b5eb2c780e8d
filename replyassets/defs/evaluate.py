"""``eval_report``: base vs adapter replies on the held-out test tweets, judged pairwise in both
orders, with the statistics and a report a person reads."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from replyassets.defs.common import DUCKDB_POOL, OWNERS, derived_code_version, frame_hash, json_md, settings, table_md
from replyassets.defs.common import latest_materialization
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
        "under data/reports/<run>/."
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
    from replyassets.core.report import ui_metadata, write_report
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
        "run_id": context.run_id,
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
    report_dir = s.data_dir / "reports" / context.run_id
    sheet = export_sheet(judged, report_dir, seed=ev.generation_seed)
    key_ids = pd.read_csv(sheet["key"], dtype=str)["pair_id"].tolist()
    ratings = load_ratings(s.database_path, key_ids)
    agreement = judge_human_agreement(judged, ratings) if len(ratings) else None
    if agreement:
        sanity["judge_human_agreement"] = agreement
    paths = write_report(report_dir, stats, judged, sanity, meta)

    # Generations and verdicts are stored with the models, adapter hash and decoding settings.
    judged = judged.assign(
        run_id=context.run_id,
        base_model=base_path,
        adapter_path=adapter_path,
        adapter_sha256=str(adapter_md.get("adapter_sha256")),
        decoding=json.dumps(decoding, sort_keys=True, default=str),
    )
    flat = {k: v for k, v in ui_metadata(stats, meta).items() if v is not None}
    context.log.info(f"verdict: {flat.get('verdict')} — {flat.get('verdict_summary')}")
    yield dg.Output(
        judged,
        data_version=dg.DataVersion(frame_hash(judged.drop(columns=["run_id"]))),
        metadata={
            **{k: (float(v) if isinstance(v, float) else v) for k, v in flat.items()},
            "success": dg.MetadataValue.bool(bool(decision.get("success"))),
            "criteria": json_md(decision.get("criteria", {})),
            "perplexity_test": json_md(sanity["perplexity_test"]),
            "forgetting": json_md(forgetting),
            "sanity": json_md({k: sanity[k] for k in ("base", "adapter", "reference") if k in sanity}),
            "decoding": json_md(decoding),
            "report_md": dg.MetadataValue.path(str(paths["report_md"])),
            "report_html": dg.MetadataValue.path(str(paths["report_html"])),
            "report": dg.MetadataValue.md(_read(paths["report_md"])),
            "human_eval_sheet": dg.MetadataValue.path(sheet["sheet"]),
            "human_eval_key": dg.MetadataValue.path(sheet["key"]),
            "judge_human_agreement": json_md(agreement) if agreement else "no human ratings imported yet",
            "examples": table_md(
                [
                    {"tweet": i["tweet"][:90], "base": i["base_reply"][:90], "adapter": i["adapter_reply"][:90]}
                    for i in items[:6]
                ]
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name="perplexity",
        passed=bool(ppl_adapter is not None and ppl_adapter <= ev.perplexity_warn),
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"adapter test perplexity {ppl_adapter:.2f}, base {ppl_base:.2f} (warn above {ev.perplexity_warn})"
            if ppl_adapter is not None and ppl_base is not None
            else "perplexity not computable"
        ),
        metadata={"adapter": _num(ppl_adapter), "base": _num(ppl_base)},
    )
    yield dg.AssetCheckResult(
        check_name="forgetting",
        passed=not forgetting.get("warn"),
        severity=dg.AssetCheckSeverity.WARN,
        description=f"general-text perplexity ratio adapter/base = {forgetting.get('ratio')}",
        metadata={"ratio": _num(forgetting.get("ratio")), "threshold": ev.forgetting_warn_ratio},
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


def _read(path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")[:30000]
    except OSError:
        return ""


def _num(v):
    return float(v) if isinstance(v, (int, float)) and v == v else dg.MetadataValue.null()

