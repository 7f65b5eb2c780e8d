"""What a run's log history says: loss and reward curves, their summaries, perplexity and
peak memory."""

from __future__ import annotations

import math
import resource
from typing import Any

# What TRL logs for a preference stage (train; "eval_" + key at evaluations), reported first/last and as a curve.
PREFERENCE_KEYS = {
    "dpo": ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
    "kto": ("rewards/chosen", "rewards/rejected", "rewards/margins", "kl", "logps/chosen", "logps/rejected"),
}


def perplexity(loss: float | None) -> float | None:
    return None if loss is None else float(math.exp(min(loss, 50.0)))


def peak_memory() -> tuple[float, str]:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_max_rss"


def loss_curve(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per logged step: step, train_loss, eval_loss, gap (eval - latest train)."""
    rows: dict[int, dict[str, Any]] = {}
    last_train = None
    for entry in log_history:
        step = int(entry.get("step", 0))
        if "loss" in entry and "eval_loss" not in entry:
            last_train = float(entry["loss"])
            rows.setdefault(step, {"step": step, "train_loss": None, "eval_loss": None, "gap": None})["train_loss"] = last_train
        if "eval_loss" in entry:
            row = rows.setdefault(step, {"step": step, "train_loss": None, "eval_loss": None, "gap": None})
            row["eval_loss"] = float(entry["eval_loss"])
            if last_train is not None:
                row["gap"] = row["eval_loss"] - last_train
    return [rows[k] for k in sorted(rows)]


def reward_curve(log_history: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per logged step with the preference metrics logged there: ``key`` from training
    logs, ``eval_<key>`` from evaluations (a key the step did not log is absent)."""
    rows: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        prefix = "eval_" if "eval_loss" in entry else ""
        if not prefix and "loss" not in entry:
            continue  # the end-of-training summary
        values = {prefix + k: float(entry[prefix + k]) for k in keys if isinstance(entry.get(prefix + k), (int, float))}
        if values:
            step = int(entry.get("step", 0))
            rows.setdefault(step, {"step": step}).update(values)
    return [rows[k] for k in sorted(rows)]


def reward_summary(curve: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``{key: {"first", "last", "first_step", "last_step", "n"}}`` for each train and eval metric logged."""
    out = {}
    for key in list(keys) + [f"eval_{k}" for k in keys]:
        points = [(r["step"], r[key]) for r in curve if key in r]
        if points:
            out[key] = {
                "first": points[0][1],
                "last": points[-1][1],
                "first_step": points[0][0],
                "last_step": points[-1][0],
                "n": len(points),
            }
    return out


def final_losses(history: list[dict[str, Any]], final_eval: dict[str, Any], gap_alarm: float) -> dict[str, Any]:
    """The last logged train loss, the final eval loss, their gap and whether it passes ``gap_alarm``."""
    train_losses = [e["loss"] for e in history if "loss" in e and "eval_loss" not in e]
    final_train_loss = float(train_losses[-1]) if train_losses else None
    final_eval_loss = float(final_eval["eval_loss"])
    gap = None if final_train_loss is None else final_eval_loss - final_train_loss
    return {
        "final_train_loss": final_train_loss,
        "final_eval_loss": final_eval_loss,
        "train_eval_gap": gap,
        "gap_threshold": gap_alarm,
        "gap_alarm": bool(gap is not None and gap > gap_alarm),
    }


def preference_result(stage: str, history: list[dict[str, Any]], final_eval: dict[str, Any]) -> dict[str, Any]:
    """A preference stage's reward curve, its first/last summary and the final eval metrics."""
    rewards = reward_curve(history, PREFERENCE_KEYS[stage])
    return {
        "reward_curve": rewards,
        "preference_metrics": reward_summary(rewards, PREFERENCE_KEYS[stage]),
        "final_eval_metrics": {
            k[len("eval_") :]: float(v) for k, v in final_eval.items() if k.startswith("eval_") and isinstance(v, (int, float))
        },
    }
