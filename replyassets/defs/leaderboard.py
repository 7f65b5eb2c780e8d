"""``leaderboard``: one row per experiment, like compared with like.

It reads every experiment's latest ``eval_report`` (its exact figures in ``comparisons.json``)
and ``lora_adapter``; its rows, columns and order are ``core/leaderboard.py``'s: losses by
objective (``sft_*``, ``dpo_eval_loss``, ``kto_eval_loss``, never one ``eval_loss`` mixing
scales), each row's judge and that judge's agreement with likes, p-values Holm-adjusted over the
experiments evaluated on the same curated set, and the rows in **gate order**
(``gate_decisions``, the order ``champion`` (defs/champion.py) decides in), not by the raw win
rate, with where each stands (``gate``) and why (``gate_reason``).
"""

import dagster as dg
import pandas as pd

from replyassets.core.markdown import breakable

from replyassets.core.leaderboard import (  # noqa: F401 - LEADERBOARD_COLUMNS, default_comparison: importable here
    GATE_NOT_EVALUATED,
    LEADERBOARD_COLUMNS,
    default_comparison,
    leaderboard_markdown,
    leaderboard_rows,
)
from replyassets.defs.common import (
    DUCKDB_POOL,
    OWNERS,
    derived_code_version,
    latest_materialization,
    records_table,
    settings,
    tidy_metadata,
)
from replyassets.defs.evaluate import _latest_reports, current_champion
from replyassets.defs.experiments import evaluation_settings_for

LEADERBOARD_CODE_VERSION = derived_code_version("replyassets.defs.leaderboard", settings_paths=("evaluation",))

def _adapters(instance: dg.DagsterInstance) -> dict[str, dict]:
    out = {}
    for part in instance.get_dynamic_partitions("experiment"):
        mat = latest_materialization(instance, "lora_adapter", part)
        if mat is not None:
            out[part] = {k: v.value for k, v in mat.metadata.items()}
    return out


@dg.asset(
    description=(
        "One row per experiment, in gate order (the candidate the promotion gate promotes, the ones "
        "that pass ranked lower, the champion, the refused ones, the ones not evaluated; never by the "
        "raw win rate), with where it stands and why: win rate against the base model with its "
        "interval, the length-controlled win rate, the win rate against the retrieval baseline, "
        "raw and Holm-adjusted p (over the experiments evaluated on the same curated set), the judge "
        "and its agreement with likes, the losses by objective (SFT cross-entropy and perplexity, "
        "DPO / KTO eval loss: separate columns), recipe, cost, tokens/s and the champion mark."
    ),
    deps=["eval_report", "lora_adapter"],
    code_version=LEADERBOARD_CODE_VERSION,
    owners=OWNERS,
    kinds={"duckdb"},
    group_name="evaluate",
    pool=DUCKDB_POOL,
)
def leaderboard(context: dg.AssetExecutionContext) -> dg.Output:
    champion = current_champion(context.instance)
    df = leaderboard_rows(_latest_reports(context.instance), _adapters(context.instance),
                          champion["experiment"] if champion else None, evaluation_settings_for(settings().evaluation))
    return dg.Output(
        df,
        metadata=tidy_metadata({
            "experiments": len(df),
            "champion": champion["experiment"] if champion else "none",
            "win_rates": win_rates_md(df),
            "summary": records_table(summary_rows(df), SUMMARY_COLUMNS, descriptions=SUMMARY_DESCRIPTIONS),
            "reasons": records_table([{"experiment": r.experiment, "gate_reason": breakable(r.gate_reason)}
                                      for r in df.itertuples()], ["experiment", "gate_reason"]),
            "training": records_table(training_rows(df), TRAINING_COLUMNS),
            "markdown": dg.MetadataValue.md(leaderboard_markdown(df)),
        }),
    )


# The page's tables, each narrow enough for the value column (the asset's own table and the
# `markdown` entry hold every column): what decides, in gate order; why; how each trained.
SUMMARY_COLUMNS = ["experiment", "standing", "win rate [interval]", "p_holm"]
SUMMARY_DESCRIPTIONS = {
    "standing": "where the promotion gate puts it (the rows are in gate order), its verdict, * the champion",
    "win rate [interval]": "against the base model on the test tweets, ties count half (0.5 = no difference), "
                           "with its cluster-bootstrap interval by tweet",
    "p_holm": "the primary test's p-value, Holm-adjusted over the experiments on the same curated set",
}
TRAINING_COLUMNS = ["experiment", "method", "eval loss", "cost_usd"]


def summary_rows(df: pd.DataFrame) -> list[dict]:
    """The leaderboard's deciding columns in four cells."""
    from replyassets.core.numbers import fmt_num

    return [{"experiment": str(r.experiment) + (" *" if bool(r.champion) else ""), "standing": f"{r.gate}: {r.verdict}",
             "win rate [interval]": f"{fmt_num(_f(r.win_rate))} [{fmt_num(_f(r.win_rate_ci_low))}, "
                                    f"{fmt_num(_f(r.win_rate_ci_high))}]",
             "p_holm": _f(r.p_holm)} for r in df.itertuples()]


def training_rows(df: pd.DataFrame) -> list[dict]:
    """Method, each eval loss named by its objective (one cell), cost."""
    from replyassets.core.numbers import fmt_num

    losses = (("sft", "sft_eval_loss"), ("dpo", "dpo_eval_loss"), ("kto", "kto_eval_loss"))
    return [{"experiment": r["experiment"], "method": r.get("method"),
             "eval loss": ", ".join(f"{name} {fmt_num(_f(r.get(col)), 4)}" for name, col in losses
                                    if _f(r.get(col)) is not None) or "n/a",
             "cost_usd": _f(r.get("cost_usd"))} for r in df.to_dict("records")]


def win_rates_md(df: pd.DataFrame) -> dg.MetadataValue:
    """Every experiment's win rate with its interval as a plot small enough to show inline."""
    from replyassets.core.plots import win_rates_inline_md

    return dg.MetadataValue.md(win_rates_inline_md([
        {"experiment": r.experiment, "win_rate": _f(r.win_rate), "ci_low": _f(r.win_rate_ci_low),
         "ci_high": _f(r.win_rate_ci_high), "champion": bool(r.champion)}
        for r in df.itertuples()
    ]))


def _f(v):
    return None if v is None or pd.isna(v) else float(v)


def candidates_in_order(board: pd.DataFrame, champion: str | None) -> list[str]:
    """The evaluated experiments of a leaderboard in its (gate) order, the champion left out."""
    rows = board[(board["experiment"] != champion) & (board["gate"] != GATE_NOT_EVALUATED)]
    return [str(x) for x in rows["experiment"]]


def choose_candidate(board: pd.DataFrame, champion: str | None) -> str | None:
    """The first experiment in gate order (see ``candidates_in_order``)."""
    names = candidates_in_order(board, champion)
    return names[0] if names else None
