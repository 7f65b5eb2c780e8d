"""``leaderboard`` (one row per experiment) and ``champion`` (the adapter to ship, behind a gate).

The leaderboard reads every experiment's latest ``eval_report`` (its exact figures in
``comparisons.json``) and ``lora_adapter``; p-values against the base model are
Holm-Bonferroni adjusted over the experiments evaluated on the same curated set, so trying
many recipes cannot make one look significant by chance. ``champion`` moves only when the
``promotion_gate`` check passes (``core/stats.promotion_gate``): every success criterion
against the base model with the adjusted p, a win over the retrieval baseline, a win over the
default recipe for any other experiment (so its A/A twin is never promoted for noise), and a
win over the current champion with a win-rate interval above 0.5. A failed gate leaves the champion in
place; the reason is the check's description. The history of champions is the DuckDB table
``main.champion``.
"""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from replyassets.core import db

from replyassets.defs.common import (
    DUCKDB_POOL,
    OWNERS,
    derived_code_version,
    fmt_num,
    latest_materialization,
    records_table,
    settings,
    tidy_metadata,
)
from replyassets.defs.evaluate import _latest_reports, current_champion
from replyassets.experiments import DEFAULT_EXPERIMENT

LEADERBOARD_CODE_VERSION = derived_code_version(
    "replyassets.defs.leaderboard", settings_paths=("evaluation.alpha", "evaluation.min_cohens_d",
                                                    "evaluation.min_improvement", "evaluation.primary_test")
)
LEADERBOARD_COLUMNS = [
    "experiment", "recipe", "curated_set_hash", "train_loss", "eval_loss", "eval_perplexity",
    "win_rate", "win_rate_ci_low", "win_rate_ci_high", "lc_win_rate", "win_rate_vs_retrieval",
    "n_tweets", "verdict", "p_raw", "p_holm", "comparisons", "cost_usd", "tokens_per_s", "champion",
]
HISTORY_COLUMNS = ["promoted_at", "experiment", "adapter_path", "adapter_sha256", "curated_set_hash",
                   "win_rate", "p_holm", "reason", "run_id"]


