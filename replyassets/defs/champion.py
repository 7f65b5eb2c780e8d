"""``champion``: the decision, always materialized; ``champion_export``: what ships, behind proof.

``champion`` records the gate's decision every time it runs, as an outcome: "promoted X" or
"stays with Y" / "stays with the base model", with the reason for every candidate
(``core/champion.decision_outcome``). It moves only when the gate (``core/stats.promotion_gate``)
passes for the first candidate in gate order (``core/leaderboard.gate_decisions``, the
leaderboard's row order) that it promotes: every required success criterion against the base
model with the Holm-adjusted p, a win over the retrieval baseline, a win over the default recipe
for any other experiment (so its A/A twin is never promoted for noise), and a win over the
current champion, each with a win-rate interval above 0.5. A refusal is an outcome, not a
failure: the ``promotion_gate`` check is non-blocking with WARN severity (yellow, the run green).

What blocks is shipping an unproven adapter: the blocking ``proven_champion`` check
(``core/champion.ship_problems``: promoted by the gate, and the adapter folder is the one judged,
by its content hash) stands between ``champion`` and ``champion_export``, which copies the
champion's adapter (and, with ``merge: true``, the merged model) beside its model card under
``data/champions/``; when the base model serves it materializes "nothing to ship".
``champion`` is the deciding asset: it takes every experiment's ``eval_report`` table (the
generations judged against the base model and the retrieval baseline, per test tweet and seed)
and every ``lora_adapter`` as inputs, and makes the comparisons between experiments there
(``core/decision.py``): each challenger's stored generations against the default recipe's and the
current champion's, with the same judge, tweets and seeds, both orders; the Holm family is every
experiment evaluated on the curated set. The current champion is its own history (below), never
read from another asset; ``leaderboard`` sits downstream of it.
The page also shows the gate measured by simulation (``core/calibration.py``): its
false-promotion rate for an A/A twin and its power, at the measured number of test tweets and
tie rate. The history of champions is the DuckDB table ``main.champion``.
"""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from replyassets.core import db
from replyassets.core.artifact import Artifact
from replyassets.core.champion import decision_outcome, ship_problems
from replyassets.core.leaderboard import gate_decisions, leaderboard_rows
from replyassets.core.numbers import fmt_num
from replyassets.defs.asset_attrs import DUCKDB_POOL, OWNERS, derived_code_version
from replyassets.defs.experiments import evaluation_settings_for
from replyassets.defs.metadata import records_table, tidy_metadata, win_rates_md
from replyassets.defs.judge_panel import build_panel, prepare
from replyassets.defs.resources import EmbedderResource, JudgeResource
from replyassets.defs.settings_access import settings, storage

HISTORY_COLUMNS = ["promoted_at", "experiment", "adapter_path", "adapter_sha256", "curated_set_hash",
                   "win_rate", "p_holm", "reason", "run_id"]


class ExportConfig(dg.Config):
    merge: bool = False
    """Also merge the champion's adapter into its base model (saved beside its model card)."""


def _history(storage: db.Storage | Path | None = None) -> pd.DataFrame:
    storage = db.as_storage(storage)
    if not storage.exists():
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    with db.connect(storage, purpose="champion history") as con:
        if not db.table_exists(con, "champion", "main"):
            return pd.DataFrame(columns=HISTORY_COLUMNS)
        return con.execute("SELECT * FROM main.champion ORDER BY promoted_at").df()


def _sha256(folder: Path) -> str:
    from replyassets.training.checkpoints import dir_sha256

    return dir_sha256(folder)


def standing_of(history: pd.DataFrame) -> dict | None:
    """The champion's history row (the last promotion), None when the base model serves."""
    return {k: (None if pd.isna(v) else v) for k, v in history.iloc[-1].items()} if len(history) else None


