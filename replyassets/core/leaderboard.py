"""The leaderboard's rows and the gate's order: one row per experiment, like compared with like.

- **Losses by objective** (``losses_by_objective``): a loss is comparable only with the same
  objective's. ``sft_train_loss`` / ``sft_eval_loss`` are the SFT cross-entropy (nats per reply
  token; for ``sft+dpo`` its SFT stage's, before DPO) and ``sft_eval_perplexity`` its exponential;
  ``dpo_eval_loss`` / ``kto_eval_loss`` the preference loss on the preference eval split, which has
  no perplexity. There is no ``eval_loss`` column mixing the scales; ``method`` names the recipe's.
- **The judge**: each row names the judge of its report and that judge's agreement with real
  likes on the test tweets, with its interval: a win rate means no more than its judge does.
- **Gate order** (``gate_decisions``): ``core/stats.promotion_gate`` for every evaluated
  experiment but the champion, with the Holm-adjusted p over its curated set; the candidates it
  promotes first, then by the gate checks passed, the required criteria passed against the base
  model, the lower end of the win-rate interval against the base model and the adjusted p; never
  by the raw win rate. The first candidate the gate promotes is the one ``champion`` promotes.
  The rows follow it (``GATE_RANK``): ``promote``, ``passes, ranked lower``, ``champion``,
  ``refused``, ``not evaluated``; ``gate_reason`` says why.

No Dagster import: ``leaderboard`` (defs/leaderboard.py), ``champion`` (defs/champion.py) and ``eval_report``'s
report run it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from replyassets.core.numbers import fmt_num
from replyassets.core.report import JUDGE_LIKES_KEY
from replyassets.experiments import DEFAULT_EXPERIMENT
from replyassets.settings import EvaluationSettings

LOSS_COLUMNS = ["method", "sft_train_loss", "sft_eval_loss", "sft_eval_perplexity", "dpo_eval_loss", "kto_eval_loss"]
JUDGE_COLUMNS = ["judge", "judge_likes_agreement", "judge_likes_ci_low", "judge_likes_ci_high"]
LEADERBOARD_COLUMNS = [
    "experiment", "gate", "gate_reason", "champion", "verdict",
    "win_rate", "win_rate_ci_low", "win_rate_ci_high", "lc_win_rate", "win_rate_vs_retrieval",
    "n_tweets", "p_raw", "p_holm", "comparisons", *JUDGE_COLUMNS, *LOSS_COLUMNS,
    "recipe", "curated_set_hash", "cost_usd", "tokens_per_s",
]
TEXT_COLUMNS = {"experiment", "gate", "gate_reason", "verdict", "judge", "method", "recipe", "curated_set_hash"}
INT_COLUMNS = {"n_tweets", "comparisons"}
GATE_PROMOTE, GATE_PASSES, GATE_CHAMPION, GATE_REFUSED, GATE_NOT_EVALUATED = (
    "promote", "passes, ranked lower", "champion", "refused", "not evaluated")
GATE_RANK = {GATE_PROMOTE: 0, GATE_PASSES: 1, GATE_CHAMPION: 2, GATE_REFUSED: 3, GATE_NOT_EVALUATED: 4}

SettingsFor = Callable[[str], EvaluationSettings]


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------- losses and judge


def _first(*values: Any) -> float | None:
    return next((x for x in (_num(v) for v in values) if x is not None), None)


def losses_by_objective(adapter: Mapping[str, Any]) -> dict[str, Any]:
    """An adapter's losses by objective (module docstring) from ``lora_adapter``'s metadata
    (plain values, as the training program reported them or as ``adapter_loss_metadata``
    labelled them): ``method`` ("" without an adapter) and every loss column, None where the
    method has no such loss."""
    out: dict[str, Any] = dict.fromkeys(LOSS_COLUMNS)
    if not adapter:
        out["method"] = ""
        return out
    method = str(adapter.get("method") or "sft")
    out["method"] = method
    stages = adapter.get("stages") if isinstance(adapter.get("stages"), Mapping) else {}
    sft = adapter if method == "sft" else (stages.get("sft") if isinstance(stages.get("sft"), Mapping) else {})
    out.update(sft_train_loss=_first(adapter.get("sft_train_loss"), sft.get("final_train_loss")),
               sft_eval_loss=_first(adapter.get("sft_eval_loss"), sft.get("final_eval_loss")),
               sft_eval_perplexity=_first(adapter.get("sft_eval_perplexity"), sft.get("eval_perplexity")))
    preference = method.split("+")[-1]
    if preference in ("dpo", "kto"):
        out[f"{preference}_eval_loss"] = _first(adapter.get(f"{preference}_eval_loss"), adapter.get("final_eval_loss"))
    return out


# What the unlabelled entries of a run are called once its objective is named.
_RUN_KEYS = {"final_train_loss": "train_loss", "final_eval_loss": "eval_loss", "train_eval_gap": "train_eval_gap"}
OBJECTIVES = {
    "sft": "SFT: final_*_loss is the cross-entropy of the reply tokens (nats per token), eval_perplexity its exp",
    "dpo": "DPO: dpo_*_loss is the DPO loss on the preference pairs (no perplexity: no language-model loss)",
    "kto": "KTO: kto_*_loss is the KTO loss on the labelled replies (no perplexity: no language-model loss)",
    "sft+dpo": ("SFT then DPO: sft_* is the SFT stage's cross-entropy of the reply tokens (nats per token) and "
                "its perplexity, dpo_*_loss the DPO stage's loss on the preference pairs (no perplexity)"),
}


def adapter_loss_metadata(md: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``(entries to add, keys to drop)`` so that ``lora_adapter``'s page names each loss's
    objective: ``loss_objective`` says what the losses are; an SFT run keeps its
    ``final_*_loss`` and perplexities; a DPO / KTO run shows ``<method>_train_loss``,
    ``<method>_eval_loss`` and ``<method>_train_eval_gap`` instead of the unlabelled entries and
    no null perplexity; an ``sft+dpo`` run shows its SFT stage's ``sft_train_loss``,
    ``sft_eval_loss`` and ``sft_eval_perplexity`` beside the DPO stage's, instead of the stage
    entries ``<stage>_final_*_loss``. ``md``: plain values."""
    method = str(md.get("method") or "sft")
    add: dict[str, Any] = {"loss_objective": OBJECTIVES.get(method, method)}
    if method == "sft":
        return add, []
    preference = method.split("+")[-1]
    drop = [*_RUN_KEYS, "eval_perplexity", "train_perplexity"]
    add.update({f"{preference}_{label}": _num(md.get(key)) for key, label in _RUN_KEYS.items()})
    if method == "sft+dpo":
        losses = losses_by_objective(md)
        add.update({k: losses[k] for k in ("sft_train_loss", "sft_eval_loss", "sft_eval_perplexity")})
        drop += [f"{stage}_final_{kind}_loss" for stage in ("sft", "dpo") for kind in ("train", "eval")]
    return add, [k for k in drop if k in md]


