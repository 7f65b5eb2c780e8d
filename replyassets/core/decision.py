"""The deciding asset's inputs, built from stored generations: every experiment's report as the
gate reads it, with the comparisons between experiments made here, downstream of every
evaluation, never inside one.

``eval_report`` stores, per experiment, every judged item (comparison with the base model or the
retrieval baseline, test tweet, decoding seed) with the adapter's generated text and hash.
:func:`reports_from_table` recomputes each experiment's statistics from those rows (the same
``compute_stats``, so the same figures as its report). :func:`add_cross_comparisons` judges a
challenger's stored generations against the default recipe's and the champion's, tweet by tweet
and seed by seed, with the judge the caller passes (the same judge, both orders: ``judge_pairs``).
The Holm family (every experiment evaluated on a curated set) is then
``core/leaderboard.holm_by_curated_set`` over these reports. No Dagster import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from replyassets.core.report import JUDGE_LIKES_KEY
from replyassets.experiments import DEFAULT_EXPERIMENT
from replyassets.settings import EvaluationSettings

SettingsFor = Callable[[str], EvaluationSettings]
# judge_fn(items, settings) -> judge_pairs rows: the items' two replies judged in both orders
JudgeFn = Callable[[list[dict[str, Any]], EvaluationSettings], pd.DataFrame]
OWN_COMPARISONS = ("base", "retrieval")


def _primary_p(stats: Mapping[str, Any], ev: EvaluationSettings) -> float | None:
    return stats.get("wilcoxon_p" if ev.primary_test == "wilcoxon" else "mannwhitney_p")


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and v != v) else float(v)


def reports_from_table(table: pd.DataFrame, settings_for: SettingsFor,
                       adapter_hashes: Mapping[str, str] | None = None) -> tuple[dict[str, dict], dict[str, str]]:
    """``(reports, skipped)``: each experiment's report from its ``eval_report`` rows, and why an
    experiment's rows were left out (they judged another adapter than the current one: the
    adapter was trained again since, ``adapter_hashes``)."""
    from replyassets.core.stats import compute_stats, verdict

    reports: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    if table is None or table.empty:
        return reports, skipped
    for name, rows in table.groupby(table["experiment"].astype(str), sort=True):
        first = rows.iloc[0]
        judged_hash = str(first.get("adapter_sha256") or "")
        current = (adapter_hashes or {}).get(name)
        if adapter_hashes is not None and current != judged_hash:
            skipped[name] = (f"its report judged adapter {judged_hash[:12]}, the current adapter is "
                             f"{str(current or 'missing')[:12]}: evaluate it again")
            continue
        ev = settings_for(name)
        stats = {role: compute_stats(rows[rows["comparison"] == role], ev, unit_col="tweet_id")
                 for role in OWN_COMPARISONS if (rows["comparison"] == role).any()}
        base = stats.get("base") or {}
        reports[name] = {
            "experiment": name,
            "curated_set_hash": str(first.get("curated_set_hash") or ""),
            "adapter_path": str(first.get("adapter_path") or ""),
            "adapter_sha256": judged_hash,
            "opponents": {role: None for role in stats},
            "stats": stats,
            "p_raw": _primary_p(base, ev),
            "verdict": verdict(base, ev) if base else {},
            "judge": {"name": str(first.get("judge_name") or ""), "model": str(first.get("judge_model") or "")},
            JUDGE_LIKES_KEY: {"agreement": _num(first.get("judge_likes_agreement")),
                              "ci_low": _num(first.get("judge_likes_ci_low")),
                              "ci_high": _num(first.get("judge_likes_ci_high")),
                              "pairs": int(first.get("judge_likes_pairs") or 0)},
            "n_generations": int((rows["comparison"] == "base").sum()),
        }
    return reports, skipped


def generations(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """One experiment's generated replies: one row per (test tweet, decoding seed)."""
    rows = table[(table["experiment"].astype(str) == name) & (table["comparison"] == "base")]
    cols = ["tweet_id", "decoding_seed", "tweet", "adapter_reply", "reference"]
    return rows[cols].astype({"tweet_id": str, "decoding_seed": int}).drop_duplicates(["tweet_id", "decoding_seed"])


def pairwise_items(table: pd.DataFrame, challenger: str, opponent: str, role: str) -> list[dict[str, Any]]:
    """Judge items: the challenger's reply (``adapter_reply``) against the opponent's
    (``base_reply``) for every (tweet, seed) both generated for."""
    mine, theirs = generations(table, challenger), generations(table, opponent)
    both = mine.merge(theirs[["tweet_id", "decoding_seed", "adapter_reply"]], on=["tweet_id", "decoding_seed"],
                      suffixes=("", "_opponent"))
    return [{"item_id": f"{role}:{r.tweet_id}:{r.decoding_seed}", "tweet": r.tweet,
             "base_reply": r.adapter_reply_opponent, "adapter_reply": r.adapter_reply,
             "reference": r.reference if isinstance(r.reference, str) else None}
            for r in both.sort_values(["decoding_seed", "tweet_id"]).itertuples()]


def add_cross_comparisons(reports: dict[str, dict], table: pd.DataFrame, champion: str | None,
                          judge_fn: JudgeFn, settings_for: SettingsFor,
                          default: str = DEFAULT_EXPERIMENT) -> dict[str, pd.DataFrame]:
    """Judge every experiment against the default recipe (all but the default) and against the
    champion (all but the champion), when the opponent was evaluated on the same curated set:
    their figures go into the report (``stats["default"]``, ``stats["champion"]``, with the
    opponent named in ``opponents``). Returns the judged rows by ``"<experiment>:<role>"``."""
    from replyassets.core.stats import compute_stats

    judged_rows: dict[str, pd.DataFrame] = {}
    for name, rep in reports.items():
        for role, opponent in (("default", default), ("champion", champion)):
            other = reports.get(opponent) if opponent else None
            if opponent is None or opponent == name or other is None:
                continue
            if other["curated_set_hash"] != rep["curated_set_hash"]:
                continue
            items = pairwise_items(table, name, opponent, role)
            if not items:
                continue
            ev = settings_for(name)
            judged = judge_fn(items, ev)
            parts = judged["item_id"].str.split(":", expand=True)
            judged = judged.assign(comparison=role, tweet_id=parts[1], decoding_seed=parts[2].astype(int))
            rep["stats"][role] = compute_stats(judged, ev, unit_col="tweet_id")
            rep["opponents"][role] = opponent
            judged_rows[f"{name}:{role}"] = judged
    return judged_rows
