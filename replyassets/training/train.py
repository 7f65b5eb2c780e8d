"""The LoRA / QLoRA training program the launcher runs.

    python -m replyassets.training.train --config CONFIG.json

``method`` (config.py) picks SFT, DPO, KTO, or SFT then DPO (``stage-sft/`` and ``stage-dpo/``
under ``output_dir``, the DPO stage continuing the SFT adapter against the SFT model).

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
import random
import re
import resource
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from replyassets.training.config import ConfigError, TrainConfig
from replyassets.training.data import DataError, prompt_ids, read_jsonl, sample_prompts, tokenize_rows
from replyassets.training.preference_data import (
    read_kto_file,
    read_preference_file,
    sample_rows,
    tokenize_kto_rows,
    tokenize_preference_rows,
)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
# sft+dpo: each stage trains in its own folder under output_dir
STAGE_DIRS = {"sft": "stage-sft", "dpo": "stage-dpo"}
# What TRL logs for a preference stage (train; "eval_" + key at evaluations), reported first/last and as a curve.
PREFERENCE_KEYS = {
    "dpo": ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
    "kto": ("rewards/chosen", "rewards/rejected", "rewards/margins", "kl", "logps/chosen", "logps/rejected"),
}

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


def reward_markdown(curve: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    cols = [k for k in keys if any(k in r for r in curve)] + [f"eval_{k}" for k in keys if any(f"eval_{k}" in r for r in curve)]
    lines = ["| step | " + " | ".join(cols) + " |", "|---:|" + "---:|" * len(cols)]
    lines += [f"| {r['step']} | " + " | ".join(f"{r[c]:.4f}" if c in r else "" for c in cols) + " |" for r in curve]
    return "\n".join(lines)


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


def load_tokenizer(cfg: TrainConfig):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.base_model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the base model's tokenizer from {cfg.base_model!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def read_stage_rows(cfg: TrainConfig, stage: str) -> tuple[list[dict], list[dict]]:
    """The validated (train, eval) rows of a stage's files; ``DataError`` naming file and line."""
    if stage == "sft":
        return read_jsonl(cfg.train_file), read_jsonl(cfg.eval_file)
    if stage == "dpo":
        return read_preference_file(cfg.preference_train_file), read_preference_file(cfg.preference_eval_file)
    return read_kto_file(cfg.kto_train_file), read_kto_file(cfg.kto_eval_file)


def stage_data(
    cfg: TrainConfig, stage: str, tokenizer, rows: tuple[list[dict], list[dict]]
) -> tuple[list[dict], list[dict], list[dict]]:
    """(train rows, eval rows, sample prompts) of a stage, tokenized (reply-only, think block in the prompt)."""
    train_rows, eval_rows = rows
    if stage == "sft":
        train = tokenize_rows(tokenizer, train_rows, cfg.max_seq_len, "train")
        evals = tokenize_rows(tokenizer, eval_rows, cfg.max_seq_len, "eval")
        return train, evals, sample_prompts(eval_rows, cfg.sample_generations)
    if stage == "dpo":
        train = tokenize_preference_rows(tokenizer, train_rows, cfg.max_seq_len, cfg.preference_train_file)
        evals = tokenize_preference_rows(tokenizer, eval_rows, cfg.max_seq_len, cfg.preference_eval_file)
        return train, evals, sample_prompts(sample_rows(eval_rows, "dpo"), cfg.sample_generations)
    # KTOTrainer samples in file order (its KL term pairs each row with a neighbour of the same
    # batch), so desirable and undesirable rows are mixed here, seeded: the same order on a rerun.
    train_rows = list(train_rows)
    random.Random(cfg.seed).shuffle(train_rows)
    train = tokenize_kto_rows(tokenizer, train_rows, cfg.max_seq_len, cfg.kto_train_file, both_labels=True)
    evals = tokenize_kto_rows(tokenizer, eval_rows, cfg.max_seq_len, cfg.kto_eval_file)
    return train, evals, sample_prompts(sample_rows(eval_rows, "kto"), cfg.sample_generations)


