"""``eval_report`` (one partition per experiment): the adapter against the base model and the
retrieval baseline on the test tweets, judged pairwise in both orders, with the statistics (the
tweet as unit) and a report a person reads. Its table holds what was generated and judged, per
test tweet and decoding seed (experiment, tweet, seed, the adapter's text, the adapter's hash):
comparisons between experiments (against the default recipe, against the champion) and the Holm
family are made downstream from it, in ``champion`` (``defs/champion.py``)."""

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from replyassets.core.artifact import Artifact
from replyassets.defs.common import (
    DUCKDB_POOL,
    EXPERIMENT_PARTITIONS,
    OWNERS,
    derived_code_version,
    fmt_num,
    frame_hash,
    mapping_table,
    ordered,
    records_table,
    settings,
    storage,
    tidy_metadata,
)
from replyassets.defs.experiments import experiment
from replyassets.defs.judge_panel import (
    JUDGES_KEY,
    build_panel,
    judges_against_likes,
    panel_sections,
    panel_summary,
)
from replyassets.defs.judge_panel import prepare as prepare_judges
from replyassets.defs.metadata import shown_hashes
from replyassets.defs.resources import EmbedderResource, JudgeResource

EVAL_CODE_VERSION = derived_code_version(
    "replyassets.defs.evaluate",
    "replyassets.defs.experiments",
    "replyassets.scorers.embeddings",
    "replyassets.judges.factory",
    "replyassets.judges.offline",
    "replyassets.judges.anthropic_judge",
    "replyassets.judges.reward_model",
    "replyassets.defs.judge_panel",
    settings_paths=("evaluation", "reward_model.min_agreement_low", "curation.split_train", "curation.split_eval", "curation.split_test",
                    "curation.seed", "curation.prompt_template", "dedup.embedding_model",
                    "dedup.embedding_backend", "dedup.embedding_precision", "training.cpu_threads",
                    "training.base_model",  # the forgetting message frames the tiny local model
                    # the offline judge's length penalty (judges/factory.py)
                    "validation.min_chars", "validation.max_chars"),
)


