"""The training program's config: one JSON object (a file, or the Pipes extra ``training_config``).

This module is the one definition of the training settings: ``TrainingSpec`` (and the nested
``LoraConfigSpec``, ``DpoConfigSpec``, ``KtoConfigSpec``) holds every training default, and
``replyassets.settings.TrainingSettings`` is built from these dataclasses (same names, same
defaults, the allowed values below as its ``Literal`` types, ``POSITIVE`` / ``AT_LEAST_ONE`` as its
bounds), plus the orchestrator's own keys (``ORCHESTRATOR_KEYS``). Keys of the config = the
settings dumped plus the run's paths. Unknown keys are an error, so a typo never silently trains
with a default. No pydantic/settings import: this runs in the training image.

``method`` picks what is trained (every method trains a LoRA / QLoRA adapter on the base model):

- ``sft``: supervised fine-tuning on ``train_file`` / ``eval_file`` (the reply-only loss);
- ``dpo``: Direct Preference Optimization on ``preference_train_file`` / ``preference_eval_file``
  (rows ``{"prompt": [...], "chosen": [...], "rejected": [...]}``), hyperparameters in ``dpo``;
- ``kto``: Kahneman-Tversky Optimization on ``kto_train_file`` / ``kto_eval_file`` (rows
  ``{"prompt": [...], "completion": [...], "label": true|false}``), hyperparameters in ``kto``;
- ``sft+dpo``: the SFT stage, then DPO continuing the SFT adapter against the SFT model.

A method's files are required (``ConfigError`` naming the key); the others are ignored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SEVEN_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
METHODS = ("sft", "dpo", "kto", "sft+dpo")
QUANTIZATIONS = ("none", "nf4")  # "nf4" = QLoRA: 4-bit NF4, double quant, bf16 compute
REPORT_TO = ("none", "wandb", "mlflow")
# TRL 1.16 DPOConfig.loss_type values (DPOTrainer._compute_loss), less "exo_pair" (it needs a
# label_smoothing > 0, which this config does not expose).
DPO_LOSS_TYPES = (
    "sigmoid", "hinge", "ipo", "nca_pair", "robust", "bco_pair", "sppo_hard",
    "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
)
# Allowed values of a key ("section.key" for a nested one): TrainConfig checks them, and the
# settings use them as Literal types.
CHOICES: dict[str, tuple[str, ...]] = {
    "method": METHODS,
    "quantization": QUANTIZATIONS,
    "report_to": REPORT_TO,
    "dpo.loss_type": DPO_LOSS_TYPES,
}
# Keys that must be a number > 0, and integers that must be >= 1 (checked here and in settings).
POSITIVE = (
    "dpo.beta", "dpo.learning_rate", "dpo.epochs",
    "kto.beta", "kto.desirable_weight", "kto.undesirable_weight", "kto.learning_rate", "kto.epochs",
)
AT_LEAST_ONE = ("batch_size", "grad_accum", "eval_steps", "logging_steps", "max_seq_len", "save_total_limit")
# The data files each method reads (all required for that method).
METHOD_FILES = {
    "sft": ("train_file", "eval_file"),
    "dpo": ("preference_train_file", "preference_eval_file"),
    "kto": ("kto_train_file", "kto_eval_file"),
    "sft+dpo": ("train_file", "eval_file", "preference_train_file", "preference_eval_file"),
}
# Keys of TrainingSettings that only the orchestrator reads (launcher choice, concurrency, cost);
# the trainer ignores them. ``base_model`` is a settings key too, but the trainer gets the
# resolved model (a local folder or a hub id) under the same name.
ORCHESTRATOR_KEYS = ("launcher", "local_max_concurrent", "hourly_cost_usd")
IGNORED_KEYS = set(ORCHESTRATOR_KEYS)


class ConfigError(ValueError):
    pass


@dataclass
class LoraConfigSpec:
    r: int = 16
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: list(SEVEN_PROJECTIONS))


@dataclass
class DpoConfigSpec:
    """DPO hyperparameters (TRL ``DPOConfig``). The other optimisation settings (batch, warmup,
    schedule, max_steps, eval/save steps, early stopping) are the top-level ones.

    beta 0.1 and the sigmoid loss are the DPO paper's (Rafailov et al. 2023) and TRL's defaults.
    Learning rate: DPO on full weights uses 5e-7 - 1e-6 (DPO paper 1e-6, Zephyr 5e-7, TRL's
    full-training example 5e-7); a LoRA adapter takes ~10x more (TRL's LoRA DPO example: 5e-6),
    so 5e-6 for LoRA / QLoRA on an 8B model. One epoch: preference data overfits fast (TRL's
    examples and the DPO paper train one epoch).
    """

    beta: float = 0.1
    loss_type: str = "sigmoid"
    learning_rate: float = 5e-6
    epochs: float = 1


@dataclass
class KtoConfigSpec:
    """KTO hyperparameters (TRL ``KTOConfig``); the other settings are the top-level ones.

    beta 0.1 and unit weights are the KTO paper's (Ethayarajh et al. 2024) and TRL's defaults;
    with unbalanced data, set the weights so desirable_weight * n_desirable /
    (undesirable_weight * n_undesirable) lies in [1, 4/3] (the paper's Eq. 8; TRL warns
    otherwise). Learning rate: the paper and TRL's example use 5e-7 on full weights; x10 for a
    LoRA adapter, as for DPO: 5e-6. One epoch.
    """

    beta: float = 0.1
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    learning_rate: float = 5e-6
    epochs: float = 1


def _spec(value: Any, cls: type, name: str):
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"`{name}` must be an object with keys {sorted(f.name for f in fields(cls))}")
    unknown = set(value) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(f"unknown {name} keys {sorted(unknown)}")
    return cls(**value)


def _get(obj: Any, key: str) -> Any:
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _positive(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"`{key}` must be a number > 0, not {value!r}")


@dataclass
class TrainingSpec:
    """Every training setting with its default (docs/design.md, "Defaults", is generated from
    ``replyassets.settings.TrainingSettings``, which is built from this class)."""

    # what is trained: "sft" | "dpo" | "kto" | "sft+dpo" (module docstring); every method trains a
    # LoRA / QLoRA adapter. Hyperparameters of the preference stages in `dpo` / `kto`; the other
    # settings apply to every stage.
    method: str = "sft"
    dpo: DpoConfigSpec = field(default_factory=DpoConfigSpec)
    kto: KtoConfigSpec = field(default_factory=KtoConfigSpec)
    # model
    quantization: str = "nf4"  # "none" | "nf4" (QLoRA: 4-bit NF4, double quant, bf16 compute)
    lora: LoraConfigSpec = field(default_factory=LoraConfigSpec)
    # torch intra-op threads for CPU training (0 = torch's default). Measured on the tiny local
    # model on 2 busy cores: 1 thread 6.7 steps/s, 2 threads 1.1 steps/s.
    cpu_threads: int = 0
    # optimisation
    epochs: float = 2
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    batch_size: int = 4
    grad_accum: int = 4
    weight_decay: float = 0.01
    max_seq_len: int = 512
    seed: int = 42
    max_steps: int = -1
    packing: bool = False
    # evaluation, checkpoints, stopping
    eval_steps: int = 50
    early_stopping_patience: int = 3
    early_stopping_threshold: float = 0.01
    save_total_limit: int = 3  # best N checkpoints by eval loss (+ the latest, for resume)
    gap_alarm: float = 0.3  # alarm when eval loss exceeds train loss by more than this
    # reporting: "none" | "wandb" | "mlflow"
    report_to: str = "none"


@dataclass
class TrainConfig(TrainingSpec):
    """``TrainingSpec`` plus the run's paths and the trainer's own knobs."""

    # run paths (required)
    base_model: str = ""  # a local folder or a hub id
    train_file: str = ""  # SFT rows (methods sft, sft+dpo)
    eval_file: str = ""
    preference_train_file: str = ""  # DPO pairs (methods dpo, sft+dpo)
    preference_eval_file: str = ""
    kto_train_file: str = ""  # KTO rows (method kto)
    kto_eval_file: str = ""
    output_dir: str = ""  # checkpoints, result.json, loss_curve.png; a rerun here resumes
    adapter_dir: str = ""  # default <output_dir>/adapter
    # provenance
    curated_set_hash: str = ""
    run_name: str = ""
    # trainer-only
    gradient_checkpointing: str = "auto"  # "auto" (on with CUDA) | "true" | "false"
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    padding_free: bool = False
    save_steps: int = 0  # 0 = eval_steps (best-model tracking needs them aligned)
    logging_steps: int = 10
    resume: bool = True
    sample_generations: int = 3
    sample_max_new_tokens: int = 48
    check_name: str = "train_eval_gap"

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            unknown = set(self.lora) - {f.name for f in fields(LoraConfigSpec)}
            if unknown:
                raise ConfigError(f"unknown lora keys {sorted(unknown)}")
            self.lora = LoraConfigSpec(**self.lora)
        self.lora.target_modules = list(self.lora.target_modules)
        self.dpo = _spec(self.dpo, DpoConfigSpec, "dpo")
        self.kto = _spec(self.kto, KtoConfigSpec, "kto")
        if self.method not in METHODS:  # before METHOD_FILES[self.method]
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        for key in ("base_model", *METHOD_FILES[self.method], "output_dir"):
            if not getattr(self, key):
                raise ConfigError(
                    f"training config needs `{key}`" + (f" (method {self.method!r})" if self.method != "sft" else "")
                )
        for key in POSITIVE:
            section, name = key.split(".")
            _positive(getattr(getattr(self, section), name), key)
        for key, allowed in CHOICES.items():
            value = _get(self, key)
            if value not in allowed:
                raise ConfigError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
        if self.method == "kto" and int(self.batch_size) < 2:
            # the KL estimate pairs each prompt with another row's completion of the same batch
            raise ConfigError("method 'kto' needs `batch_size` >= 2 (the KL term is estimated within a batch)")
        if self.gradient_checkpointing not in ("auto", "true", "false"):
            raise ConfigError("gradient_checkpointing must be 'auto', 'true' or 'false'")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("device must be 'auto', 'cpu' or 'cuda'")
        for key in AT_LEAST_ONE:
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"`{key}` must be >= 1")
        if not self.save_steps:
            self.save_steps = self.eval_steps
        if self.save_steps % self.eval_steps:
            raise ConfigError("save_steps must be a multiple of eval_steps (best-checkpoint tracking)")
        if not self.adapter_dir:
            self.adapter_dir = str(Path(self.output_dir) / "adapter")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError("training config must be a JSON object")
        data = {k: v for k, v in data.items() if k not in IGNORED_KEYS}
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown training config keys {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc.msg})") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def stages(self) -> tuple[str, ...]:
        """The trainings this method runs, in order."""
        return ("sft", "dpo") if self.method == "sft+dpo" else (self.method,)