def _pretokenized_trainers():
    """DPO / KTO trainers that take our pre-tokenized rows as they are.

    TRL 1.16 re-tokenizes preference data from ``prompt``/``chosen``/``rejected`` text in
    ``_prepare_dataset`` (no skip for tokenized rows, unlike SFTTrainer); here rows that already
    carry ``prompt_ids`` skip that step. KTO's KL completions (each row's prompt with the previous
    row's completion, within a train batch) are still added exactly as TRL does.
    """
    from trl import DPOTrainer, KTOTrainer

    class PretokenizedDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" in dataset.column_names:
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    class PretokenizedKTOTrainer(KTOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" not in dataset.column_names:
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            if self.calculate_KL:

                def add_kl_completion_ids(examples):
                    examples["KL_completion_ids"] = [examples["completion_ids"][-1]] + examples["completion_ids"][:-1]
                    return examples

                dataset = dataset.map(add_kl_completion_ids, batched=True, batch_size=args.per_device_train_batch_size)
            return dataset

    return PretokenizedDPOTrainer, PretokenizedKTOTrainer


def stage_args(cfg: TrainConfig, stage: str, out: Path, device: str, bf16_ok: bool, gc: bool):
    """The TRL config of a stage: the shared optimisation / eval / checkpoint settings plus the
    stage's own (SFT: top-level learning rate and epochs; DPO / KTO: ``cfg.dpo`` / ``cfg.kto``)."""
    from trl import DPOConfig, KTOConfig, SFTConfig

    common: dict[str, Any] = dict(
        output_dir=str(out),
        run_name=cfg.run_name or None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        max_steps=cfg.max_steps,
        warmup_steps=float(cfg.warmup_ratio),  # a float in [0, 1) is a ratio of total steps (transformers 5)
        lr_scheduler_type=cfg.lr_scheduler,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        weight_decay=cfg.weight_decay,
        optim="adamw_torch",
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
    if stage == "sft":
        return SFTConfig(
            **common,
            num_train_epochs=cfg.epochs,
            learning_rate=cfg.learning_rate,
            # rows are already cut to max_seq_len (data.tokenize_rows); TRL refuses max_length with padding-free alone
            max_length=None if (cfg.padding_free and not cfg.packing) else cfg.max_seq_len,
            packing=cfg.packing,
            padding_free=cfg.padding_free,
        )
    if stage == "dpo":
        return DPOConfig(
            **common,
            num_train_epochs=cfg.dpo.epochs,
            learning_rate=cfg.dpo.learning_rate,
            beta=cfg.dpo.beta,
            loss_type=[cfg.dpo.loss_type],
            max_length=cfg.max_seq_len,  # prompt + reply, keep the start (rows whose prompt fills it are dropped)
        )
    return KTOConfig(
        **common,
        num_train_epochs=cfg.kto.epochs,
        learning_rate=cfg.kto.learning_rate,
        beta=cfg.kto.beta,
        desirable_weight=cfg.kto.desirable_weight,
        undesirable_weight=cfg.kto.undesirable_weight,
        max_length=cfg.max_seq_len,
    )


def run_stage(
    cfg: TrainConfig,
    stage: str,
    out: Path,
    adapter_dir: Path,
    log: Log = print,
    init_adapter: Path | None = None,
) -> dict[str, Any]:
    """Train one stage (``sft``, ``dpo`` or ``kto``) in ``out``, save its adapter to ``adapter_dir``,
    write ``out/result.json``; returns the result dict.

    Without ``init_adapter`` a fresh LoRA adapter is trained on the base model (for DPO / KTO the
    reference model is the base: TRL disables the adapter for the reference pass). With it (the
    DPO stage of ``sft+dpo``) that adapter is loaded trainable and trained further; TRL then
    copies it into a frozen ``ref`` adapter at the start, so the reference model is the
    adapter's model (base + SFT adapter), not the bare base.
    """
    import datasets
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import EarlyStoppingCallback, PrinterCallback, set_seed
    from trl import SFTTrainer

    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    device = resolve_device(cfg)
    if device == "cpu" and cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    log(
        f"stage {stage}: device={device} base_model={cfg.base_model} quantization={cfg.quantization} "
        f"packing={cfg.packing}" + (f" init_adapter={init_adapter}" if init_adapter else "")
    )

    rows = read_stage_rows(cfg, stage)  # bad data fails before any model is loaded
    tokenizer = load_tokenizer(cfg)
    train_rows, eval_rows, samples = stage_data(cfg, stage, tokenizer, rows)
    train_ds, eval_ds = datasets.Dataset.from_list(train_rows), datasets.Dataset.from_list(eval_rows)
    log(f"train rows={len(train_ds)} eval rows={len(eval_ds)}")

    model, bf16_ok = load_model(cfg, device)
    n_4bit = sum(type(m).__name__ == "Linear4bit" for m in model.modules())
    log(f"model loaded: {type(model).__name__}, 4-bit linear layers: {n_4bit}")
    gc = cfg.gradient_checkpointing == "true" or (cfg.gradient_checkpointing == "auto" and device == "cuda")
    peft_config = None
    if init_adapter is not None:
        model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
    else:
        peft_config = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=list(cfg.lora.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
    args = stage_args(cfg, stage, out, device, bf16_ok, gc)
    best_ckpts, throughput, sample_cb, log_cb = _callbacks(cfg, tokenizer, samples, log)
    trainer_cls = {"sft": SFTTrainer, **dict(zip(("dpo", "kto"), _pretokenized_trainers()))}[stage]
    trainer = trainer_cls(
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

    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    # the trained adapter only (not TRL's frozen "ref" copy) + the tokenizer, so the folder is
    # self-contained; no training_args.bin: the hash covers only what defines the adapter
    trainer.model.save_pretrained(str(adapter_dir), selected_adapters=["default"])
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
    # a preference loss is no language-model loss: no perplexity for DPO / KTO
    ppl = perplexity if stage == "sft" else (lambda _loss: None)
    result = {
        "method": stage,
        "adapter_path": str(adapter_dir.resolve()),
        "adapter_sha256": dir_sha256(adapter_dir),
        "base_model": cfg.base_model,
        "init_adapter": str(init_adapter.resolve()) if init_adapter else None,
        "curated_set_hash": cfg.curated_set_hash,
        "global_step": int(state.global_step),
        "max_steps": int(state.max_steps),
        "best_step": best_step,
        "best_checkpoint": state.best_model_checkpoint,
        "early_stopped": bool(stopped_early),
        "resumed_from_step": resume_from[0] if resume_from else None,
        "final_train_loss": final_train_loss,
        "final_eval_loss": final_eval_loss,
        "train_perplexity": ppl(final_train_loss),
        "eval_perplexity": ppl(final_eval_loss),
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
    if stage in PREFERENCE_KEYS:
        rewards = reward_curve(history, PREFERENCE_KEYS[stage])
        result["reward_curve"] = rewards
        result["preference_metrics"] = reward_summary(rewards, PREFERENCE_KEYS[stage])
        result["final_eval_metrics"] = {
            k[len("eval_") :]: float(v) for k, v in final_eval.items() if k.startswith("eval_") and isinstance(v, (int, float))
        }
    (out / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    pref = result.get("preference_metrics", {}).get("rewards/margins")
    log(
        f"done: step {result['global_step']} train_loss={final_train_loss} eval_loss={final_eval_loss:.4f} "
        f"gap={gap} alarm={alarm} adapter={result['adapter_path']} sha256={result['adapter_sha256'][:12]}"
        + (f" rewards/margins {pref['first']:.4f} -> {pref['last']:.4f}" if pref else "")
        + f" (stage {stage})"
    )
    return result


def completed_stage(out: Path) -> dict[str, Any] | None:
    """The result of a stage that finished in ``out`` (its result.json, with its adapter intact), else None."""
    path = out / "result.json"
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
        adapter = Path(result["adapter_path"])
        if adapter.is_dir() and dir_sha256(adapter) == result["adapter_sha256"]:
            return result
    except (ValueError, KeyError, OSError):
        pass
    return None


def run_training(cfg: TrainConfig, log: Log = print) -> dict[str, Any]:
    """Train (every stage of ``cfg.method``), save the adapter, write ``result.json``; returns the result dict."""
    if cfg.method != "sft+dpo":
        return run_stage(cfg, cfg.method, Path(cfg.output_dir), Path(cfg.adapter_dir), log)
    # sft+dpo: stage-sft/ then stage-dpo/ under output_dir, each with its own checkpoints (a rerun
    # resumes the stage it was killed in; a finished SFT stage is not trained again).
    t_start = time.perf_counter()
    read_stage_rows(cfg, "dpo")  # bad preference data fails now, not after the SFT stage
    root = Path(cfg.output_dir)
    sft_out, dpo_out = root / STAGE_DIRS["sft"], root / STAGE_DIRS["dpo"]
    sft = completed_stage(sft_out)
    if sft is not None:
        log(f"stage sft: already complete in {sft_out} (step {sft['global_step']}), continuing with dpo")
    else:
        sft = run_stage(cfg, "sft", sft_out, sft_out / "adapter", log)
    dpo = run_stage(cfg, "dpo", dpo_out, Path(cfg.adapter_dir), log, init_adapter=Path(sft["adapter_path"]))
    result = {
        **dpo,
        "method": "sft+dpo",
        "stages": {name: {k: v for k, v in r.items() if k != "config"} for name, r in (("sft", sft), ("dpo", dpo))},
        "wall_s": time.perf_counter() - t_start,
        "config": cfg.to_dict(),
    }
    (root / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    log(f"done: sft+dpo, adapter={result['adapter_path']} sha256={result['adapter_sha256'][:12]}")
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
    md["method"] = typed("text", result.get("method", "sft"))
    stage = result.get("method", "sft").split("+")[-1]
    if "preference_metrics" in result:
        # e.g. rewards_margins_first / rewards_margins_last / eval_rewards_accuracies_last
        for key, summary in sorted(result["preference_metrics"].items()):
            name = key.replace("/", "_")
            md[f"{name}_first"] = num(summary["first"])
            md[f"{name}_last"] = num(summary["last"])
        md["reward_curve"] = typed("json", result["reward_curve"])
        md["reward_curve_table"] = typed("md", reward_markdown(result["reward_curve"], PREFERENCE_KEYS[stage]))
        md["final_eval_metrics"] = typed("json", result.get("final_eval_metrics", {}))
    if "stages" in result:
        summary_keys = (
            "global_step", "best_step", "resumed_from_step", "final_train_loss", "final_eval_loss", "train_eval_gap",
            "gap_alarm", "train_tokens_per_s", "train_steps_per_s", "adapter_path", "adapter_sha256",
            "preference_metrics", "eval_perplexity",
        )
        md["stages"] = typed(
            "json", {name: {k: r.get(k) for k in summary_keys if k in r} for name, r in result["stages"].items()}
        )
        for name, r in result["stages"].items():
            md[f"{name}_final_train_loss"] = num(r["final_train_loss"])
            md[f"{name}_final_eval_loss"] = num(r["final_eval_loss"])
            md[f"{name}_global_step"] = typed("int", r["global_step"])
            md[f"{name}_train_tokens_per_s"] = num(r["train_tokens_per_s"])
            md[f"{name}_adapter_sha256"] = typed("text", r["adapter_sha256"])
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