def judge_columns(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report's judge ("name (model)"; "unknown" for a report that does not say) and its
    agreement with real likes, with its interval."""
    if not report:
        return {"judge": "", **dict.fromkeys(JUDGE_COLUMNS[1:])}
    judge = report.get("judge") or {}
    likes = report.get(JUDGE_LIKES_KEY) or {}
    name, model = str(judge.get("name") or ""), str(judge.get("model") or "")
    label = f"{name} ({model})" if name and model and model != name else (name or model or "unknown")
    return {"judge": label, "judge_likes_agreement": _num(likes.get("agreement")),
            "judge_likes_ci_low": _num(likes.get("ci_low")), "judge_likes_ci_high": _num(likes.get("ci_high"))}


# --------------------------------------------------------------------------- the gate, for every candidate


def default_comparison(reports: Mapping[str, dict], candidate: str,
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


def gate_one(name: str, report: Mapping[str, Any], p_holm: float | None, comparisons: int,
             reports: Mapping[str, dict], champion: str | None, ev: EvaluationSettings) -> dict[str, Any]:
    """``promotion_gate`` for one candidate from its report and the Holm-adjusted p over its
    curated set, with what gate order sorts by (``checks_passed``, ``criteria_passed``,
    ``win_rate_ci_low``, ``p_holm``)."""
    from replyassets.core.stats import promotion_gate, verdict

    stats = report.get("stats") or {}
    vs_base = (verdict(stats["base"], ev, adjusted_p=p_holm, comparisons=max(int(comparisons), 1))
               if stats.get("base") else None)
    judged_against = (report.get("opponents") or {}).get("champion")
    vs_champion = stats.get("champion") if champion and judged_against == champion else None
    vs_default, default_missing = default_comparison(reports, name)
    decision = promotion_gate(name, vs_base, stats.get("retrieval"), vs_champion, champion,
                              vs_default=vs_default, default=DEFAULT_EXPERIMENT, default_missing=default_missing)
    decision.update(
        checks_passed=sum(bool(c["passed"]) for c in decision["checks"]),
        criteria_passed=int((vs_base or {}).get("criteria_passed") or 0),
        win_rate_ci_low=_num((stats.get("base") or {}).get("win_rate_ci_low")), p_holm=_num(p_holm),
    )
    return decision


def gate_key(decision: Mapping[str, Any]) -> tuple:
    """Gate order (module docstring); the name breaks ties, so the order is total."""
    lo, p = decision.get("win_rate_ci_low"), decision.get("p_holm")
    return (not decision["promote"], -int(decision.get("checks_passed") or 0), -int(decision.get("criteria_passed") or 0),
            -(lo if lo is not None else -1.0), p if p is not None else 2.0, str(decision["candidate"]))


def holm_by_curated_set(reports: Mapping[str, dict]) -> tuple[dict[str, float | None], dict[str, int]]:
    """The Holm-adjusted p of each experiment over the experiments evaluated on its curated set,
    and the size of that family."""
    from replyassets.core.stats import holm_bonferroni

    by_hash: dict[str, dict[str, float | None]] = {}
    for name, rep in reports.items():
        by_hash.setdefault(str(rep.get("curated_set_hash")), {})[name] = rep.get("p_raw")
    adjusted: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    for group in by_hash.values():
        adjusted.update(holm_bonferroni(group))
        for name in group:
            counts[name] = sum(v is not None for v in group.values())
    return adjusted, counts


def gate_decisions(reports: Mapping[str, dict], champion: str | None, settings_for: SettingsFor | None = None
                   ) -> list[dict[str, Any]]:
    """The gate for every experiment with a report, the champion left out, in gate order.
    ``settings_for(name)``: the evaluation settings the experiment is judged by (default: the
    documented defaults)."""
    settings_for = settings_for or (lambda _name: EvaluationSettings())
    adjusted, counts = holm_by_curated_set(reports)
    out = [gate_one(name, reports[name], adjusted.get(name), counts.get(name, 0), reports, champion,
                    settings_for(name))
           for name in sorted(reports) if name != champion]
    return sorted(out, key=gate_key)


def failure_text(decision: Mapping[str, Any]) -> str:
    """Why the gate refused a candidate, as the reason says it (after the outcome)."""
    return str(decision["reason"]).split(": ", 1)[-1]


# --------------------------------------------------------------------------- rows


def _row(name: str, rep: Mapping[str, Any], ad: Mapping[str, Any], p_holm: float | None, comparisons: int,
         champion: str | None) -> dict[str, Any]:
    stats = rep.get("stats") or {}
    base, retrieval = stats.get("base") or {}, stats.get("retrieval") or {}
    return {
        "experiment": name, "champion": name == champion,
        "verdict": str((rep.get("verdict") or {}).get("label", "not evaluated")),
        "win_rate": base.get("win_rate"), "win_rate_ci_low": base.get("win_rate_ci_low"),
        "win_rate_ci_high": base.get("win_rate_ci_high"), "lc_win_rate": base.get("lc_win_rate"),
        "win_rate_vs_retrieval": retrieval.get("win_rate"), "n_tweets": base.get("n_tweets"),
        "p_raw": rep.get("p_raw"), "p_holm": p_holm, "comparisons": comparisons,
        **judge_columns(rep), **losses_by_objective(ad),
        "recipe": str(ad.get("recipe") or ""),
        "curated_set_hash": str(rep.get("curated_set_hash") or ad.get("curated_set_hash") or "")[:12],
        "cost_usd": ad.get("cost_usd"), "tokens_per_s": ad.get("train_tokens_per_s"),
    }


def _standing(name: str, champion: str | None, reports: Mapping[str, dict], decision: Mapping[str, Any] | None,
              first: str | None) -> tuple[str, str]:
    """(gate, gate_reason) of one row."""
    if name == champion and name in reports:
        return GATE_CHAMPION, f"{name} is the champion (promoted through the gate)"
    if decision is None:
        return GATE_NOT_EVALUATED, "no evaluation report"
    if decision["promote"]:
        return (GATE_PROMOTE, decision["reason"]) if name == first else (
            GATE_PASSES, f"passes the gate; {first} ranks higher in gate order")
    return GATE_REFUSED, failure_text(decision)


def leaderboard_rows(reports: Mapping[str, dict], adapters: Mapping[str, dict], champion: str | None,
                     settings_for: SettingsFor | None = None) -> pd.DataFrame:
    """One row per experiment (module docstring), in gate order."""
    adjusted, counts = holm_by_curated_set(reports)
    rows = [_row(name, reports.get(name) or {}, adapters.get(name) or {}, adjusted.get(name), counts.get(name, 0),
                 champion) for name in sorted(set(reports) | set(adapters))]
    decisions = gate_decisions(reports, champion, settings_for)
    by_name = {d["candidate"]: d for d in decisions}
    first = next((d["candidate"] for d in decisions if d["promote"]), None)
    order = {d["candidate"]: i for i, d in enumerate(decisions)}
    for row in rows:
        row["gate"], row["gate_reason"] = _standing(row["experiment"], champion, reports, by_name.get(row["experiment"]),
                                                    first)
    rows.sort(key=lambda r: (GATE_RANK[r["gate"]], order.get(r["experiment"], len(order)), r["experiment"]))
    return _typed(pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in LEADERBOARD_COLUMNS:
        if col in TEXT_COLUMNS:
            df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
        elif col in INT_COLUMNS:
            df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype("int64")
        elif col == "champion":
            df[col] = df[col].fillna(False).astype(bool)
        else:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df.reset_index(drop=True)


def _f(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def leaderboard_markdown(df: pd.DataFrame) -> str:
    """The leaderboard as a markdown table, in its (gate) order."""
    lines = [("| experiment | gate | win rate vs base [interval] | vs retrieval | p (Holm) | tweets "
              "| judge (agreement with likes) | champion |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        judge = (f"{r.judge} {fmt_num(_f(r.judge_likes_agreement))} [{fmt_num(_f(r.judge_likes_ci_low))}, "
                 f"{fmt_num(_f(r.judge_likes_ci_high))}]") if r.judge else ""
        lines.append(
            f"| {r.experiment} | {r.gate} | {fmt_num(_f(r.win_rate))} [{fmt_num(_f(r.win_rate_ci_low))}, "
            f"{fmt_num(_f(r.win_rate_ci_high))}] | {fmt_num(_f(r.win_rate_vs_retrieval))} | {fmt_num(_f(r.p_holm))} | "
            f"{r.n_tweets} | {judge} | {'yes' if r.champion else ''} |"
        )
    return "\n".join(lines)
