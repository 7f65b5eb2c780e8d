"""Training stages: the model, tokenizer and data of a stage, its TRL trainer, and the runs of
``cfg.method`` (SFT, DPO, KTO, or SFT then DPO)."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

from replyassets.training.checkpoints import (
    Log,
    checkpoint_step,
    complete_checkpoints,
    dir_sha256,
    resume_point,
)
from replyassets.training.config import ConfigError, TrainConfig
from replyassets.training.curves import (
    PREFERENCE_KEYS,
    final_losses,
    loss_curve,
    peak_memory,
    perplexity,
    preference_result,
)
from replyassets.training.data import read_jsonl, sample_prompts, tokenize_rows
from replyassets.training.plots import plot_curve
from replyassets.training.preference_data import (
    read_kto_file,
    read_preference_file,
    sample_rows,
    tokenize_kto_rows,
    tokenize_preference_rows,
)

# sft+dpo: each stage trains in its own folder under output_dir
STAGE_DIRS = {"sft": "stage-sft", "dpo": "stage-dpo"}


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


def _start_stage(cfg: TrainConfig, stage: str, init_adapter: Path | None, log: Log) -> str:
    """Seed, pick the device (and the CPU threads), log the stage's start; returns the device."""
    import torch
    from transformers import set_seed

    set_seed(cfg.seed)
    device = resolve_device(cfg)
    if device == "cpu" and cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    log(
        f"stage {stage}: device={device} base_model={cfg.base_model} quantization={cfg.quantization} "
        f"packing={cfg.packing}" + (f" init_adapter={init_adapter}" if init_adapter else "")
    )
    return device


def _adapter_model(cfg: TrainConfig, model, init_adapter: Path | None):
    """(model, peft_config): ``init_adapter`` loaded trainable on the model, or a fresh LoRA config."""
    from peft import LoraConfig, PeftModel

    if init_adapter is not None:
        return PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True), None
    return model, LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def _trainer(cfg: TrainConfig, stage: str, model, peft_config, args, tokenizer, datasets_, callbacks: list):
    """The stage's TRL trainer (SFT, or DPO / KTO on pre-tokenized rows) with early stopping."""
    from transformers import EarlyStoppingCallback, PrinterCallback
    from trl import SFTTrainer

    trainer_cls = {"sft": SFTTrainer, **dict(zip(("dpo", "kto"), _pretokenized_trainers()))}[stage]
    early = EarlyStoppingCallback(
        early_stopping_patience=cfg.early_stopping_patience,
        early_stopping_threshold=cfg.early_stopping_threshold,
    )
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=datasets_[0],
        eval_dataset=datasets_[1],
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[early, *callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # LogForward already prints every log
    return trainer


def _save_adapter(trainer, tokenizer, adapter_dir: Path) -> None:
    """The trained adapter only (not TRL's frozen "ref" copy) + the tokenizer, so the folder is
    self-contained; no training_args.bin: the hash covers only what defines the adapter."""
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    trainer.model.save_pretrained(str(adapter_dir), selected_adapters=["default"])
    tokenizer.save_pretrained(str(adapter_dir))


def _stopped_early(cfg: TrainConfig, state) -> bool:
    return cfg.max_steps > 0 and state.global_step < cfg.max_steps or (
        cfg.max_steps <= 0 and state.global_step < state.max_steps
    )


def stage_result(
    cfg: TrainConfig, stage: str, out: Path, adapter_dir: Path, init_adapter: Path | None, run: dict[str, Any]
) -> dict[str, Any]:
    """The result dict of a finished stage. ``run`` carries what the stage measured: ``state``,
    ``history``, ``final_eval``, ``train_out``, ``callbacks``, ``resume_from``, ``t_start``,
    ``device``, ``n_4bit``, ``train_rows``, ``eval_rows``."""
    state, history, final_eval = run["state"], run["history"], run["final_eval"]
    losses = final_losses(history, final_eval, cfg.gap_alarm)
    curve = loss_curve(history)
    mem, mem_kind = peak_memory()
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
        "best_step": checkpoint_step(state.best_model_checkpoint),
        "best_checkpoint": state.best_model_checkpoint,
        "early_stopped": bool(_stopped_early(cfg, state)),
        "resumed_from_step": run["resume_from"][0] if run["resume_from"] else None,
        **losses,
        "train_perplexity": ppl(losses["final_train_loss"]),
        "eval_perplexity": ppl(losses["final_eval_loss"]),
        **run["callbacks"].throughput.rates(state),
        "train_runtime_s": float(run["train_out"].metrics.get("train_runtime", 0.0)),
        "wall_s": time.perf_counter() - run["t_start"],
        "peak_memory_mb": mem,
        "peak_memory_kind": mem_kind,
        "device": run["device"],
        "quantized_4bit_layers": run["n_4bit"],
        "train_rows": run["train_rows"],
        "eval_rows": run["eval_rows"],
        "loss_curve": curve,
        "loss_curve_plot": plot_curve(curve, out / "loss_curve.png"),
        "sample_generations": run["callbacks"].samples.history,
        "checkpoints": [p.name for _, p in complete_checkpoints(out)],
        "config": cfg.to_dict(),
    }
    if stage in PREFERENCE_KEYS:
        result.update(preference_result(stage, history, final_eval))
    return result