def leaderboard_rows(reports: dict[str, dict], adapters: dict[str, dict], champion: str | None) -> pd.DataFrame:
    """One row per experiment from its report figures and adapter metadata (pure)."""
    from replyassets.core.stats import holm_bonferroni

    by_hash: dict[str, dict[str, float | None]] = {}
    for name, rep in reports.items():
        by_hash.setdefault(str(rep.get("curated_set_hash")), {})[name] = rep.get("p_raw")
    adjusted: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    for group in by_hash.values():
        adj = holm_bonferroni(group)
        adjusted.update(adj)
        for name in group:
            counts[name] = sum(v is not None for v in group.values())
    rows = []
    for name in sorted(set(reports) | set(adapters)):
        rep, ad = reports.get(name, {}), adapters.get(name, {})
        base = (rep.get("stats") or {}).get("base") or {}
        retrieval = (rep.get("stats") or {}).get("retrieval") or {}
        rows.append({
            "experiment": name,
            "recipe": str(ad.get("recipe", "")),
            "curated_set_hash": str(rep.get("curated_set_hash") or ad.get("curated_set_hash") or "")[:12],
            "train_loss": ad.get("final_train_loss"),
            "eval_loss": ad.get("final_eval_loss"),
            "eval_perplexity": ad.get("eval_perplexity"),
            "win_rate": base.get("win_rate"),
            "win_rate_ci_low": base.get("win_rate_ci_low"),
            "win_rate_ci_high": base.get("win_rate_ci_high"),
            "lc_win_rate": base.get("lc_win_rate"),
            "win_rate_vs_retrieval": retrieval.get("win_rate"),
            "n_tweets": base.get("n_tweets"),
            "verdict": str((rep.get("verdict") or {}).get("label", "not evaluated")),
            "p_raw": rep.get("p_raw"),
            "p_holm": adjusted.get(name),
            "comparisons": counts.get(name, 0),
            "cost_usd": ad.get("cost_usd"),
            "tokens_per_s": ad.get("train_tokens_per_s"),
            "champion": name == champion,
        })
    df = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    for col in LEADERBOARD_COLUMNS:
        if col not in ("experiment", "recipe", "curated_set_hash", "verdict", "champion", "n_tweets", "comparisons"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["n_tweets"] = pd.to_numeric(df["n_tweets"], errors="coerce").fillna(0).astype("int64")
    df["comparisons"] = df["comparisons"].astype("int64")
    df["champion"] = df["champion"].astype(bool)
    return df.sort_values(["win_rate_ci_low", "win_rate"], ascending=False, na_position="last").reset_index(drop=True)


def _adapters(instance: dg.DagsterInstance) -> dict[str, dict]:
    out = {}
    for part in instance.get_dynamic_partitions("experiment"):
        mat = latest_materialization(instance, "lora_adapter", part)
        if mat is not None:
            out[part] = {k: v.value for k, v in mat.metadata.items()}
    return out


@dg.asset(
    description=(
        "One row per experiment: its recipe (difference from the default), the curated set it was "
        "trained on, train/eval loss and perplexity, win rate against the base model with its "
        "interval, the length-controlled win rate, the win rate against the retrieval baseline, "
        "the verdict, raw and Holm-adjusted p (over the experiments evaluated on the same curated "
        "set), cost, tokens/s and the champion mark."
    ),
    deps=["eval_report", "lora_adapter"],
    code_version=LEADERBOARD_CODE_VERSION,
    owners=OWNERS,
    kinds={"duckdb"},
    group_name="evaluate",
    pool=DUCKDB_POOL,
)
def leaderboard(context: dg.AssetExecutionContext) -> dg.Output:
    from replyassets.core.plots import image_md, win_rates_png

    champion = current_champion(context.instance)
    df = leaderboard_rows(_latest_reports(context.instance), _adapters(context.instance),
                          champion["experiment"] if champion else None)
    plot = win_rates_png([
        {"experiment": r.experiment, "win_rate": _f(r.win_rate), "ci_low": _f(r.win_rate_ci_low),
         "ci_high": _f(r.win_rate_ci_high), "champion": bool(r.champion)}
        for r in df.itertuples()
    ])
    shown = ["experiment", "verdict", "win_rate", "win_rate_ci_low", "win_rate_ci_high", "win_rate_vs_retrieval",
             "lc_win_rate", "p_holm", "n_tweets", "eval_loss", "cost_usd", "champion", "recipe"]
    return dg.Output(
        df,
        metadata=tidy_metadata({
            "experiments": len(df),
            "champion": champion["experiment"] if champion else "none",
            "leaderboard": records_table(df[shown].to_dict("records"), shown),
            "win_rates": dg.MetadataValue.md(image_md(plot, "win rate vs the base model, per experiment")),
            "markdown": dg.MetadataValue.md(leaderboard_markdown(df)),
        }),
    )


def _f(v):
    return None if v is None or pd.isna(v) else float(v)


def leaderboard_markdown(df: pd.DataFrame) -> str:
    lines = ["| experiment | verdict | win rate vs base [interval] | vs retrieval | p (Holm) | tweets | champion |",
             "|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        lines.append(
            f"| {r.experiment} | {r.verdict} | {fmt_num(_f(r.win_rate))} [{fmt_num(_f(r.win_rate_ci_low))}, "
            f"{fmt_num(_f(r.win_rate_ci_high))}] | {fmt_num(_f(r.win_rate_vs_retrieval))} | {fmt_num(_f(r.p_holm))} | "
            f"{r.n_tweets} | {'yes' if r.champion else ''} |"
        )
    return "\n".join(lines)


class ChampionConfig(dg.Config):
    merge: bool = False
    """Also merge a newly promoted adapter into its base model (saved beside its model card)."""


def _history(storage: db.Storage | Path | None = None) -> pd.DataFrame:
    storage = db.as_storage(storage)
    if not storage.exists():
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    with db.connect(storage, purpose="champion history") as con:
        if not db.table_exists(con, "champion", "main"):
            return pd.DataFrame(columns=HISTORY_COLUMNS)
        return con.execute("SELECT * FROM main.champion ORDER BY promoted_at").df()


def candidates_in_order(board: pd.DataFrame, champion: str | None) -> list[str]:
    """The experiments to put through the gate, best first by the lower end of their win-rate
    interval against the base model, the champion left out."""
    rows = board[(board["experiment"] != champion) & board["win_rate"].notna()]
    ordered_rows = rows.sort_values(["win_rate_ci_low", "win_rate"], ascending=False, na_position="last")
    return [str(x) for x in ordered_rows["experiment"]]


def choose_candidate(board: pd.DataFrame, champion: str | None) -> str | None:
    """The first experiment to put through the gate (see ``candidates_in_order``)."""
    names = candidates_in_order(board, champion)
    return names[0] if names else None


def default_comparison(reports: dict[str, dict], candidate: str,
                       default: str = DEFAULT_EXPERIMENT) -> tuple[dict | None, str | None]:
    """``(vs_default, default_missing)`` for ``promotion_gate``: the candidate's figures against
    the default recipe from its own report (eval_report judges every other experiment against
    the default trained on the same curated set), or why there are none."""
    if candidate == default:
        return None, None
    rep = reports.get(candidate) or {}
    curated = str(rep.get("curated_set_hash") or "")
    default_rep = reports.get(default)
    if default_rep is None or str(default_rep.get("curated_set_hash") or "") != curated:
        return None, f"{default} was not evaluated on curated set {curated[:12] or '(unknown)'}"
    if (rep.get("opponents") or {}).get("default") != default:
        return None, None  # the gate says: was not compared with the default recipe
    return (rep.get("stats") or {}).get("default"), None


@dg.asset(
    description=(
        "The adapter to ship. An experiment becomes champion only through the blocking "
        "`promotion_gate` check: every success criterion against the base model (Holm-adjusted p), "
        "a win over the retrieval baseline, a win over the default recipe (for any other experiment: "
        "its A/A twin is never promoted for noise) and a win over the current champion, each with a win-rate "
        "interval above 0.5. A failed gate leaves the champion in place, with the reason. The "
        "history of champions is the DuckDB table `main.champion`; a promotion writes a model card "
        "(and, with `merge: true`, the merged model) under `data/champions/`."
    ),
    code_version=derived_code_version("replyassets.defs.leaderboard", settings_paths=("evaluation",)),
    owners=OWNERS,
    kinds={"duckdb"},
    group_name="evaluate",
    pool=DUCKDB_POOL,
    check_specs=[dg.AssetCheckSpec(
        "promotion_gate", asset="champion", blocking=True,
        description=("the candidate beats the base model (all criteria, Holm-adjusted), the retrieval baseline, "
                     "the default recipe and the champion"),
    )],
)
def champion(context: dg.AssetExecutionContext, config: ChampionConfig, leaderboard: pd.DataFrame):
    from replyassets.core.stats import promotion_gate, verdict
    from replyassets.defs.experiments import experiment as find_experiment

    s = settings()
    current = current_champion(context.instance)
    current_name = current["experiment"] if current else None
    reports = _latest_reports(context.instance)
    history = _history(db.storage_from_settings(s))
    board = leaderboard.set_index("experiment")

    def gate(name: str) -> dict:
        rep, row = reports[name], board.loc[name]
        ev = find_experiment(name).evaluation_settings(s.evaluation)
        vs_base = verdict(rep["stats"]["base"], ev, adjusted_p=_f(row["p_holm"]), comparisons=int(row["comparisons"]))
        judged_against = (rep.get("opponents") or {}).get("champion")
        vs_champion = rep["stats"].get("champion") if current_name and judged_against == current_name else None
        vs_default, default_missing = default_comparison(reports, name)
        return promotion_gate(name, vs_base, rep["stats"].get("retrieval"), vs_champion, current_name,
                              vs_default=vs_default, default=DEFAULT_EXPERIMENT, default_missing=default_missing)

    # Best first; a refused leader (e.g. the default's A/A twin, which never beats the default)
    # does not keep the next one, which passes every check itself, from being promoted.
    names = [n for n in candidates_in_order(leaderboard, current_name) if n in reports]
    decisions = [gate(n) for n in names]
    promoted = [d for d in decisions if d["promote"]]
    decision = promoted[0] if promoted else (decisions[0] if decisions else None)
    candidate = decision["candidate"] if decision else None
    if decision is None:
        decision = {"promote": False, "candidate": None, "champion": current_name, "checks": [],
                    "reason": "no evaluated experiment other than the champion"}
    else:
        rep = reports[candidate]
        row = board.loc[candidate]
        if decision["promote"]:
            card_dir = s.data_dir / "champions" / f"{candidate}-{context.run.run_id[:8]}"
            card_dir.mkdir(parents=True, exist_ok=True)
            (card_dir / "MODEL_CARD.md").write_text(model_card(candidate, rep, row, decision), encoding="utf-8")
            if config.merge:
                from replyassets.training.merge import merge_adapter

                base = latest_materialization(context.instance, "base_model")
                merge_adapter(str(rep["adapter_path"]), card_dir / "merged",
                              base_model=str(base.metadata["model_path"].value))
            new_row = pd.DataFrame([{
                "promoted_at": datetime.now(UTC).replace(tzinfo=None),
                "experiment": candidate, "adapter_path": str(rep["adapter_path"]),
                "adapter_sha256": str(rep.get("adapter_sha256") or ""),
                "curated_set_hash": str(rep.get("curated_set_hash") or ""),
                "win_rate": _f(row["win_rate"]), "p_holm": _f(row["p_holm"]),
                "reason": decision["reason"], "run_id": context.run.run_id,
            }])
            history = new_row if history.empty else pd.concat([history, new_row], ignore_index=True)
    history = history.reindex(columns=HISTORY_COLUMNS)
    history["promoted_at"] = pd.to_datetime(history["promoted_at"])
    for col in ("win_rate", "p_holm"):
        history[col] = pd.to_numeric(history[col], errors="coerce").astype("float64")
    now = str(history.iloc[-1]["experiment"]) if len(history) else None
    adapter = str(history.iloc[-1]["adapter_path"]) if len(history) else None
    line = f"PROMOTED {candidate}: {decision['reason']}" if decision["promote"] else decision["reason"]
    context.log.info(line)
    yield dg.Output(
        history,
        metadata=tidy_metadata({
            "decision": line,
            "champion": now or "none",
            "champion_adapter": adapter or "",
            "candidate": candidate or "none",
            "gate": records_table(decision.get("checks") or [], ["check", "passed", "detail"]),
            "refused": records_table([{"experiment": d["candidate"], "reason": d["reason"]}
                                      for d in decisions if not d["promote"]], ["experiment", "reason"]),
            "history": records_table(history.astype({"promoted_at": str}).to_dict("records"), HISTORY_COLUMNS),
        }),
    )
    yield dg.AssetCheckResult(
        check_name="promotion_gate",
        passed=bool(decision["promote"]),
        severity=dg.AssetCheckSeverity.ERROR,
        description=line,
        metadata={"candidate": candidate or "none", "champion": now or "none"},
    )


def model_card(name: str, report: dict, row: pd.Series, decision: dict) -> str:
    """A model card for a promoted adapter: recipe, data, statistics, limits."""
    from replyassets.defs.experiments import experiment as find_experiment

    exp = find_experiment(name)
    base = report["stats"]["base"]
    lines = [
        f"# replyassets adapter: {name}", "",
        f"Promoted {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. {decision['reason']}", "",
        "## Recipe", "",
        *(f"- `{k}` = {v}" for k, v in exp.overrides().items()),
        "- the profile's training settings" + (" otherwise" if exp.overrides() else ""),
        "", "## Data", "",
        f"- curated set `{report.get('curated_set_hash')}` (its dataset card is in `data/curated/`)",
        f"- adapter `{report.get('adapter_path')}` (sha256 `{report.get('adapter_sha256')}`)",
        "", "## Evaluation (the test tweet is the unit)", "",
        (f"- win rate vs the base model {fmt_num(base.get('win_rate'))} "
         f"[{fmt_num(base.get('win_rate_ci_low'))}, {fmt_num(base.get('win_rate_ci_high'))}] on {base.get('n_tweets')} tweets"),
        f"- p (Holm-adjusted over {int(row['comparisons'])} experiments) {fmt_num(_f(row['p_holm']))}",
        f"- Cohen's d {fmt_num(base.get('cohens_d'))}; power for d = 0.3 at this size {fmt_num(base.get('power_d03'))}",
        "", "## Limits", "",
        "- judged by an automatic judge; see the report's judge-human agreement before trusting small margins",
        "- trained and tested on replies to the collected queries only; other topics are untested",
        "", "## Gate", "",
        *(f"- {'pass' if c['passed'] else 'FAIL'}: {c['check']} ({c['detail']})" for c in decision.get("checks") or []),
    ]
    return "\n".join(lines) + "\n"