def decision_reports(eval_report: pd.DataFrame, lora_adapter: dict[str, Artifact], champion: str | None,
                     judge: JudgeResource, reward_model: pd.DataFrame, embedder: EmbedderResource,
                     log=None) -> tuple[dict[str, dict], str]:
    """Every experiment's report as the gate reads it, from the ``eval_report`` table (the rows
    of adapters trained again since they were judged are left out), with each challenger judged
    against the default recipe and the champion from the stored generations (core/decision.py),
    by the same deciding judge as ``eval_report`` (``defs/judge_panel.build_panel``: the reward
    model when its held-out agreement with likes is above chance). Returns the reports and which
    judge compared the experiments, with why (the page's ``compared_by``)."""
    from replyassets.core.decision import add_cross_comparisons, reports_from_table
    from replyassets.core.judging import DuckDBVerdictCache, JudgingFailed, judge_pairs
    from replyassets.judges.base import JudgeError

    s = settings()
    settings_for = evaluation_settings_for(s.evaluation)
    reports, skipped = reports_from_table(eval_report, settings_for,
                                          {name: a.sha256 for name, a in lora_adapter.items()})
    for name, why in skipped.items():
        if log is not None:
            log.info(f"{name} left out: {why}")
    if len(eval_report) and "tweet_id" not in eval_report.columns:
        raise dg.Failure("the eval_report table has no tweet_id column: materialize eval_report again")
    # the test tweets: a reward model trained on any of them must not judge them (build_panel)
    tweet_ids = eval_report["tweet_id"].astype(str).unique() if len(eval_report) else []
    panel = build_panel(judge, reward_model, embedder, s.evaluation, s.reward_model.min_agreement_low, tweet_ids)
    j = panel["judges"][panel["primary"]]
    if log is not None:
        log.info(f"experiments compared by judge {panel['primary']} ({panel['reason']})")
    cache = DuckDBVerdictCache(storage())

    def judge_fn(items: list[dict], ev) -> pd.DataFrame:
        prepare({"decides": j}, [t for it in items for t in (it["tweet"], it["base_reply"], it["adapter_reply"])])
        try:
            return judge_pairs(j, items, cache=cache, concurrency=ev.judge_concurrency,
                               max_error_fraction=ev.max_judge_error_fraction)
        except (JudgingFailed, JudgeError) as exc:
            raise dg.Failure(description=f"judging experiments against each other failed: {exc}") from exc

    add_cross_comparisons(reports, eval_report, champion, judge_fn, settings_for)
    return reports, f"{panel['primary']} ({panel['reason']})"


def adapter_facts(lora_adapter: dict[str, Artifact]) -> dict[str, dict]:
    """What the leaderboard shows of each adapter (recipe, losses by objective, cost)."""
    return {name: {**a.attrs, "adapter_path": a.path, "adapter_sha256": a.sha256} for name, a in lora_adapter.items()}


def card_dir(data_dir: Path, row: dict) -> Path:
    """``data/champions/<experiment>-<run>``: the promotion's model card, and what ships beside it."""
    return data_dir / "champions" / f"{row['experiment']}-{str(row['run_id'])[:8]}"


