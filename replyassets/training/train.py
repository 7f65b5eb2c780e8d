"""The LoRA / QLoRA training program the launcher runs.

    python -m replyassets.training.train --config CONFIG.json

Runs on its own (writes ``<output_dir>/result.json``) and under Dagster Pipes (detected from
the Pipes env vars): logs stream through ``pipes.log``, the result is reported with
``report_asset_materialization`` and the train/eval gap alarm with ``report_asset_check``.
Under Pipes the config may also come from the extra ``training_config`` (no --config needed).

Imports nothing from Dagster but ``dagster_pipes`` (the GPU image has no orchestrator).
A rerun with the same ``output_dir`` resumes from the last complete checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import resource
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from replyassets.training.config import ConfigError, TrainConfig
from replyassets.training.data import DataError, read_jsonl, sample_prompts, tokenize_rows, prompt_ids

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"

Log = Callable[[str], None]


# --------------------------------------------------------------------------- helpers


def dir_sha256(folder: str | Path) -> str:
    """sha256 over (relative path, file bytes) of every file, sorted: same adapter -> same hash."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(x for x in folder.rglob("*") if x.is_file()):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def complete_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Checkpoints that finished saving (``trainer_state.json`` is written last), by step."""
    out = []
    root = Path(output_dir)
    if not root.is_dir():
        return out
    for p in root.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m and p.is_dir() and (p / TRAINER_STATE).is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def remove_incomplete_checkpoints(output_dir: str | Path, log: Log) -> None:
    root = Path(output_dir)
    if not root.is_dir():
        return
    for p in root.iterdir():
        if CHECKPOINT_RE.match(p.name) and p.is_dir() and not (p / TRAINER_STATE).is_file():
            log(f"removing incomplete checkpoint {p.name} (killed while saving)")
            shutil.rmtree(p)


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


def curve_markdown(curve: list[dict[str, Any]]) -> str:
    fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
    lines = ["| step | train loss | eval loss | gap |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['step']} | {fmt(r['train_loss'])} | {fmt(r['eval_loss'])} | {fmt(r['gap'])} |" for r in curve]
    return "\n".join(lines)


def plot_curve(curve: list[dict[str, Any]], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the plot is optional in a slim image
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    tr = [(r["step"], r["train_loss"]) for r in curve if r["train_loss"] is not None]
    ev = [(r["step"], r["eval_loss"]) for r in curve if r["eval_loss"] is not None]
    if tr:
        ax.plot(*zip(*tr), label="train loss")
    if ev:
        ax.plot(*zip(*ev), marker="o", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return str(path)


# --------------------------------------------------------------------------- callbacks


def _callbacks(cfg: TrainConfig, tokenizer, samples: list[dict], log: Log):
    import torch
    from transformers import TrainerCallback

    end_id = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)

    class BestCheckpoints(TrainerCallback):
        """Keep the best ``save_total_limit`` checkpoints by eval loss, plus the latest (resume)."""

        def on_save(self, args, state, control, **kw):
            losses = {int(e["step"]): e["eval_loss"] for e in state.log_history if "eval_loss" in e}
            ckpts = complete_checkpoints(args.output_dir)
            if not ckpts:
                return
            latest = ckpts[-1][0]
            ranked = sorted((losses.get(s, float("inf")), s) for s, _ in ckpts)
            keep = {s for _, s in ranked[: cfg.save_total_limit]} | {latest}
            if state.best_model_checkpoint:
                m = CHECKPOINT_RE.match(Path(state.best_model_checkpoint).name)
                if m:
                    keep.add(int(m.group(1)))
            for s, p in ckpts:
                if s not in keep:
                    shutil.rmtree(p, ignore_errors=True)

    class Throughput(TrainerCallback):
        """Pure training time (no eval / save / generation) for steps/s and tokens/s."""

        def __init__(self):
            self.train_time = 0.0
            self.steps = 0
            self.tokens_start = None
            self._t = None

        def on_train_begin(self, args, state, control, **kw):
            self.tokens_start = state.num_input_tokens_seen

        def on_step_begin(self, args, state, control, **kw):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if self._t is not None:
                self.train_time += time.perf_counter() - self._t
                self.steps += 1
                self._t = None

        def tokens(self, state) -> int:
            return int(state.num_input_tokens_seen - (self.tokens_start or 0))

    class Samples(TrainerCallback):
        """Greedy replies to a few fixed eval tweets at every evaluation."""

        def __init__(self):
            self.history: list[dict[str, Any]] = []
            self.enabled = True

        def on_evaluate(self, args, state, control, model=None, metrics=None, **kw):
            if not self.enabled or not samples or model is None:
                return
            was_training = model.training
            model.eval()
            outs = []
            with torch.no_grad():
                for s in samples:
                    ids = torch.tensor([prompt_ids(tokenizer, s["prompt"])], device=model.device)
                    gen = model.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        max_new_tokens=cfg.sample_max_new_tokens,
                        do_sample=False,
                        pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=end_id,
                    )
                    new = gen[0, ids.shape[1] :].tolist()
                    if end_id in new:
                        new = new[: new.index(end_id)]
                    reply = tokenizer.decode(new, skip_special_tokens=False)
                    outs.append({"tweet_id": s["tweet_id"], "reply": reply})
            if was_training:
                model.train()
            entry = {"step": state.global_step, "eval_loss": (metrics or {}).get("eval_loss"), "samples": outs}
            self.history.append(entry)
            for o in outs:
                log(f"sample @ step {state.global_step} tweet {o['tweet_id']}: {o['reply']!r}")

    class LogForward(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs:
                keep = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in logs.items()}
                log(f"step {state.global_step}: {json.dumps(keep, sort_keys=True)}")

    return BestCheckpoints(), Throughput(), Samples(), LogForward()


