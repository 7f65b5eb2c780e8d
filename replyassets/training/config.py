"""The training program's config: one JSON object (a file, or the Pipes extra ``training_config``).

Keys = ``replyassets.settings.TrainingSettings`` dumped (same names and defaults, docs/design.md)
plus the run's paths. Unknown keys are an error, so a typo never silently trains with a default.
No pydantic/settings import: this runs in the training image.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SEVEN_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Keys of TrainingSettings that only matter to the orchestrator.
# Settings the orchestrator side reads (launcher choice, concurrency, cost), not the trainer.
IGNORED_KEYS = {"launcher", "local_max_concurrent", "hourly_cost_usd"}


class ConfigError(ValueError):
    pass


@dataclass
class LoraConfigSpec:
    r: int = 16
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: list(SEVEN_PROJECTIONS))


@dataclass
class TrainConfig:
    # run paths (required)
    base_model: str = ""  # a local folder or a hub id
    train_file: str = ""
    eval_file: str = ""
    output_dir: str = ""  # checkpoints, result.json, loss_curve.png; a rerun here resumes
    adapter_dir: str = ""  # default <output_dir>/adapter
    # provenance
    curated_set_hash: str = ""
    run_name: str = ""
    # model
    quantization: str = "nf4"  # "none" | "nf4" (QLoRA: 4-bit NF4, double quant, bf16 compute)
    lora: LoraConfigSpec = field(default_factory=LoraConfigSpec)
    gradient_checkpointing: str = "auto"  # "auto" (on with CUDA) | "true" | "false"
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    cpu_threads: int = 0  # torch intra-op threads on CPU; 0 = torch's default (tiny models train fastest on 1)
    # optimisation (defaults: docs/design.md, "Defaults")
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
    padding_free: bool = False
    # evaluation, checkpoints, stopping
    eval_steps: int = 50
    save_steps: int = 0  # 0 = eval_steps (best-model tracking needs them aligned)
    logging_steps: int = 10
    early_stopping_patience: int = 3
    early_stopping_threshold: float = 0.01
    save_total_limit: int = 3  # best N checkpoints by eval loss (+ the latest, for resume)
    gap_alarm: float = 0.3
    resume: bool = True
    # reporting
    report_to: str = "none"  # "none" | "wandb" | "mlflow"
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
        for key in ("base_model", "train_file", "eval_file", "output_dir"):
            if not getattr(self, key):
                raise ConfigError(f"training config needs `{key}`")
        if self.quantization not in ("none", "nf4"):
            raise ConfigError(f"quantization must be 'none' or 'nf4', not {self.quantization!r}")
        if self.report_to not in ("none", "wandb", "mlflow"):
            raise ConfigError(f"report_to must be none, wandb or mlflow, not {self.report_to!r}")
        if self.gradient_checkpointing not in ("auto", "true", "false"):
            raise ConfigError("gradient_checkpointing must be 'auto', 'true' or 'false'")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("device must be 'auto', 'cpu' or 'cuda'")
        for key in ("batch_size", "grad_accum", "eval_steps", "logging_steps", "max_seq_len", "save_total_limit"):
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