@dg.asset(
    description=(
        "One experiment's adapter against the base model and a retrieval baseline (the reply of the "
        "most similar training tweet), on every collected tweet the "
        "split function puts in the test split (one generation per tweet and decoding seed, "
        "thinking disabled), judged pairwise in both orders (a split verdict is a tie) and scored "
        "alone. The tweet is the unit: win rates with a cluster bootstrap interval by tweet, "
        "Wilcoxon and Mann-Whitney on per-tweet scores, Cohen's d, the power for d = 0.3, "
        "and the verdict against the success criteria (unadjusted: `champion` adjusts p over every "
        "experiment evaluated on the curated set). Its table stores every generation judged, per test "
        "tweet and decoding seed, with the adapter's hash: `champion` compares experiments from it. "
        "Every judge of `evaluation.judges` is checked against real likes (test "
        "tweets of preference_pairs) and against the others; the first that qualifies decides (the "
        "reward_model input only when its held-out interval is above chance), and the report says "
        "which and why, with the reward model's training-set hash. Writes report.md/.html under `data/reports/{run id}/` (the 8-character id the UI shows)."
    ),
    partitions_def=EXPERIMENT_PARTITIONS,
    code_version=EVAL_CODE_VERSION,
    owners=OWNERS,
    kinds={"duckdb", "pytorch"},
    group_name="evaluate",
    pool=DUCKDB_POOL,
    metadata={"partition_expr": "experiment"},
    check_specs=[
        dg.AssetCheckSpec("perplexity", asset="eval_report", partitions_def=EXPERIMENT_PARTITIONS,
                          description="WARN when test perplexity exceeds the limit"),
        dg.AssetCheckSpec("forgetting", asset="eval_report", partitions_def=EXPERIMENT_PARTITIONS,
                          description="WARN when the adapter is markedly worse on general text"),
    ],
)
def eval_report(
    context: dg.AssetExecutionContext,
    lora_adapter: Artifact,
    base_model: Artifact,
    curated_set: pd.DataFrame,
    deduped_pairs: pd.DataFrame,
    preference_pairs: pd.DataFrame,
    reward_model: pd.DataFrame,
    judge: JudgeResource,
    embedder: EmbedderResource,
):
    from replyassets.core.check_text import forgetting_message
    from replyassets.core.eval_prompts import decoding_seeds, evaluation_tweets
    from replyassets.core.generation import (
        decoding_config,
        generate_pair,
        load_general_texts,
        perplexity,
    )
    from replyassets.core.human_eval import (
        export_sheet,
        judge_human_agreement,
        load_ratings,
    )
    from replyassets.core.judging import DuckDBVerdictCache, JudgingFailed, judge_pairs
    from replyassets.core.report import (
        HUMAN_AGREEMENT_KEY,
        JUDGE_LIKES_KEY,
        judge_likes_flag,
        write_report,
    )
    from replyassets.core.stats import (
        compute_stats,
        forgetting_check,
        sanity_stats,
        verdict,
    )
    from replyassets.judges.base import JudgeError

    s = settings()
    name = context.partition_key
    ev = experiment(name).evaluation_settings(s.evaluation)
    if s.training.cpu_threads > 0:  # tiny local models generate fastest on one thread
        import torch

        torch.set_num_threads(s.training.cpu_threads)
    base_path, adapter_path = base_model.path, lora_adapter.path
    adapter_sha = lora_adapter.sha256
    check_same_curated_set(lora_adapter.attrs, curated_set)
    curated_hash = str(lora_adapter.attrs.get("curated_set_hash"))

    tweets = evaluation_tweets(deduped_pairs, curated_set, s.curation, ev.max_test_tweets)
    if tweets.empty:
        raise dg.Failure("no collected tweet falls in the test split: nothing to evaluate")
    seeds = decoding_seeds(ev)
    prompts = tweets["prompt"].tolist()
    context.log.info(f"{name}: {len(tweets)} test tweets x {len(seeds)} decoding seed(s)")

    # Opponents: the base model and the retrieval baseline. Other experiments (the default
    # recipe, the champion) are compared downstream, in champion, from the stored generations.
    generations: dict[str, dict[int, list[str]]] = {"adapter": {}, "base": {}}
    for seed in seeds:
        dec = ev.model_copy(update={"generation_seed": seed})
        generations["base"][seed], generations["adapter"][seed] = generate_pair(base_path, adapter_path, prompts, dec)
    retrieval = retrieval_replies(tweets, curated_set, embedder)
    opponents: dict[str, dict[int, list[str]]] = {"base": generations["base"], "retrieval": {sd: retrieval for sd in seeds}}
    opponent_names = {"base": "base model", "retrieval": "retrieval baseline"}

    panel = build_panel(judge, reward_model, embedder, ev, s.reward_model.min_agreement_low, tweets["tweet_id"])
    j = panel["judges"][panel["primary"]]
    context.log.info(f"judge: {panel['primary']} ({panel['reason']})")
    prepare_judges({"decides": j}, [*tweets["tweet"], *(r for g in [*generations.values(), *opponents.values()]
                                                       for v in g.values() for r in v)])
    cache = DuckDBVerdictCache(storage())
    judged_by: dict[str, pd.DataFrame] = {}
    for role, replies in opponents.items():
        items = [
            {"item_id": f"{role}:{t}:{sd}", "tweet": tw, "base_reply": replies[sd][i],
             "adapter_reply": generations["adapter"][sd][i], "reference": ref if isinstance(ref, str) else None}
            for sd in seeds
            for i, (t, tw, ref) in enumerate(zip(tweets["tweet_id"], tweets["tweet"], tweets["reference"], strict=True))
        ]
        try:
            judged = judge_pairs(j, items, cache=cache, concurrency=ev.judge_concurrency,
                                 max_error_fraction=ev.max_judge_error_fraction)
        except (JudgingFailed, JudgeError) as exc:
            raise dg.Failure(description=f"judging against the {opponent_names[role]} failed: {exc}") from exc
        parts = judged["item_id"].str.split(":", expand=True)
        judged_by[role] = judged.assign(comparison=role, tweet_id=parts[1], decoding_seed=parts[2].astype(int))
    likes_by = judges_against_likes(panel["judges"], cache, preference_pairs, ev)
    likes = likes_by["by_judge"][panel["primary"]]
    judges_record = panel_summary(panel, likes_by)
    context.log.info(
        f"judge vs likes: agreement {likes['agreement']} [{likes['ci_low']}, {likes['ci_high']}] on {likes['pairs']} test tweets"
    )
    stats_by = {role: compute_stats(df, ev, unit_col="tweet_id") for role, df in judged_by.items()}
    stats = stats_by["base"]

    # Unadjusted here: the Holm family (every experiment evaluated on this curated set) is
    # defined downstream, in champion, which sees them all.
    p_raw = _p(stats, ev)
    decision = verdict(stats, ev)
    judge_flag = judge_likes_flag(likes)
    decision["judge_flags"] = [judge_flag] if judge_flag else []

    # Perplexity on the curated test replies (reply tokens only, as the training loss), and on
    # general text (forgetting).
    cur_test = curated_set[curated_set["split"] == "test"]
    refs, ref_prompts = cur_test["train_reply"].tolist(), cur_test["prompt"].tolist()
    ppl_base = perplexity(base_path, None, refs, prompts=ref_prompts) if refs else None
    ppl_adapter = perplexity(base_path, adapter_path, refs, prompts=ref_prompts) if refs else None
    general = load_general_texts()
    forgetting = forgetting_check(perplexity(base_path, None, general), perplexity(base_path, adapter_path, general), ev)
    first = seeds[0]
    sanity = sanity_stats(generations["base"][first], generations["adapter"][first],
                          [r for r in tweets["reference"] if isinstance(r, str)] or None)
    sanity.update(
        perplexity_test={"base": ppl_base, "adapter": ppl_adapter, "warn_above": ev.perplexity_warn},
        forgetting=forgetting,
    )
    decoding = decoding_config(ev)
    comparison_rows = [
        {"opponent": opponent_names[role], "tweets": st.get("n_tweets"), "win rate": st.get("win_rate"),
         "interval low": st.get("win_rate_ci_low"), "interval high": st.get("win_rate_ci_high"),
         "wilcoxon p": st.get("wilcoxon_p")}
        for role, st in stats_by.items()
    ]
    meta = {
        "run_id": context.run.run_id,
        "experiment": name,
        "profile": s.profile,
        "base_model": base_path,
        "adapter_path": adapter_path,
        "adapter_sha256": adapter_sha,
        "curated_set_hash": curated_hash,
        "judge_name": j.name,
        "judge_model": j.model_id,
        "judge_offline": bool(getattr(j, "offline", False)),
        "decoding": {**decoding, "seeds": seeds},
        "verdict": decision,
        "test_tweets": len(tweets),
        JUDGE_LIKES_KEY: likes,
        JUDGES_KEY: judges_record,
    }
    report_dir = report_folder(s.data_dir / "reports", context.run.run_id)
    sheet = export_sheet(judged_by["base"], report_dir, seed=ev.generation_seed)
    key_ids = pd.read_csv(sheet["key"], dtype=str)["pair_id"].tolist()
    ratings = load_ratings(storage(), key_ids)
    agreement = judge_human_agreement(judged_by["base"], ratings) if len(ratings) else None
    if agreement:
        meta[HUMAN_AGREEMENT_KEY] = agreement
    meta["sections"] = report_sections(comparison_rows) + panel_sections(panel, likes_by)
    paths = write_report(report_dir, stats, judged_by["base"], sanity, meta)
    # Exact figures of every comparison (the report's; champion recomputes its own from the table).
    summary_path = Path(report_dir) / "comparisons.json"
    summary_path.write_text(json.dumps(
        {"experiment": name, "curated_set_hash": curated_hash, "adapter_path": adapter_path,
         "adapter_sha256": adapter_sha, "stats": stats_by, "verdict": decision, "p_raw": p_raw,
         "judge": {"name": j.name, "model": j.model_id, "offline": bool(getattr(j, "offline", False))},
         JUDGE_LIKES_KEY: likes, JUDGES_KEY: judges_record}, indent=1, sort_keys=True, default=str))

    judged_all = generation_table(judged_by, likes, experiment=name, run_id=context.run.run_id,
                                  base_path=base_path, adapter_path=adapter_path, adapter_sha256=adapter_sha,
                                  curated_set_hash=curated_hash,
                                  decoding=json.dumps(decoding, sort_keys=True, default=str))
    items_base = judged_by["base"].to_dict("records")
    metadata = eval_metadata(
        stats=stats, decision=decision, sanity=sanity, meta=meta, paths=paths, sheet=sheet,
        agreement=agreement, items=items_base, perplexity_warn=ev.perplexity_warn,
    )
    metadata = {
        **{k: metadata[k] for k in list(metadata)[:3]},
        "comparisons": comparisons_table(comparison_rows),
        "n_tweets": int(stats.get("n_tweets") or 0),
        "power_d03": stats.get("power_d03"),
        "tweets_needed_d03": stats.get("tweets_needed_d03"),
        "p_raw": p_raw,
        "judge_flag": judge_flag or "none",
        "judge_likes_agreement": likes["agreement"],
        "judge_likes_ci_low": likes["ci_low"],
        "judge_likes_ci_high": likes["ci_high"],
        "judge_likes_tweets": int(likes["pairs"]),
        "judge_better_than_chance": bool(likes["better_than_chance"]),
        "judge_decides": panel["primary"],
        "judge_selection": panel["reason"],
        "judges_likes": records_table(
            [{"judge": n, "agreement [interval]": f"{fmt_num(v.get('agreement'))} [{fmt_num(v.get('ci_low'))}, "
                                                  f"{fmt_num(v.get('ci_high'))}]",
              "test tweets": v.get("pairs")} for n, v in likes_by["by_judge"].items()],
            ["judge", "agreement [interval]", "test tweets"]),
        # the hash of the set the reward model was trained on (its tweets are never judged by it)
        "reward_model_trained_on": panel["reward_model"]["training_set_hash"],
        "reward_model_sha256": panel["reward_model"]["sha256"],
        **{k: v for k, v in list(metadata.items())[3:]},
        "experiment": name,
        "curated_set_hash": curated_hash,
    }
    context.log.info(f"{name}: verdict {metadata['verdict']} ({decision.get('summary')})")
    yield dg.Output(
        judged_all,
        data_version=dg.DataVersion(frame_hash(judged_all.drop(columns=["run_id"]))),
        metadata=tidy_metadata(shown_hashes(metadata, ("reward_model_trained_on", "reward_model_sha256",
                                                       "curated_set_hash"))),
    )
    yield dg.AssetCheckResult(
        check_name="perplexity",
        passed=bool(ppl_adapter is not None and ppl_adapter <= ev.perplexity_warn),
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{name}: adapter test perplexity {fmt_num(ppl_adapter, PPL_SIG_DIGITS)}, base "
            f"{fmt_num(ppl_base, PPL_SIG_DIGITS)} (warn above {fmt_num(ev.perplexity_warn, PPL_SIG_DIGITS)})"
            if ppl_adapter is not None and ppl_base is not None
            else f"{name}: perplexity not computable"
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
        description=forgetting_message(name, forgetting.get("ratio"), ev.forgetting_warn_ratio,
                                       bool(forgetting.get("warn")), s.training.base_model == "local-tiny"),
        metadata=tidy_metadata({"ratio": _num(forgetting.get("ratio")), "threshold": ev.forgetting_warn_ratio}),
    )