# --------------------------------------------------------------------------- training


def resolve_device(cfg: TrainConfig) -> str:
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is visible")
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.device


def load_model(cfg: TrainConfig, device: str):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict[str, Any] = {}
    bf16_ok = device == "cuda" and torch.cuda.is_bf16_supported()
    if cfg.quantization == "nf4":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_quant_storage=torch.bfloat16,
        )
        kwargs["dtype"] = torch.bfloat16
    else:
        kwargs["dtype"] = torch.bfloat16 if bf16_ok else torch.float32
    if device == "cuda":
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(cfg.base_model, **kwargs)
    model.config.use_cache = False
    return model, bf16_ok


def run_training(cfg: TrainConfig, log: Log = print) -> dict[str, Any]:
    """Train, save the adapter, write ``result.json``; returns the result dict."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoTokenizer, EarlyStoppingCallback, PrinterCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    t_start = time.perf_counter()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    device = resolve_device(cfg)
    if device == "cpu" and cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    log(f"device={device} base_model={cfg.base_model} quantization={cfg.quantization} packing={cfg.packing}")

    train_rows, eval_rows = read_jsonl(cfg.train_file), read_jsonl(cfg.eval_file)
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.base_model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the base model's tokenizer from {cfg.base_model!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_ds = datasets.Dataset.from_list(tokenize_rows(tokenizer, train_rows, cfg.max_seq_len, "train"))
    eval_ds = datasets.Dataset.from_list(tokenize_rows(tokenizer, eval_rows, cfg.max_seq_len, "eval"))
    samples = sample_prompts(eval_rows, cfg.sample_generations)
    log(f"train rows={len(train_ds)} eval rows={len(eval_ds)}")

    model, bf16_ok = load_model(cfg, device)
    n_4bit = sum(type(m).__name__ == "Linear4bit" for m in model.modules())
    log(f"model loaded: {type(model).__name__}, 4-bit linear layers: {n_4bit}")
    gc = cfg.gradient_checkpointing == "true" or (cfg.gradient_checkpointing == "auto" and device == "cuda")
    peft_config = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(
        output_dir=str(out),
        run_name=cfg.run_name or None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        warmup_steps=float(cfg.warmup_ratio),  # a float in [0, 1) is a ratio of total steps (transformers 5)
        lr_scheduler_type=cfg.lr_scheduler,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        weight_decay=cfg.weight_decay,
        optim="adamw_torch",
        # rows are already cut to max_seq_len (data.tokenize_rows); TRL refuses max_length with padding-free alone
        max_length=None if (cfg.padding_free and not cfg.packing) else cfg.max_seq_len,
        packing=cfg.packing,
        padding_free=cfg.padding_free,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=None,  # rotation by eval loss: BestCheckpoints
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        use_cpu=device == "cpu",
        bf16=bf16_ok,
        activation_checkpointing=gc,  # TRL defaults it to True; explicit here
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
        dataloader_num_workers=0,
        save_only_model=False,
    )
    best_ckpts, throughput, sample_cb, log_cb = _callbacks(cfg, tokenizer, samples, log)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[
            EarlyStoppingCallback(
                early_stopping_patience=cfg.early_stopping_patience,
                early_stopping_threshold=cfg.early_stopping_threshold,
            ),
            best_ckpts,
            throughput,
            sample_cb,
            log_cb,
        ],
    )

    trainer.remove_callback(PrinterCallback)  # LogForward already prints every log
    remove_incomplete_checkpoints(out, log)
    resume_from = None
    ckpts = complete_checkpoints(out)
    if cfg.resume and ckpts:
        resume_from = ckpts[-1]
        log(f"resuming from {resume_from[1].name} (global step {resume_from[0]})")
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_out = trainer.train(resume_from_checkpoint=str(resume_from[1]) if resume_from else None)
    state = trainer.state

    adapter_dir = Path(cfg.adapter_dir)
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    # the adapter (+ tokenizer, so the folder is self-contained); no training_args.bin: the hash
    # covers only what defines the adapter
    trainer.model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    history = list(state.log_history)  # before the final evaluation adds its entry
    sample_cb.enabled = False
    final_eval = trainer.evaluate()  # the best model (loaded at the end)
    train_losses = [e["loss"] for e in history if "loss" in e and "eval_loss" not in e]
    final_train_loss = float(train_losses[-1]) if train_losses else None
    final_eval_loss = float(final_eval["eval_loss"])
    gap = None if final_train_loss is None else final_eval_loss - final_train_loss
    alarm = gap is not None and gap > cfg.gap_alarm
    curve = loss_curve(history)
    plot = plot_curve(curve, out / "loss_curve.png")
    mem, mem_kind = peak_memory()
    best_step = None
    if state.best_model_checkpoint:
        m = CHECKPOINT_RE.match(Path(state.best_model_checkpoint).name)
        best_step = int(m.group(1)) if m else None
    stopped_early = cfg.max_steps > 0 and state.global_step < cfg.max_steps or (
        cfg.max_steps <= 0 and state.global_step < state.max_steps
    )
    tokens = throughput.tokens(state)
    result = {
        "adapter_path": str(adapter_dir.resolve()),
        "adapter_sha256": dir_sha256(adapter_dir),
        "base_model": cfg.base_model,
        "curated_set_hash": cfg.curated_set_hash,
        "global_step": int(state.global_step),
        "max_steps": int(state.max_steps),
        "best_step": best_step,
        "best_checkpoint": state.best_model_checkpoint,
        "early_stopped": bool(stopped_early),
        "resumed_from_step": resume_from[0] if resume_from else None,
        "final_train_loss": final_train_loss,
        "final_eval_loss": final_eval_loss,
        "train_perplexity": perplexity(final_train_loss),
        "eval_perplexity": perplexity(final_eval_loss),
        "train_eval_gap": gap,
        "gap_threshold": cfg.gap_alarm,
        "gap_alarm": bool(alarm),
        "train_steps_per_s": throughput.steps / throughput.train_time if throughput.train_time else None,
        "train_tokens_per_s": tokens / throughput.train_time if throughput.train_time else None,
        "train_tokens": tokens,
        "train_runtime_s": float(train_out.metrics.get("train_runtime", 0.0)),
        "wall_s": time.perf_counter() - t_start,
        "peak_memory_mb": mem,
        "peak_memory_kind": mem_kind,
        "device": device,
        "quantized_4bit_layers": n_4bit,
        "train_rows": len(train_ds),
        "eval_rows": len(eval_ds),
        "loss_curve": curve,
        "loss_curve_plot": plot,
        "sample_generations": sample_cb.history,
        "checkpoints": [p.name for _, p in complete_checkpoints(out)],
        "config": cfg.to_dict(),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    log(
        f"done: step {result['global_step']} train_loss={final_train_loss} eval_loss={final_eval_loss:.4f} "
        f"gap={gap} alarm={alarm} adapter={result['adapter_path']} sha256={result['adapter_sha256'][:12]}"
    )
    return result


# --------------------------------------------------------------------------- reporting


def pipes_metadata(result: dict[str, Any]) -> dict[str, Any]:
    """The materialization metadata (Pipes typed values)."""

    def typed(kind: str, value: Any) -> dict[str, Any]:
        return {"type": kind, "raw_value": value}

    def num(v):
        return typed("null", None) if v is None else typed("float", float(v))

    latest = result["sample_generations"][-1] if result["sample_generations"] else None
    samples_md = "\n".join(
        ["| step | tweet | reply |", "|---:|---|---|"]
        + [
            f"| {h['step']} | {s['tweet_id']} | {s['reply'].replace('|', '/').replace(chr(10), ' ')} |"
            for h in result["sample_generations"]
            for s in h["samples"]
        ]
    )
    md = {
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
        "best_step": typed("int", result["best_step"]) if result["best_step"] is not None else typed("null", None),
        "early_stopped": typed("bool", result["early_stopped"]),
        "resumed_from_step": typed("int", result["resumed_from_step"])
        if result["resumed_from_step"] is not None
        else typed("null", None),
        "train_steps_per_s": num(result["train_steps_per_s"]),
        "train_tokens_per_s": num(result["train_tokens_per_s"]),
        "peak_memory_mb": num(result["peak_memory_mb"]),
        "peak_memory_kind": typed("text", result["peak_memory_kind"]),
        "device": typed("text", result["device"]),
        "loss_curve": typed("json", result["loss_curve"]),
        "loss_curve_table": typed("md", curve_markdown(result["loss_curve"])),
        "sample_generations": typed("json", result["sample_generations"]),
        "sample_generations_table": typed("md", samples_md),
        "latest_samples": typed("json", latest),
        "training_config": typed("json", result["config"]),
        "result_json": typed("path", str(Path(result["config"]["output_dir"]).resolve() / "result.json")),
    }
    if result["loss_curve_plot"]:
        md["loss_curve_plot"] = typed("path", str(Path(result["loss_curve_plot"]).resolve()))
    return md


def _run_with_pipes(config_path: str | None) -> int:
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        log = pipes.log.info
        if config_path:
            cfg = TrainConfig.from_file(config_path)
        else:
            data = pipes.extras.get("training_config")
            if data is None:
                raise ConfigError("no --config and no `training_config` Pipes extra")
            cfg = TrainConfig.from_dict(data)
        result = run_training(cfg, log=log)
        pipes.report_asset_check(
            check_name=cfg.check_name,
            passed=not result["gap_alarm"],
            severity="WARN",
            metadata={
                "train_eval_gap": {"type": "float", "raw_value": result["train_eval_gap"]}
                if result["train_eval_gap"] is not None
                else {"type": "null", "raw_value": None},
                "threshold": {"type": "float", "raw_value": cfg.gap_alarm},
                "final_train_loss": {"type": "float", "raw_value": result["final_train_loss"] or 0.0},
                "final_eval_loss": {"type": "float", "raw_value": result["final_eval_loss"]},
            },
        )
        pipes.report_asset_materialization(metadata=pipes_metadata(result), data_version=result["adapter_sha256"])
    return 0


def is_pipes_process() -> bool:
    from dagster_pipes import PipesEnvVarParamsLoader

    return PipesEnvVarParamsLoader().is_dagster_pipes_process()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replyassets.training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="training config JSON (optional under Pipes: extra `training_config`)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if is_pipes_process():
            return _run_with_pipes(args.config)
        if not args.config:
            parser.error("--config is required outside Dagster Pipes")
        run_training(TrainConfig.from_file(args.config), log=lambda m: print(m, flush=True))
        return 0
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception:  # noqa: BLE001 - a crash leaves its traceback; the rerun resumes
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