def _g(v: Any) -> str:
    """A figure of the log line to 4 significant digits (result.json keeps it exact)."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _log_done(result: dict[str, Any], stage: str, log: Log) -> None:
    pref = result.get("preference_metrics", {}).get("rewards/margins")
    log(
        f"done: step {result['global_step']} train_loss={_g(result['final_train_loss'])} "
        f"eval_loss={_g(result['final_eval_loss'])} gap={_g(result['train_eval_gap'])} alarm={result['gap_alarm']} "
        f"adapter={result['adapter_path']} sha256={result['adapter_sha256'][:12]}"
        + (f" rewards/margins {pref['first']:.4f} -> {pref['last']:.4f}" if pref else "")
        + f" (stage {stage})"
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

    from replyassets.training.callbacks import stage_callbacks

    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    device = _start_stage(cfg, stage, init_adapter, log)
    rows = read_stage_rows(cfg, stage)  # bad data fails before any model is loaded
    tokenizer = load_tokenizer(cfg)
    train_rows, eval_rows, samples = stage_data(cfg, stage, tokenizer, rows)
    train_ds, eval_ds = datasets.Dataset.from_list(train_rows), datasets.Dataset.from_list(eval_rows)
    log(f"train rows={len(train_ds)} eval rows={len(eval_ds)}")

    model, bf16_ok = load_model(cfg, device)
    n_4bit = sum(type(m).__name__ == "Linear4bit" for m in model.modules())
    log(f"model loaded: {type(model).__name__}, 4-bit linear layers: {n_4bit}")
    gc = cfg.gradient_checkpointing == "true" or (cfg.gradient_checkpointing == "auto" and device == "cuda")
    model, peft_config = _adapter_model(cfg, model, init_adapter)
    args = stage_args(cfg, stage, out, device, bf16_ok, gc)
    callbacks = stage_callbacks(cfg.save_total_limit, tokenizer, samples, cfg.sample_max_new_tokens, log)
    trainer = _trainer(cfg, stage, model, peft_config, args, tokenizer, (train_ds, eval_ds), list(callbacks))

    resume_from = resume_point(out, cfg.resume, log)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_out = trainer.train(resume_from_checkpoint=str(resume_from[1]) if resume_from else None)
    _save_adapter(trainer, tokenizer, adapter_dir)
    history = list(trainer.state.log_history)  # before the final evaluation adds its entry
    callbacks.samples.enabled = False
    final_eval = trainer.evaluate()  # the best model (loaded at the end)
    run = {
        "state": trainer.state, "history": history, "final_eval": final_eval, "train_out": train_out,
        "callbacks": callbacks, "resume_from": resume_from, "t_start": t_start, "device": device,
        "n_4bit": n_4bit, "train_rows": len(train_ds), "eval_rows": len(eval_ds),
    }
    result = stage_result(cfg, stage, out, adapter_dir, init_adapter, run)
    (out / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    _log_done(result, stage, log)
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


def skip_unused_bitsandbytes(quantization: str) -> bool:
    """Keep peft and transformers from importing bitsandbytes when nothing is quantized.

    Both import it whenever it is installed (about 1.5-3.5 s of CPU in every training process,
    most of it CUDA probing on a machine without a GPU), yet only ``quantization: nf4`` uses it.
    A ``None`` entry in ``sys.modules`` is Python's documented way to make an import fail: the
    libraries then see the package as unavailable for the rest of the process, so only the
    training program run as a program calls this (``python -m replyassets.training.train``),
    never a process that imports it and may train with nf4 later. Returns whether it was skipped."""
    import sys

    if quantization == "nf4" or "bitsandbytes" in sys.modules:
        return False
    sys.modules["bitsandbytes"] = None  # type: ignore[assignment]
    return True


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
