"""``base_model`` and ``lora_adapter``: training handed to a Pipes launcher, never run in Dagster."""

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from filelock import FileLock

from replyassets.core.artifact import Artifact, json_safe
from replyassets.defs.artifacts import ARTIFACT_IO_MANAGER
from replyassets.defs.asset_attrs import OWNERS, derived_code_version
from replyassets.defs.curate import blocking_problems, curated_export
from replyassets.defs.launchers import (
    TrainingLauncher,
    train_eval_gap_check_spec,
    training_span,
)
from replyassets.defs.metadata import (
    dotted,
    json_md,
    mapping_table,
    ordered,
    records_table,
    shown_hashes,
    tidy_metadata,
    without_json,
)
from replyassets.defs.partitions import EXPERIMENT_PARTITIONS
from replyassets.defs.resources import EmbedderResource
from replyassets.defs.settings_access import settings

# base_model pretrains on the sample's tweets, collected with the collection settings (sample_texts).
BASE_MODEL_CODE_VERSION = derived_code_version(
    "replyassets.defs.train", "replyassets.training.tiny_model", settings_paths=("training.base_model", "collection", "validation.min_chars", "validation.max_chars")
)
# The training program the launcher starts is part of what lora_adapter runs.
TRAIN_CODE_VERSION = derived_code_version(
    "replyassets.defs.train",
    "replyassets.defs.launchers",
    "replyassets.defs.experiments",
    "replyassets.training.train",
    "replyassets.training.merge",
    # the guard re-runs curated_set's and preference_pairs' blocking checks on its inputs
    settings_paths=("training", "curation", "preference.min_train_pairs"),
)
LOCAL_TINY = "local-tiny"
# Training methods that learn from preference_pairs (and need its blocking checks passed).
PREFERENCE_METHODS = ("dpo", "kto", "sft+dpo")


def sample_texts() -> list[str]:
    """Every distinct tweet text of the bundled sample, sorted: the local base model's pretraining
    corpus (with the shipped general text). Never the replies: writing those is what the adapter
    must learn, so the base model must not have seen them."""
    from replyassets.core.collect import collect_partition
    from replyassets.settings import load_queries
    from replyassets.sources.replay import ReplaySource

    s = settings()
    source = ReplaySource(s.sample_dir)
    texts: list[str] = []
    for spec in load_queries(s.queries_path):
        result = collect_partition(spec, source, s.collection, lengths=(s.validation.min_chars, s.validation.max_chars))
        texts += result.pairs["tweet"].tolist()
    return sorted(set(texts))


@dg.asset(
    description=(
        "The base model the adapter is trained on. In the local profile: a tiny Qwen3-architecture "
        "model with the Qwen3 chat template, briefly pretrained (a fixed number of seeded steps, "
        "about 15-30 s on 2 cores) on the shipped general English and the sample's tweets, never "
        "their replies, so its replies are words and recipes differ measurably; built "
        "deterministically under `data/models/`. In production: the configured hub id "
        "(e.g. Qwen/Qwen3-8B), recorded as is."
    ),
    deps=["query_inputs"],
    code_version=BASE_MODEL_CODE_VERSION,
    owners=OWNERS,
    kinds={"pytorch"},
    group_name="train",
    io_manager_key=ARTIFACT_IO_MANAGER,
)
def base_model(context: dg.AssetExecutionContext) -> dg.Output[Artifact]:
    s = settings()
    if s.training.base_model != LOCAL_TINY:
        digest = hashlib.sha256(s.training.base_model.encode()).hexdigest()
        return dg.Output(
            Artifact(path=s.training.base_model, sha256=digest, kind="hub"),
            metadata={"model_path": s.training.base_model, "kind": "hub"},
            data_version=dg.DataVersion(digest),
        )
    from replyassets.core.generation import load_general_texts
    from replyassets.training.tiny_model import (
        PRETRAIN_STEPS,
        build_tiny_model,
        tiny_model_hash,
        tiny_model_info,
        tiny_model_key,
    )

    # Pretrained briefly (a fixed number of seeded steps, ~15-30 s on 2 cores) on the shipped
    # general English and the sample's tweets, never the replies: random weights write byte soup
    # and every adapter trained on them too, so comparing recipes would rank noise. The tokenizer
    # is trained on the same texts: a token that only the replies contain would keep a random
    # embedding (LoRA does not train embeddings) and, measured, such tokens crowd the base
    # model's output; reply words that the corpus lacks are spelled from pieces it has seen.
    texts = load_general_texts() + sample_texts()
    key = tiny_model_key(texts, texts, seed=0, pretrain_steps=PRETRAIN_STEPS)
    out = s.models_dir / f"tiny-qwen3-{key[:12]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    # Content-addressed and possibly shared (REPLYASSETS_MODELS_DIR): one process builds it,
    # the others wait for it and reuse it.
    with FileLock(f"{out}.lock"):
        built_now = not (out / "tiny_model.json").exists()
        if built_now:
            build_tiny_model(out, texts, seed=0, pretrain_texts=texts, pretrain_steps=PRETRAIN_STEPS)
    info = tiny_model_info(out)
    pretraining = info.get("pretraining") or {}
    seconds = float(info["build_time"].get("pretrain_seconds", float("nan")))
    context.log.info(
        f"{'built' if built_now else 'reused'} the tiny Qwen3 model in {out}: {pretraining.get('steps')} "
        f"pretraining steps, final LM loss {pretraining.get('final_loss')}, {seconds:.1f} s"
    )
    digest = tiny_model_hash(out)
    return dg.Output(
        Artifact(path=str(out), sha256=digest, kind=LOCAL_TINY),
        metadata={
            "model_path": dg.MetadataValue.path(str(out)),
            "kind": LOCAL_TINY,
            "model_sha256": digest,
            "pretrain_steps": int(pretraining.get("steps", 0)),
            "pretrain_tokens_seen": int(pretraining.get("tokens_seen", 0)),
            "pretrain_final_loss": float(pretraining.get("final_loss", float("nan"))),
            "pretrain_first_loss": float(pretraining.get("first_loss", float("nan"))),
            "pretrain_seconds": round(seconds, 1),
            "pretrain_corpus_tokens": int(pretraining.get("corpus_tokens", 0)),
            "pretrain_texts": len(texts),
            "tokenizer_corpus_texts": len(texts),
            "vocab_size": int(info["vocab_size"]),
            "built_in_this_run": built_now,
        },
        data_version=dg.DataVersion(digest),
    )


