"""A training result reported through Dagster Pipes: the materialization metadata (Pipes typed
values) and the train/eval gap check. Imports nothing from Dagster but ``dagster_pipes``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replyassets.training.config import ConfigError, TrainConfig
from replyassets.training.curves import PREFERENCE_KEYS
from replyassets.training.stages import run_training, skip_unused_bitsandbytes

# What the ``stages`` metadata of an sft+dpo run keeps of each stage's result.
STAGE_SUMMARY_KEYS = (
    "global_step", "best_step", "resumed_from_step", "final_train_loss", "final_eval_loss", "train_eval_gap",
    "gap_alarm", "train_tokens_per_s", "train_steps_per_s", "adapter_path", "adapter_sha256",
    "preference_metrics", "eval_perplexity",
)


def typed(kind: str, value: Any) -> dict[str, Any]:
    """A Pipes metadata value of type ``kind``."""
    return {"type": kind, "raw_value": value}


def num(v: Any) -> dict[str, Any]:
    """A float metadata value, or null."""
    return typed("null", None) if v is None else typed("float", float(v))


def int_or_null(v: Any) -> dict[str, Any]:
    return typed("null", None) if v is None else typed("int", v)


def reward_markdown(curve: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    cols = [k for k in keys if any(k in r for r in curve)] + [f"eval_{k}" for k in keys if any(f"eval_{k}" in r for r in curve)]
    lines = ["| step | " + " | ".join(cols) + " |", "|---:|" + "---:|" * len(cols)]
    lines += [f"| {r['step']} | " + " | ".join(f"{r[c]:.4f}" if c in r else "" for c in cols) + " |" for r in curve]
    return "\n".join(lines)


def curve_markdown(curve: list[dict[str, Any]]) -> str:
    def fmt(v: float | None) -> str:
        return "" if v is None else f"{v:.4f}"

    lines = ["| step | train loss | eval loss | gap |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['step']} | {fmt(r['train_loss'])} | {fmt(r['eval_loss'])} | {fmt(r['gap'])} |" for r in curve]
    return "\n".join(lines)


def samples_markdown(sample_generations: list[dict[str, Any]]) -> str:
    return "\n".join(
        ["| step | tweet | reply |", "|---:|---|---|"]
        + [
            f"| {h['step']} | {s['tweet_id']} | {s['reply'].replace('|', '/').replace(chr(10), ' ')} |"
            for h in sample_generations
            for s in h["samples"]
        ]
    )


def _run_metadata(result: dict[str, Any]) -> dict[str, Any]:
    """The metadata every method reports: adapter, losses, progress, throughput, curve, samples."""
    generations = result["sample_generations"]
    return {
        "adapter_path": typed("path", result["adapter_path"]),
        "adapter_sha256": typed("text", result["adapter_sha256"]),
        "curated_set_hash": typed("text", result["curated_set_hash"] or ""),
        "base_model": typed("text", result["base_model"]),
        "final_train_loss": num(result["final_train_loss"]),
        "final_eval_loss": num(result["final_eval_loss"]),
        "train_perplexity": num(result["train_perplexity"]),
        "eval_perplexity": num(result["eval_perplexity"]),
        "train_eval_gap": num(result["train_eval_gap"]),
        "gap_alarm": typed("bool", result["gap_alarm"]),
        "global_step": typed("int", result["global_step"]),
        "best_step": int_or_null(result["best_step"]),
        "early_stopped": typed("bool", result["early_stopped"]),
        "resumed_from_step": int_or_null(result["resumed_from_step"]),
        "train_steps_per_s": num(result["train_steps_per_s"]),
        "train_tokens_per_s": num(result["train_tokens_per_s"]),
        "peak_memory_mb": num(result["peak_memory_mb"]),
        "peak_memory_kind": typed("text", result["peak_memory_kind"]),
        "device": typed("text", result["device"]),
        "loss_curve": typed("json", result["loss_curve"]),
        "loss_curve_table": typed("md", curve_markdown(result["loss_curve"])),
        "sample_generations": typed("json", generations),
        "sample_generations_table": typed("md", samples_markdown(generations)),
        "latest_samples": typed("json", generations[-1] if generations else None),
        "training_config": typed("json", result["config"]),
        "result_json": typed("path", str(Path(result["config"]["output_dir"]).resolve() / "result.json")),
    }


def _preference_metadata(result: dict[str, Any], stage: str) -> dict[str, Any]:
    """e.g. rewards_margins_first / rewards_margins_last / eval_rewards_accuracies_last, the reward curve."""
    md: dict[str, Any] = {}
    for key, summary in sorted(result["preference_metrics"].items()):
        name = key.replace("/", "_")
        md[f"{name}_first"] = num(summary["first"])
        md[f"{name}_last"] = num(summary["last"])
    md["reward_curve"] = typed("json", result["reward_curve"])
    md["reward_curve_table"] = typed("md", reward_markdown(result["reward_curve"], PREFERENCE_KEYS[stage]))
    md["final_eval_metrics"] = typed("json", result.get("final_eval_metrics", {}))
    return md


def _stages_metadata(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each stage's summary of an sft+dpo run, and its headline figures as their own entries."""
    md: dict[str, Any] = {
        "stages": typed("json", {name: {k: r.get(k) for k in STAGE_SUMMARY_KEYS if k in r} for name, r in stages.items()})
    }
    for name, r in stages.items():
        md[f"{name}_final_train_loss"] = num(r["final_train_loss"])
        md[f"{name}_final_eval_loss"] = num(r["final_eval_loss"])
        md[f"{name}_global_step"] = typed("int", r["global_step"])
        md[f"{name}_train_tokens_per_s"] = num(r["train_tokens_per_s"])
        md[f"{name}_adapter_sha256"] = typed("text", r["adapter_sha256"])
    return md


