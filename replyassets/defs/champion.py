"""``champion``: the adapter to ship, behind the blocking ``promotion_gate`` check.

It moves only when the gate (``core/stats.promotion_gate``) passes for the first candidate in
gate order (``core/leaderboard.gate_decisions``, the leaderboard's row order) that it promotes:
every required success criterion against the base model with the Holm-adjusted p, a win over the
retrieval baseline, a win over the default recipe for any other experiment (so its A/A twin is
never promoted for noise), and a win over the current champion, each with a win-rate interval
above 0.5. A failed gate leaves the champion in place; the reason is the check's description.
The page also shows the gate measured by simulation (``core/calibration.py``): its
false-promotion rate for an A/A twin and its power, at the measured number of test tweets and
tie rate. The history of champions is the DuckDB table ``main.champion``; a promotion writes a
model card (and, with ``merge: true``, the merged model) under ``data/champions/``.
"""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from replyassets.core import db
from replyassets.core.leaderboard import gate_decisions
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
from replyassets.defs.experiments import evaluation_settings_for

HISTORY_COLUMNS = ["promoted_at", "experiment", "adapter_path", "adapter_sha256", "curated_set_hash",
                   "win_rate", "p_holm", "reason", "run_id"]


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


@dg.asset(
    description=(
        "The adapter to ship. An experiment becomes champion only through the blocking "
        "`promotion_gate` check: every required success criterion against the base model (Holm-adjusted p), "
        "a win over the retrieval baseline, a win over the default recipe (for any other experiment: "
        "its A/A twin is never promoted for noise) and a win over the current champion, each with a win-rate "
        "interval above 0.5. A failed gate leaves the champion in place, with the reason. The "
        "history of champions is the DuckDB table `main.champion`; a promotion writes a model card "
        "(and, with `merge: true`, the merged model) under `data/champions/`. Its metadata also shows the "
        "gate measured by simulation (`core/calibration.py`): how often it promotes an A/A twin (with a 95 % "
        "upper bound) and its power for d = `evaluation.min_cohens_d` and for the best experiment's d, at the "
        "measured number of test tweets and tie rate."
    ),
    code_version=derived_code_version("replyassets.defs.champion", settings_paths=("evaluation",)),
    owners=OWNERS,
    kinds={"duckdb"},
    group_name="evaluate",
    pool=DUCKDB_POOL,
    check_specs=[dg.AssetCheckSpec(
        "promotion_gate", asset="champion", blocking=True,
        description=("the candidate beats the base model (every required criterion, Holm-adjusted), the retrieval baseline, "
                     "the default recipe and the champion"),
    )],
)
def champion(context: dg.AssetExecutionContext, config: ChampionConfig, leaderboard: pd.DataFrame):
    """Long because it is the champion's whole transaction: the gate decision (core/leaderboard),
    the model card and merge of a promotion, the history row, the gate's calibration and the
    blocking check."""
    from replyassets.core.calibration import (
        calibration_figures,
        calibration_markdown,
        champion_calibration,
    )

    s = settings()
    current = current_champion(context.instance)
    current_name = current["experiment"] if current else None
    reports = _latest_reports(context.instance)
    history = _history(db.storage_from_settings(s))
    board = leaderboard.set_index("experiment")

    # Gate order (core/leaderboard.gate_decisions, the leaderboard's row order); a refused leader
    # (e.g. the default's A/A twin, which never beats the default) does not keep the next one,
    # which passes every check itself, from being promoted.
    decisions = [d for d in gate_decisions(reports, current_name, evaluation_settings_for(s.evaluation))
                 if d["candidate"] in board.index]  # a report newer than the leaderboard waits for it
    promoted = [d for d in decisions if d["promote"]]
    decision = promoted[0] if promoted else (decisions[0] if decisions else None)
    candidate = decision["candidate"] if decision else None
    # The gate measured at this evaluation's size: the best evaluated experiment in gate order.
    best = next((str(n) for n in leaderboard["experiment"] if str(n) in reports), None)
    calibration = champion_calibration(reports, best, int(board.loc[best, "comparisons"]) if best in board.index else 1,
                                       s.evaluation)
    if decision is None:
        decision = {"promote": False, "candidate": None, "champion": current_name, "checks": [],
                    "reason": "no evaluated experiment other than the champion"}
    else:
        rep = reports[candidate]
        row = board.loc[candidate]
        if decision["promote"]:
            card_dir = s.data_dir / "champions" / f"{candidate}-{context.run.run_id[:8]}"
            card_dir.mkdir(parents=True, exist_ok=True)
            (card_dir / "MODEL_CARD.md").write_text(model_card(candidate, rep, row, decision, calibration),
                                                    encoding="utf-8")
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
            "gate_calibration": dg.MetadataValue.md(calibration_markdown(calibration)),
            **calibration_figures(calibration),
        }),
    )
    yield dg.AssetCheckResult(
        check_name="promotion_gate",
        passed=bool(decision["promote"]),
        severity=dg.AssetCheckSeverity.ERROR,
        description=line,
        metadata={"candidate": candidate or "none", "champion": now or "none"},
    )


def model_card(name: str, report: dict, row: pd.Series, decision: dict, calibration: dict | None = None) -> str:
    """A model card for a promoted adapter: recipe, data, statistics, the gate measured, limits."""
    from replyassets.core.calibration import calibration_markdown
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
        (f"- Cohen's d {fmt_num(base.get('cohens_d'))}; power of the paired test for d = "
         f"{fmt_num(base.get('power_effect_size'))} at this size {fmt_num(base.get('power_d03'))}"),
        "", "## The gate, measured", "", calibration_markdown(calibration),
        "", "## Limits", "",
        "- judged by an automatic judge; see the report's judge-human agreement before trusting small margins",
        "- trained and tested on replies to the collected queries only; other topics are untested",
        "", "## Gate", "",
        *(f"- {'pass' if c['passed'] else 'FAIL'}: {c['check']} ({c['detail']})" for c in decision.get("checks") or []),
    ]
    return "\n".join(lines) + "\n"


def _f(v):
    return None if v is None or pd.isna(v) else float(v)