def report_sections(comparison_rows: list[dict]) -> list[dict]:
    """The report's comparison table: this adapter against every opponent."""
    cols = ["opponent", "tweets", "win rate", "interval low", "interval high", "wilcoxon p"]
    return [
        {"title": "Comparisons (the test tweet is the unit)", "columns": cols,
         "rows": [[r[c] for c in cols] for r in comparison_rows],
         "note": ("Win rate of this adapter against each opponent; ties count half; 0.5 = no difference. "
                  "The comparisons with other experiments (the default recipe, the champion) and the "
                  "Holm-adjusted p are on the champion and leaderboard pages.")},
    ]


def generation_table(judged_by: Mapping[str, pd.DataFrame], likes: Mapping[str, Any], *,
                     experiment: str, run_id: str, base_path: str, adapter_path: str, adapter_sha256: str,
                     curated_set_hash: str, decoding: str) -> pd.DataFrame:
    """``eval_report``'s table: every judged item (comparison, test tweet, decoding seed) with the
    adapter's generated text (``adapter_reply``), the opponent's (``base_reply``), the tweet's
    reference reply, the judge's verdicts, and what identifies the evaluation (experiment, adapter
    hash, curated set, judge and its agreement with likes): what ``champion`` needs to compare
    experiments with the same judge, seeds and tweets."""
    out = pd.concat(list(judged_by.values()), ignore_index=True)
    return out.assign(
        experiment=experiment, run_id=run_id, base_model=base_path, adapter_path=adapter_path,
        adapter_sha256=str(adapter_sha256), curated_set_hash=curated_set_hash, decoding=decoding,
        judge_likes_agreement=_float(likes.get("agreement")), judge_likes_ci_low=_float(likes.get("ci_low")),
        judge_likes_ci_high=_float(likes.get("ci_high")), judge_likes_pairs=int(likes.get("pairs") or 0),
    )