def pipes_metadata(result: dict[str, Any]) -> dict[str, Any]:
    """The materialization metadata (Pipes typed values)."""
    md = _run_metadata(result)
    if result["loss_curve_plot"]:
        md["loss_curve_plot"] = typed("path", str(Path(result["loss_curve_plot"]).resolve()))
    md["method"] = typed("text", result.get("method", "sft"))
    stage = result.get("method", "sft").split("+")[-1]
    if "preference_metrics" in result:
        md.update(_preference_metadata(result, stage))
    if "stages" in result:
        md.update(_stages_metadata(result["stages"]))
    return md


def gap_check_metadata(result: dict[str, Any], cfg: TrainConfig) -> dict[str, Any]:
    """The metadata of the train/eval gap check."""
    return {
        "train_eval_gap": num(result["train_eval_gap"]),
        "threshold": typed("float", cfg.gap_alarm),
        "final_train_loss": typed("float", result["final_train_loss"] or 0.0),
        "final_eval_loss": typed("float", result["final_eval_loss"]),
    }


def run_with_pipes(config_path: str | None, skip_bitsandbytes: bool = False) -> int:
    """Train under Dagster Pipes (config from ``config_path`` or the ``training_config`` extra),
    logging through ``pipes.log`` and reporting the gap check and the materialization."""
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        if config_path:
            cfg = TrainConfig.from_file(config_path)
        else:
            data = pipes.extras.get("training_config")
            if data is None:
                raise ConfigError("no --config and no `training_config` Pipes extra")
            cfg = TrainConfig.from_dict(data)
        if skip_bitsandbytes:
            skip_unused_bitsandbytes(cfg.quantization)
        result = run_training(cfg, log=pipes.log.info)
        pipes.report_asset_check(
            check_name=cfg.check_name,
            passed=not result["gap_alarm"],
            severity="WARN",
            metadata=gap_check_metadata(result, cfg),
        )
        pipes.report_asset_materialization(metadata=pipes_metadata(result), data_version=result["adapter_sha256"])
    return 0


def is_pipes_process() -> bool:
    from dagster_pipes import PipesEnvVarParamsLoader

    return PipesEnvVarParamsLoader().is_dagster_pipes_process()