@dg.asset(
    description=(
        "The champion decision, materialized on every run as an outcome: \"promoted X\" or \"stays with Y\" "
        "(or the base model), with the reason for every candidate (`decision`, `decision_md`, `candidates`). "
        "An experiment is promoted only when the gate passes: every required success criterion against the "
        "base model (Holm-adjusted p), a win over the retrieval baseline, a win over the default recipe (for "
        "any other experiment: its A/A twin is never promoted for noise) and a win over the current champion, "
        "each with a win-rate interval above 0.5. A refusal is an outcome: the `promotion_gate` check warns "
        "(non-blocking) and the run stays green. The blocking `proven_champion` check stops an unproven "
        "adapter before `champion_export`. The history of champions is the DuckDB table `main.champion`; a "
        "promotion writes a model card under `data/champions/`. Its metadata also shows the gate measured by "
        "simulation (`core/calibration.py`): how often it promotes an A/A twin (with a 95 % upper bound) and "
        "its power for d = `evaluation.min_cohens_d` and for the best experiment's d, at the measured number "
        "of test tweets and tie rate."
    ),
    code_version=derived_code_version("replyassets.defs.champion", "replyassets.core.decision",
                                      "replyassets.defs.judge_panel",
                                      settings_paths=("evaluation", "reward_model.min_agreement_low")),
    owners=OWNERS,
    kinds={"duckdb"},
    group_name="evaluate",
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            "promotion_gate", asset="champion", blocking=False,
            description=("the decision: a candidate beats the base model (every required criterion, Holm-adjusted), "
                         "the retrieval baseline, the default recipe and the champion; a refusal warns, it is "
                         "an outcome"),
        ),
        dg.AssetCheckSpec(
            "proven_champion", asset="champion", blocking=True,
            description=("the champion that would ship is an adapter the gate promoted, unchanged since it was "
                         "judged (its content hash); the base model serving passes (nothing to ship)"),
        ),
    ],
)
def champion(context: dg.AssetExecutionContext, eval_report: pd.DataFrame, lora_adapter: dict[str, Artifact],
             reward_model: pd.DataFrame, judge: JudgeResource, embedder: EmbedderResource):
    """Long because it is the champion's whole transaction: the comparisons between experiments
    (core/decision), the gate decision (core/leaderboard, core/champion), the model card of a
    promotion, the history row, the gate's calibration and both checks."""
    from replyassets.core.calibration import (
        calibration_figures,
        calibration_markdown,
        champion_calibration,
    )

    s = settings()
    history = _history(db.storage_from_settings(s))
    current = standing_of(history)  # its own history: the champion before this decision
    current_name = str(current["experiment"]) if current else None
    reports, compared_by = decision_reports(eval_report, lora_adapter, current_name, judge, reward_model, embedder,
                                            context.log)
    settings_for = evaluation_settings_for(s.evaluation)
    leaderboard = leaderboard_rows(reports, adapter_facts(lora_adapter), current_name, settings_for)
    board = leaderboard.set_index("experiment")

    # Gate order (core/leaderboard.gate_decisions, the leaderboard's row order); a refused leader
    # (e.g. the default's A/A twin, which never beats the default) does not keep the next one,
    # which passes every check itself, from being promoted.
    decisions = gate_decisions(reports, current_name, settings_for)
    outcome = decision_outcome(decisions, current_name)
    decision = next((d for d in decisions if d["promote"]), decisions[0] if decisions else None)
    # The gate measured at this evaluation's size: the best evaluated experiment in gate order.
    best = next((str(n) for n in leaderboard["experiment"] if str(n) in reports), None)
    calibration = champion_calibration(reports, best, int(board.loc[best, "comparisons"]) if best in board.index else 1,
                                       s.evaluation)
    if outcome["promoted"]:
        candidate = outcome["promoted"]
        rep, row = reports[candidate], board.loc[candidate]
        new_row = {
            "promoted_at": datetime.now(UTC).replace(tzinfo=None),
            "experiment": candidate, "adapter_path": str(rep["adapter_path"]),
            "adapter_sha256": str(rep.get("adapter_sha256") or ""),
            "curated_set_hash": str(rep.get("curated_set_hash") or ""),
            "win_rate": _f(row["win_rate"]), "p_holm": _f(row["p_holm"]),
            "reason": decision["reason"], "run_id": context.run.run_id,
        }
        folder = card_dir(s.data_dir, new_row)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "MODEL_CARD.md").write_text(model_card(candidate, rep, row, decision, calibration), encoding="utf-8")
        new_row = pd.DataFrame([new_row])
        history = new_row if history.empty else pd.concat([history, new_row], ignore_index=True)
    history = history.reindex(columns=HISTORY_COLUMNS)
    history["promoted_at"] = pd.to_datetime(history["promoted_at"])
    for col in ("win_rate", "p_holm"):
        history[col] = pd.to_numeric(history[col], errors="coerce").astype("float64")
    standing = standing_of(history)
    problems = ship_problems(standing, _sha256)
    context.log.info(f"champion {outcome['decision']}")
    yield dg.Output(
        history,
        metadata=tidy_metadata({
            "decision": dg.MetadataValue.md(outcome["decision"]),  # markdown wraps; a text value runs off the edge
            "headline": outcome["headline"],
            "win_rates": win_rates_md(leaderboard),
            "decision_md": dg.MetadataValue.md(outcome["markdown"]),
            "champion": standing["experiment"] if standing else "none",
            "champion_adapter": str(standing["adapter_path"]) if standing else "",
            "promoted": outcome["promoted"] or "none",
            "candidate": decision["candidate"] if decision else "none",
            "candidates": records_table(outcome["candidates"], ["experiment", "outcome", "reason"]),
            # the judge of the challengers against the default recipe and the champion
            "compared_by": dg.MetadataValue.md(compared_by),
            "gate": records_table((decision or {}).get("checks") or [], ["check", "passed", "detail"]),
            # the page's columns; the asset's table holds every one (adapter path, hashes, run)
            "history": records_table(history.astype({"promoted_at": str}).to_dict("records"),
                                     ["promoted_at", "experiment", "win_rate", "p_holm"]),
            "gate_calibration": dg.MetadataValue.md(calibration_markdown(calibration)),
            **calibration_figures(calibration),
        }),
    )
    yield dg.AssetCheckResult(
        check_name="promotion_gate", passed=not outcome["refused"], severity=dg.AssetCheckSeverity.WARN,
        description=outcome["decision"],
        metadata={"promoted": outcome["promoted"] or "none", "champion": outcome["champion"] or "base model"},
    )
    yield dg.AssetCheckResult(
        check_name="proven_champion", passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        description=("; ".join(problems) if problems else
                     f"{standing['experiment']} is a proven adapter" if standing else
                     "the base model serves: nothing to ship"),
        metadata={"champion": standing["experiment"] if standing else "none"},
    )