class LoraAdapterConfig(dg.Config):
    launcher: str | None = None
    """Override the profile's launcher: local | kubernetes | docker."""
    max_steps: int | None = None
    epochs: float | None = None
    quantization: str | None = None
    """none | nf4 (QLoRA)."""
    merge: bool = False
    """Also merge the adapter into the base model (saved beside the adapter)."""


COMPLETE_MARKER = "COMPLETE"


def unused_output_dir(base: Path) -> Path:
    """``base`` unless a finished training already lives there; then ``base-2``, ``base-3``..."""
    candidate, n = base, 1
    while (candidate / COMPLETE_MARKER).exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def training_config(curated: Mapping[str, Any], base: Artifact, overrides: LoraAdapterConfig,
                    experiment: str = "default", preference: Mapping[str, Any] | None = None) -> dict:
    """The training program's config for one experiment: the profile's training settings with
    the experiment's overrides (config/experiments.yaml), then the run's config overrides.
    ``curated``: the curated set's export (``defs/curate.curated_export``); ``base``: the base
    model; ``preference``: the preference files and their hash (preference methods only)."""
    from replyassets.defs.experiments import experiment as find_experiment

    s = settings()
    cfg = find_experiment(experiment).training_settings(s.training).model_dump(mode="json")
    for key in ("launcher", "local_max_concurrent", "hourly_cost_usd"):
        cfg.pop(key, None)
    for key in ("max_steps", "epochs", "quantization"):
        value = getattr(overrides, key)
        if value is not None:
            cfg[key] = value
    cfg["lora"] = {**cfg["lora"], "target_modules": list(cfg["lora"]["target_modules"])}
    cfg.update(
        base_model=base.path,
        train_file=str(curated["files"]["train.jsonl"]["path"]),
        eval_file=str(curated["files"]["eval.jsonl"]["path"]),
        curated_set_hash=str(curated["content_hash"]),
    )
    method = str(cfg.get("method", "sft"))
    if method in PREFERENCE_METHODS:
        # Preference methods train on preference_pairs' exported files (train/eval splits of
        # the same tweet assignment as curated_set); the pairs' hash keys the folder too.
        if preference is None:
            raise dg.Failure(f"{experiment} trains with {method}: it needs preference_pairs' files")
        files = preference["files"]
        if method == "kto":
            cfg.update(kto_train_file=str(files["kto_train.jsonl"]["path"]),
                       kto_eval_file=str(files["kto_eval.jsonl"]["path"]))
        else:
            cfg.update(preference_train_file=str(files["preference_train.jsonl"]["path"]),
                       preference_eval_file=str(files["preference_eval.jsonl"]["path"]))
        cfg["preference_pairs_hash"] = str(preference["content_hash"])
    # Same data, base model and config -> same folder, so a rerun after a crash resumes there;
    # a folder whose training completed (COMPLETE marker) is never written again: a retrain
    # of the same recipe gets the next free folder (-2, -3, ...).
    # Each experiment has its own folder tree: two experiments never share a folder.
    key = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    cfg.pop("preference_pairs_hash", None)  # provenance for the folder key, not a training setting
    cfg["output_dir"] = str(
        unused_output_dir(s.data_dir / "adapters" / experiment / f"{str(curated['content_hash'])[:12]}-{key}")
    )
    cfg["run_name"] = f"{experiment}-{key}"
    return cfg