def _float(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and v == v else None


def _p(stats: dict, ev) -> float | None:
    """The p-value of the primary test (the one the success criterion uses)."""
    key = "wilcoxon_p" if ev.primary_test == "wilcoxon" else "mannwhitney_p"
    return stats.get(key)


def retrieval_replies(tweets: pd.DataFrame, curated_set: pd.DataFrame, embedder) -> list[str]:
    """The retrieval baseline: for each test tweet, the curated reply of the most similar
    training tweet (all-MiniLM-L6-v2 embeddings, cached in DuckDB): the cheapest thing a
    fine-tune must beat."""
    from replyassets.core.embedding_cache import DuckDBEmbeddingCache
    from replyassets.core.retrieval import nearest_replies
    from replyassets.scorers.embeddings import CachedEmbedder

    train = curated_set[curated_set["split"] == "train"].sort_values("rank").drop_duplicates("tweet_id")
    if train.empty:
        raise dg.Failure("curated_set has no training tweets: no retrieval baseline")
    text_col = "tweet_clean" if "tweet_clean" in train.columns else "tweet"
    embed = CachedEmbedder(embedder.build(), DuckDBEmbeddingCache(storage()))
    query = np.asarray(embed.encode(tweets["tweet"].tolist()), dtype="float32")
    keys = np.asarray(embed.encode(train[text_col].astype(str).tolist()), dtype="float32")
    replies, _ = nearest_replies(query, keys, train["train_reply"].astype(str).tolist())
    return list(replies)


def check_same_curated_set(adapter_md: Mapping[str, Any], curated_set: pd.DataFrame) -> None:
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
    # the verdict, the outcomes as a plot and why: the first screen of the page
    "verdict", "outcomes_plot", "criteria", "success",
    # headline numbers
    "win_rate", "win_rate_ci", "lc_win_rate", "adapter_score_mean", "base_score_mean",
    "relative_improvement", "wilcoxon_p", "cohens_d", "n_items", "n_valid", "wins", "ties", "losses", "glossary",
    # plots (small enough to show inline) and the folder of the full-size ones
    "score_distribution", "length_distribution", "report_folder",
    # tables
    "perplexity_test", "forgetting", "sanity", "decoding", "judge", "judge_human_agreement", "examples_note", "examples",
    # the report and the rest
    "report", "report_files",
)
# What each file of the report folder holds (the page names the folder once: `report_folder`).
REPORT_FILES = (
    ("report_html", "the report with its plots (open it in a browser)"),
    ("report_md", "the same report as markdown"),
    ("report_json", "every figure of the report, unrounded"),
    ("comparisons", "each comparison's exact figures, the verdict and the judge"),
    ("sheet", "the blinded sheet for human raters (fill in, then `replyassets human-eval import`)"),
    ("key", "which reply is which on the sheet: keep it from the raters"),
)


