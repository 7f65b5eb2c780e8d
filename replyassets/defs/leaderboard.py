"""``leaderboard``: one row per experiment, like compared with like.

It sits downstream of ``champion`` (the decision), with the same inputs: every experiment's
``eval_report`` table and ``lora_adapter``, and the champion's history (who is champion now); it
builds the same reports (``defs/champion.decision_reports``: the comparisons between experiments
from the stored generations, the verdicts cached) and shows them; its rows, columns and order are ``core/leaderboard.py``'s: losses by
objective (``sft_*``, ``dpo_eval_loss``, ``kto_eval_loss``, never one ``eval_loss`` mixing
scales), each row's judge and that judge's agreement with likes, p-values Holm-adjusted over the
experiments evaluated on the same curated set, and the rows in **gate order**
(``gate_decisions``, the order ``champion`` (defs/champion.py) decides in), not by the raw win
rate, with where each stands (``gate``) and why (``gate_reason``).
"""

import dagster as dg
import pandas as pd

from replyassets.core.artifact import Artifact
from replyassets.core.leaderboard import (  # noqa: F401 - LEADERBOARD_COLUMNS, default_comparison: importable here
    GATE_NOT_EVALUATED,
    LEADERBOARD_COLUMNS,
    default_comparison,
    leaderboard_rows,
)
from replyassets.core.markdown import breakable
from replyassets.defs.asset_attrs import DUCKDB_POOL, OWNERS, derived_code_version
from replyassets.defs.champion import adapter_facts, decision_reports, standing_of
from replyassets.defs.experiments import evaluation_settings_for
from replyassets.defs.metadata import records_table, tidy_metadata, win_rates_md
from replyassets.defs.resources import EmbedderResource, JudgeResource
from replyassets.defs.settings_access import settings

LEADERBOARD_CODE_VERSION = derived_code_version("replyassets.defs.leaderboard", "replyassets.defs.champion",
                                                "replyassets.defs.judge_panel",
                                                settings_paths=("evaluation", "reward_model.min_agreement_low"))

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
    code_version=LEADERBOARD_CODE_VERSION,
    owners=OWNERS,
    kinds={"duckdb"},
    group_name="evaluate",
    pool=DUCKDB_POOL,
)
def leaderboard(context: dg.AssetExecutionContext, champion: pd.DataFrame, eval_report: pd.DataFrame,
                lora_adapter: dict[str, Artifact], reward_model: pd.DataFrame, judge: JudgeResource,
                embedder: EmbedderResource) -> dg.Output:
    current = standing_of(champion)
    name = str(current["experiment"]) if current else None
    reports, compared_by = decision_reports(eval_report, lora_adapter, name, judge, reward_model, embedder,
                                            context.log)
    df = leaderboard_rows(reports, adapter_facts(lora_adapter), name, evaluation_settings_for(settings().evaluation))
    return dg.Output(
        df,
        metadata=tidy_metadata({
            "experiments": len(df),
            "champion": name or "none",
            "compared_by": dg.MetadataValue.md(compared_by),
            "win_rates": win_rates_md(df),
            "summary": records_table(summary_rows(df), SUMMARY_COLUMNS, descriptions=SUMMARY_DESCRIPTIONS),
            "reasons": records_table([{"experiment": r.experiment, "gate_reason": breakable(r.gate_reason)}
                                      for r in df.itertuples()], ["experiment", "gate_reason"]),
            "training": records_table(training_rows(df), TRAINING_COLUMNS),
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