@dg.asset(
    description=(
        "A LoRA (or QLoRA) adapter per experiment, trained by the experiment's method: SFT on "
        "curated_set's train split, DPO or KTO on preference_pairs' train split, or SFT then DPO "
        "from the SFT adapter; eval-split early stopping. Training runs outside Dagster through a "
        "Pipes launcher (local subprocess, Kubernetes GPU pod, or Docker) and reports losses, "
        "rewards, samples, the adapter path and hash back. Refuses to run unless every blocking "
        "check of the latest curated_set (and, for preference methods, preference_pairs) passed."
    ),
    # preference_pairs/preference_kto feed only the experiments whose method is dpo, kto or
    # sft+dpo; a dependency is per asset, not per partition, so every experiment takes them.
    deps=["experiment_specs"],
    partitions_def=EXPERIMENT_PARTITIONS,
    code_version=TRAIN_CODE_VERSION,
    owners=OWNERS,
    kinds={"pytorch"},
    group_name="train",
    io_manager_key=ARTIFACT_IO_MANAGER,
    check_specs=[train_eval_gap_check_spec("lora_adapter", EXPERIMENT_PARTITIONS)],  # per experiment
)
def lora_adapter(context: dg.AssetExecutionContext, config: LoraAdapterConfig, launcher: TrainingLauncher,
                 embedder: EmbedderResource, curated_set: pd.DataFrame, base_model: Artifact,
                 preference_pairs: pd.DataFrame, preference_kto: pd.DataFrame):
    # The guard asks the set it trains on: the curated set's blocking checks, run again on it.
    if problems := blocking_problems(curated_set, embedder):
        raise dg.Failure(
            description="Refusing to train: the latest curated_set did not pass its blocking checks.",
            metadata={"blocking_check_problems": json_md(problems)},
        )
    name = context.partition_key
    from replyassets.core import db
    from replyassets.defs.experiments import experiment as find_experiment
    from replyassets.defs.settings_access import storage

    # the DuckLake snapshot the curated set was read at (null on the DuckDB file backend)
    snapshot = db.current_snapshot(storage())
    method = str(find_experiment(name).training_settings(settings().training).method)
    preference = None
    if method in PREFERENCE_METHODS:
        from replyassets.defs.preference import (
            export_preferences,
            preference_blocking_problems,
        )

        if problems := preference_blocking_problems(preference_pairs, curated_set,
                                                    settings().preference.min_train_pairs):
            raise dg.Failure(
                description=(f"Refusing to train {name} ({method}): the latest preference_pairs did not "
                             "pass its blocking checks."),
                metadata={"blocking_check_problems": json_md(problems)},
            )
        pairs_hash, _, files = export_preferences(preference_pairs, preference_kto)
        preference = {"content_hash": pairs_hash, "files": files}
    cfg = training_config(curated_export(curated_set), base_model, config, name, preference)
    Path(cfg["output_dir"]).mkdir(parents=True, exist_ok=True)
    context.log.info(f"experiment {name}: training config: {json.dumps(cfg, sort_keys=True)}")
    launched = time.time()
    result = launcher.launch(context, cfg, kind=config.launcher)
    started, ended = training_span(result.metadata, launched, time.time())  # not the wait for a slot
    extra: dict = {}
    if config.merge:
        from replyassets.training.merge import merge_adapter

        adapter_dir = str((result.metadata or {}).get("adapter_path", cfg["adapter_dir"] if "adapter_dir" in cfg else ""))
        adapter_dir = getattr(adapter_dir, "value", adapter_dir)
        merged = merge_adapter(adapter_dir, Path(cfg["output_dir"]) / "merged", base_model=cfg["base_model"])
        extra["merged_model_path"] = dg.MetadataValue.path(str(merged))
    # From here on the folder belongs to this materialization: nothing writes into it again.
    (Path(cfg["output_dir"]) / COMPLETE_MARKER).write_text(context.run.run_id + "\n")
    reported = {**(result.metadata or {}), **extra,
                "launcher": config.launcher or launcher.kind, "curated_set_snapshot": snapshot,
                **experiment_metadata(name, started, ended)}
    metadata = adapter_metadata(reported)  # as the page shows it (tables, rounded)
    yield dg.Output(
        adapter_artifact(reported, base_model),  # as the program reported it (stages, losses as values)
        metadata=metadata,
        data_version=result.data_version,
    )
    for check in result.check_results or []:
        yield _tidy_check(check, name)