def report_folder(reports: Path, run_id: str) -> Path:
    """A run's report folder: the short run id the UI shows everywhere (8 characters, so the
    page's path fits its column), the full id in the unlikely case another run has it."""
    short, owner = reports / run_id[:8], reports / run_id[:8] / ".run_id"
    if short.exists() and not (owner.is_file() and owner.read_text().strip() == run_id):
        return reports / run_id
    short.mkdir(parents=True, exist_ok=True)
    owner.write_text(run_id + "\n")  # a retry of this run writes to the same folder
    return short


def report_files_md(paths: Mapping[str, Any], sheet: Mapping[str, Any] | None) -> dg.MarkdownMetadataValue:
    """The report folder's files, each with what it holds (a path beside its content, not a
    column of bare paths)."""
    files = {**{k: paths.get(k) for k in ("report_html", "report_md", "report_json")}, **(sheet or {})}
    if paths.get("report_md"):
        files["comparisons"] = str(Path(paths["report_md"]).parent / "comparisons.json")
    rows = [f"| `{Path(str(files[k])).name}` | {what} |" for k, what in REPORT_FILES if files.get(k)]
    return dg.MetadataValue.md("| file in `report_folder` | holds |\n|---|---|\n" + "\n".join(rows))


# The inline plot of each full-size PNG in the report folder (the report embeds the PNG files).
PLOT_KEYS = {"outcomes.png": ("outcomes_plot", "pairwise outcomes"),
             "scores.png": ("score_distribution", "judge score distributions"),
             "lengths.png": ("length_distribution", "reply lengths")}