@dg.asset(
    description=(
        "What ships: the champion's adapter copied beside its model card under "
        "`data/champions/<experiment>-<run>/` (and, with `merge: true`, the merged model). It runs behind "
        "the blocking `proven_champion` check on `champion` and asks the same question itself "
        "(`core/champion.ship_problems`), so an unproven adapter never ships; when the base model serves "
        "it materializes \"nothing to ship\"."
    ),
    code_version=derived_code_version("replyassets.defs.champion"),
    owners=OWNERS,
    group_name="evaluate",
    pool=DUCKDB_POOL,  # it reads the champion table
)
def champion_export(context: dg.AssetExecutionContext, config: ExportConfig,
                    champion: pd.DataFrame) -> dg.MaterializeResult:
    standing = standing_of(champion)
    if problems := ship_problems(standing, _sha256):
        raise dg.Failure(description=f"not shipped: {'; '.join(problems)}")
    if standing is None:
        return dg.MaterializeResult(metadata={"shipped": "nothing to ship: the base model serves",
                                              "champion": "none"})
    s = settings()
    folder = card_dir(s.data_dir, standing)
    folder.mkdir(parents=True, exist_ok=True)
    adapter = folder / "adapter"
    if not adapter.is_dir() or _sha256(adapter) != standing["adapter_sha256"]:
        shutil.rmtree(adapter, ignore_errors=True)
        shutil.copytree(standing["adapter_path"], adapter)
    merged = None
    if config.merge:
        from replyassets.training.merge import merge_adapter

        # into the base model it was trained on (its adapter_config.json names it)
        merged = merge_adapter(str(adapter), folder / "merged")
    return dg.MaterializeResult(metadata=tidy_metadata({
        "shipped": f"{standing['experiment']} (adapter sha256 {str(standing['adapter_sha256'])[:12]})",
        "champion": standing["experiment"],
        "path": dg.MetadataValue.path(str(folder)),
        "adapter_sha256": str(standing["adapter_sha256"]),
        "merged": dg.MetadataValue.path(str(merged)) if merged else "no (merge: false)",
    }), data_version=dg.DataVersion(str(standing["adapter_sha256"]) + ("+merged" if merged else "")))


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