def adapter_artifact(metadata: Mapping[str, Any], base: Artifact) -> Artifact:
    """The adapter as its consumers receive it: folder, content hash, and the figures the
    decision and the leaderboard read (recipe, losses by objective, cost, the curated set)."""
    values = {k: _value(v) for k, v in metadata.items()
              if k not in ("loss", "loss_curve", "loss_curve_table", "sample_generations_table", "training_config")}
    return Artifact(path=str(values.get("adapter_path") or ""), sha256=str(values.get("adapter_sha256") or ""),
                    kind="lora_adapter",
                    attrs={**json_safe(values), "base_model": base.path, "base_model_sha256": base.sha256})


def experiment_metadata(name: str, started: float, ended: float) -> dict:
    """The recipe this adapter was trained with, when, and what it cost."""
    from replyassets.defs.experiments import experiment as find_experiment

    exp = find_experiment(name)
    seconds = max(ended - started, 0.0)
    return {
        "experiment": name,
        "recipe": ", ".join(f"{k}={v}" for k, v in exp.overrides().items()) or "the profile's settings",
        "train_started_at": dg.MetadataValue.timestamp(started),
        "train_ended_at": dg.MetadataValue.timestamp(ended),
        "train_wall_seconds": round(seconds, 1),
        "cost_usd": round(seconds / 3600 * find_experiment(name).training_settings(settings().training).hourly_cost_usd, 4),
    }


# --------------------------------------------------------------------------- metadata (presentation)

# The order a person reads the asset page in (Dagster shows metadata in insertion order).
ADAPTER_METADATA_ORDER = (
    "loss", "loss_curve_plot",
    "experiment", "recipe", "method", "loss_objective",
    "final_eval_loss", "final_train_loss", "train_eval_gap", "gap_alarm", "eval_perplexity", "train_perplexity",
    "sft_eval_loss", "sft_train_loss", "sft_eval_perplexity",
    *(f"{m}_{k}" for m in ("dpo", "kto") for k in ("eval_loss", "train_loss", "train_eval_gap")),
    "samples_note", "sample_generations_table",
    "global_step", "best_step", "early_stopped", "resumed_from_step",
    "adapter_path", "adapter_sha256", "curated_set_hash", "base_model", "merged_model_path",
    "loss_curve_table", "reward_curve", "final_eval_metrics", "stages",
    "train_steps_per_s", "train_tokens_per_s", "train_wall_seconds", "cost_usd", "train_started_at", "train_ended_at",
    "peak_memory_mb", "peak_memory_kind", "device", "launcher",
)
SAMPLES_NOTE = (
    "Replies written during training by the adapter on the base model. In the local profile the "
    "base model is the tiny local model, pretrained for seconds on the sample: expect broken words "
    "and repetition; they show that generation runs, not reply quality (eval_report judges that). "
    "Template tags removed; clipped to {chars} characters (result.json keeps the full text)."
)
# Worker keys that repeat another entry of the page: latest_samples is the last step of
# sample_generations; reward_curve_table is reward_curve as markdown.
DUPLICATE_KEYS = ("latest_samples", "reward_curve_table")
# Settings sections that only one training method reads.
METHOD_SECTIONS = {"dpo": ("dpo", "sft+dpo"), "kto": ("kto",)}


LOSS_SIG_DIGITS = 4


def _value(v: Any) -> Any:
    return getattr(v, "value", v) if isinstance(v, dg.MetadataValue) else v


def loss_history(metadata: Mapping[str, Any]) -> list[dict]:
    """The per-step losses the training program reported (``loss_curve`` rows), else the ones
    in its result.json (``result_json``); ``[]`` when neither is there."""
    rows = _value(metadata.get("loss_curve"))
    if isinstance(rows, list):
        return [dict(r) for r in rows if isinstance(r, Mapping)]
    path = _value(metadata.get("result_json"))
    try:
        return list(json.loads(Path(str(path)).read_text()).get("loss_curve") or []) if path else []
    except (OSError, ValueError, AttributeError):
        return []