# What the short keys of the page mean (a markdown value under the UI's inline limit).
GLOSSARY = (
    "**win_rate**: share of test tweets where the judge prefers the adapter (ties half; 0.5 = no "
    "difference). **lc_win_rate**: the same, controlled for reply length. **p_raw / p_holm**: the "
    "primary test's p-value, raw and Holm-adjusted over the experiments compared with the base model. "
    "**cohens_d**: the effect size of the per-tweet score difference. **power_d03**: the chance this "
    "many tweets detect d = 0.3; **tweets_needed_d03**: tweets for 80 % power. **judge_likes_agreement**: "
    "how often the judge picks the reply readers liked more (0.5 = chance)."
)
EXAMPLES_NOTE = ("Test tweets with the replies of the base model and the adapter (template tags removed, "
                 "clipped). In the local profile both come from the tiny local model, pretrained for seconds: "
                 "expect broken words; the statistics above say whether the adapter writes better ones.")
NO_RATINGS = "no human ratings imported yet"
PPL_SIG_DIGITS = 4  # 1872 vs 2017, not 1870 vs 2020


def criteria_table(decision: Mapping[str, Any]) -> dg.MetadataValue:
    from replyassets.core.markdown import breakable

    """The success criteria in four columns that fit the page's value column: criterion, pass
    (empty when not computable), value, and what it needs (the threshold, then its note)."""
    rows = [
        {"criterion": breakable(name), "pass": None if c.get("passed") is None else bool(c["passed"]),
         "value": fmt_num(c.get("value")),
         "needs": breakable("; ".join(x for x in (str(c.get("threshold") or ""), str(c.get("note") or "")) if x))}
        for name, c in (decision.get("criteria") or {}).items()
    ]
    return records_table(rows, ["criterion", "pass", "value", "needs"])


def comparisons_table(rows: list[Mapping[str, Any]]) -> dg.MetadataValue:
    """Every opponent in four columns: opponent, tweets, win rate with its interval, Wilcoxon p."""
    return records_table(
        [{"opponent": r["opponent"], "tweets": r.get("tweets"),
          "win rate [interval]": f"{fmt_num(r.get('win rate'))} [{fmt_num(r.get('interval low'))}, "
                                 f"{fmt_num(r.get('interval high'))}]",
          "wilcoxon p": r.get("wilcoxon p")} for r in rows],
        ["opponent", "tweets", "win rate [interval]", "wilcoxon p"])


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
    figures). Long because it is the page itself: one entry per line, in the order read."""
    from replyassets.core.markdown import breakable, shown_generation
    from replyassets.core.plots import (
        lengths_inline_md,
        outcome_inline_md,
        scores_inline_md,
    )
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
    # every plot small enough for the UI to show without a click; full size in the report folder
    md["outcomes_plot"] = dg.MetadataValue.md(outcome_inline_md(
        int(stats.get("wins") or 0), int(stats.get("ties") or 0), int(stats.get("losses") or 0)))
    rows = list(items or [])
    if rows:
        md["score_distribution"] = dg.MetadataValue.md(scores_inline_md(
            [i.get("base_score") for i in rows], [i.get("adapter_score") for i in rows]))
        md["length_distribution"] = dg.MetadataValue.md(lengths_inline_md(
            [i.get("base_reply") for i in rows], [i.get("adapter_reply") for i in rows]))
    if paths.get("report_md"):
        md["report_folder"] = dg.MetadataValue.path(str(Path(paths["report_md"]).parent))
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
    md["judge_human_agreement"] = (
        mapping_table(agreement, key="judge-human agreement") if agreement else NO_RATINGS)
    md["glossary"] = dg.MetadataValue.md(GLOSSARY)
    md["examples_note"] = EXAMPLES_NOTE
    md["examples"] = records_table(
        [{"tweet": breakable(shown_generation(i["tweet"], 90)), "base": breakable(shown_generation(i["base_reply"], 90)),
          "adapter": breakable(shown_generation(i["adapter_reply"], 90))} for i in (items or [])[:6]],
        ["tweet", "base", "adapter"],
    )
    md["report"] = dg.MetadataValue.md(_report_for_ui(paths.get("report_md")))
    md["report_files"] = report_files_md(paths, sheet)
    return tidy_metadata(ordered(md, EVAL_METADATA_ORDER))


_REPORT_IMG = re.compile(r"^!\[([^\]]*)\]\(([\w.-]+\.png)\)$", re.MULTILINE)


def _report_for_ui(path) -> str:
    """report.md for the asset page: its relative image links would not resolve there, so each
    names the metadata entry that shows the plot inline and the file in the report folder."""
    keys = {name: key for name, (key, _) in PLOT_KEYS.items()}

    def where(m: re.Match) -> str:
        key = keys.get(m.group(2))
        shown = f"the `{key}` entry of this page, " if key else ""
        return f"_(plot: {m.group(1)}: {shown}full size `{m.group(2)}` in `report_folder`)_"

    return _REPORT_IMG.sub(where, _read(path))


def _read(path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")[:30000]
    except OSError:
        return ""


def _num(v):
    return float(v) if isinstance(v, (int, float)) and v == v else dg.MetadataValue.null()