def method_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A training config without the settings sections its method never reads (an SFT run's
    ``dpo.*`` / ``kto.*``), flattened to dotted keys."""
    method = str(config.get("method", "sft"))
    return {k: v for k, v in dotted(config).items()
            if not any(k.startswith(f"{section}.") and method not in methods
                       for section, methods in METHOD_SECTIONS.items())}


def sample_rows(history: Any) -> list[dict]:
    """The worker's sample generations as rows (step, eval loss, tweet, reply), replies shown as a
    person reads them (``core.markdown.shown_generation``)."""
    from replyassets.core.markdown import breakable, shown_generation

    if not isinstance(history, list):
        return []
    return [{"step": h.get("step"), "eval_loss": h.get("eval_loss"), "tweet_id": str(smp.get("tweet_id", "")),
             "reply": breakable(shown_generation(smp.get("reply", "")))}
            for h in history if isinstance(h, Mapping) for smp in (h.get("samples") or []) if isinstance(smp, Mapping)]


def adapter_metadata(reported: Mapping[str, Any]) -> dict[str, Any]:
    """``lora_adapter``'s metadata in reading order: the loss curve as a small plot with axes the
    UI shows without a click (the full-size PNG's path beside it), the headline numbers (each
    loss named by its objective: ``core/leaderboard.adapter_loss_metadata``), the sample replies
    (framed: the tiny local model wrote them), the adapter's identity, the per-step tables, then
    the rest; no JSON value (tables instead). Floats are rounded for display to 4 significant
    digits: the tiny local model's losses move in the third decimal (result.json keeps the exact
    figures)."""
    from replyassets.core.leaderboard import adapter_loss_metadata
    from replyassets.core.markdown import GENERATION_CHARS, breakable
    from replyassets.core.plots import loss_inline_md

    md = {k: v for k, v in reported.items() if k not in DUPLICATE_KEYS}
    # each loss named by its objective (no unlabelled DPO loss, no null perplexity beside it)
    labelled, unlabelled = adapter_loss_metadata({k: _value(v) for k, v in md.items()})
    for key in unlabelled:
        md.pop(key)
    md.update(labelled)
    curve = loss_history(md)
    md.pop("loss_curve", None)  # the rows: the plot and loss_curve_table below show them
    # a plot short enough for the UI to show in the metadata table; the full-size PNG is a file
    md["loss"] = dg.MetadataValue.md(loss_inline_md(curve))
    if curve:
        md["loss_curve_table"] = records_table(
            [{k: r.get(k) for k in ("step", "train_loss", "eval_loss", "gap")} for r in curve],
            ["step", "train_loss", "eval_loss", "gap"],
            sig=LOSS_SIG_DIGITS,
        )
    config = _value(md.get("training_config"))
    if isinstance(config, Mapping):  # a table of settings (nested ones dotted), not a JSON blob
        md["training_config"] = mapping_table(  # paths and lists break inside their cell
            {k: breakable(v) if isinstance(v, str) else v for k, v in method_config(config).items()},
            key="setting", sig=LOSS_SIG_DIGITS)
    history = _value(md.pop("sample_generations", None))
    if isinstance(history, list):
        # a typed table, not the worker's markdown or JSON
        md["sample_generations_table"] = records_table(
            sample_rows(history), ["step", "eval_loss", "tweet_id", "reply"], sig=LOSS_SIG_DIGITS)
        md["samples_note"] = SAMPLES_NOTE.format(chars=GENERATION_CHARS)
    stages = _value(md.get("stages"))
    if isinstance(stages, Mapping):  # one row per training stage
        md["stages"] = records_table([{"stage": name, **dict(v)} for name, v in stages.items()
                                      if isinstance(v, Mapping)], sig=LOSS_SIG_DIGITS)
    shown_hashes(md, ("adapter_sha256", "curated_set_hash"))  # the artifact keeps them whole
    return without_json(tidy_metadata(ordered(md, ADAPTER_METADATA_ORDER), sig=LOSS_SIG_DIGITS), sig=LOSS_SIG_DIGITS)


def _tidy_check(check: dg.AssetCheckResult, experiment: str) -> dg.AssetCheckResult:
    """A check the training program reported, its floats rounded and its message naming the
    experiment (the partition it judged)."""
    description = check.description or ""
    return dg.AssetCheckResult(
        passed=check.passed,
        asset_key=check.asset_key,
        check_name=check.check_name,
        metadata=tidy_metadata(check.metadata or {}, sig=LOSS_SIG_DIGITS),
        severity=check.severity,
        description=description if description.startswith(f"{experiment}:") else f"{experiment}: {description}",
    )
