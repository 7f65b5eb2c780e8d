"""Training recipes as data: ``config/experiments.yaml`` (no Dagster here).

An experiment is a name (a slug: it becomes a partition key and a folder name) and a set of
overrides of the training settings and of the decoding settings used to evaluate it::

    experiments:
      - name: default                 # the profile's settings, unchanged (always present)
      - name: default-seed43          # an A/A twin: the same recipe, another seed
        description: the default recipe with another seed (measures run-to-run noise)
        training: {seed: 43}
      - name: r8
        training: {lora: {r: 8, alpha: 8}}
    sweeps:
      - grid:                         # every combination becomes an experiment
          training.lora.r: [8, 32]
          training.learning_rate: [1.0e-4, 3.0e-4]
        # names: r8-lr1e-4, r8-lr3e-4, r32-lr1e-4, r32-lr3e-4 (optional `prefix:`, `base:`)

Overrides may name any training setting (``replyassets.settings.TrainingSettings``: LoRA
r/alpha/dropout/targets, learning rate, epochs, batch, quantization, seed, base model, the
method ``sft``/``dpo``/``kto``/``sft+dpo`` and its ``dpo``/``kto`` hyperparameters...) and
the decoding settings of ``evaluation`` (``DECODING_KEYS``). Unknown keys, bad values,
duplicate names and names that are not slugs fail with the file, the entry and the key named.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from replyassets.settings import (
    EvaluationSettings,
    Settings,
    TrainingSettings,
    validate_slug,
)

DEFAULT_EXPERIMENT = "default"
DECODING_KEYS = ("temperature", "top_p", "max_new_tokens", "generation_seed")
SECTIONS = ("training", "evaluation")
_ENTRY_KEYS = {"name", "description", *SECTIONS}
_SWEEP_KEYS = {"grid", "prefix", "base", "description"}
# Short, readable name parts for the settings a sweep varies most.
ALIASES = {
    "training.lora.r": "r",
    "training.lora.alpha": "alpha",
    "training.lora.dropout": "drop",
    "training.learning_rate": "lr",
    "training.epochs": "ep",
    "training.batch_size": "bs",
    "training.grad_accum": "ga",
    "training.seed": "seed",
    "training.quantization": "q",
    "training.warmup_ratio": "wu",
    "training.weight_decay": "wd",
    "training.max_steps": "steps",
    "training.method": "",  # -> sft, dpo, kto, sft-dpo
    "training.dpo.beta": "dpobeta",
    "training.dpo.learning_rate": "dpolr",
    "training.dpo.loss_type": "dpo",
    "training.kto.beta": "ktobeta",
    "training.kto.learning_rate": "ktolr",
    "evaluation.temperature": "temp",
    "evaluation.top_p": "topp",
    "evaluation.max_new_tokens": "tok",
}


class ExperimentsFileError(ValueError):
    """A problem in the experiments file, naming the file, the entry and the key."""


class Experiment(BaseModel):
    """One named recipe: overrides of the training and decoding settings."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    training: dict[str, Any] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)

    def training_settings(self, base: TrainingSettings) -> TrainingSettings:
        return TrainingSettings.model_validate(_deep_merge(base.model_dump(mode="python"), self.training))

    def evaluation_settings(self, base: EvaluationSettings) -> EvaluationSettings:
        return EvaluationSettings.model_validate({**base.model_dump(mode="python"), **self.evaluation})

    def overrides(self) -> dict[str, Any]:
        """Flat ``{"training.lora.r": 8, ...}``: how this recipe differs from the default."""
        return {f"{section}.{k}": v for section in SECTIONS for k, v in _flatten(getattr(self, section)).items()}


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def format_value(value: Any) -> str:
    """A value as a slug part: 1e-4 -> ``1e-4``, 0.1 -> ``0p1``, True -> ``on``, "nf4" -> ``nf4``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value).replace("-", "m")
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            mantissa, exponent = f"{value:e}".split("e")
            text = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        else:
            text = f"{value:g}"
        return text.replace(".", "p")
    text = "".join(c if c.isalnum() else "-" for c in str(value).lower()).strip("-")
    return "-".join(p for p in text.split("-") if p)


def sweep_name(assignment: Mapping[str, Any], prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    for key, value in assignment.items():
        alias = ALIASES.get(key, key.rsplit(".", 1)[-1].replace("_", "-"))
        parts.append(f"{alias}{format_value(value)}")
    return "-".join(parts)


def _where(path: Path, entry: str) -> str:
    return f"{path}: {entry}"


def _check_keys(path: Path, entry: str, section: str, overrides: Any) -> None:
    if not isinstance(overrides, Mapping):
        raise ExperimentsFileError(f"{_where(path, entry)}: '{section}' must be a mapping of settings")
    if section == "training":
        allowed = set(TrainingSettings.model_fields)
        for key, value in overrides.items():
            if key not in allowed:
                raise ExperimentsFileError(
                    f"{_where(path, entry)}: unknown key 'training.{key}'; allowed: {', '.join(sorted(allowed))}"
                )
            nested = TrainingSettings.model_fields[key].annotation
            if isinstance(nested, type) and issubclass(nested, BaseModel):  # lora, dpo, kto
                if not isinstance(value, Mapping):
                    raise ExperimentsFileError(f"{_where(path, entry)}: 'training.{key}' must be a mapping")
                sub_allowed = set(nested.model_fields)
                for sub in value:
                    if sub not in sub_allowed:
                        raise ExperimentsFileError(
                            f"{_where(path, entry)}: unknown key 'training.{key}.{sub}'; "
                            f"allowed: {', '.join(sorted(sub_allowed))}"
                        )
    else:
        for key in overrides:
            if key not in DECODING_KEYS:
                raise ExperimentsFileError(
                    f"{_where(path, entry)}: unknown key 'evaluation.{key}'; an experiment may set the "
                    f"decoding settings {', '.join(DECODING_KEYS)}"
                )


def _validated(path: Path, entry: str, raw: Mapping[str, Any], settings: Settings) -> Experiment:
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise ExperimentsFileError(
            f"{_where(path, entry)}: unknown key(s) {sorted(unknown)}; an experiment has "
            f"{', '.join(sorted(_ENTRY_KEYS))}"
        )
    name = raw.get("name")
    try:
        validate_slug(name)
    except ValueError:
        raise ExperimentsFileError(
            f"{_where(path, entry)}: invalid experiment name {name!r}: use 1-64 lowercase letters, digits "
            "and inner hyphens (it becomes a partition key and a folder name)"
        ) from None
    for section in SECTIONS:
        _check_keys(path, f"{entry} ({name})", section, raw.get(section) or {})
    exp = Experiment(name=name, description=str(raw.get("description") or ""),
                     training=dict(raw.get("training") or {}), evaluation=dict(raw.get("evaluation") or {}))
    for section, build, base in (("training", exp.training_settings, settings.training),
                                 ("evaluation", exp.evaluation_settings, settings.evaluation)):
        try:
            build(base)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ExperimentsFileError(
                f"{_where(path, f'{entry} ({name})')}: bad value for '{section}.{key}': {err['msg']} "
                f"(got {err.get('input')!r})"
            ) from None
    return exp


def _expand_sweep(path: Path, index: int, sweep: Any) -> Iterable[dict[str, Any]]:
    entry = f"sweep #{index + 1}"
    if not isinstance(sweep, Mapping):
        raise ExperimentsFileError(f"{_where(path, entry)}: a sweep is a mapping with a 'grid'")
    unknown = set(sweep) - _SWEEP_KEYS
    if unknown:
        raise ExperimentsFileError(f"{_where(path, entry)}: unknown key(s) {sorted(unknown)}; a sweep has "
                                   f"{', '.join(sorted(_SWEEP_KEYS))}")
    grid = sweep.get("grid")
    if not isinstance(grid, Mapping) or not grid:
        raise ExperimentsFileError(f"{_where(path, entry)}: 'grid' must map dotted settings to lists of values")
    for key, values in grid.items():
        if not isinstance(key, str) or key.split(".")[0] not in SECTIONS:
            raise ExperimentsFileError(
                f"{_where(path, entry)}: grid key {key!r} must start with 'training.' or 'evaluation.'"
            )
        if not isinstance(values, list) or not values:
            raise ExperimentsFileError(f"{_where(path, entry)}: grid key '{key}' needs a non-empty list of values")
    base = sweep.get("base") or {}
    prefix = str(sweep.get("prefix") or "")
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        assignment = dict(zip(keys, combo, strict=True))
        nested = _deep_merge({s: dict(base.get(s) or {}) for s in SECTIONS}, _nest(assignment))
        yield {"name": sweep_name(assignment, prefix), "description": sweep.get("description") or
               "sweep: " + ", ".join(f"{k}={v}" for k, v in assignment.items()), **nested}


def load_experiments(path: str | Path, settings: Settings) -> list[Experiment]:
    """Every experiment of the file, ``default`` first, sweeps expanded, all validated."""
    path = Path(path)
    if not path.exists():
        return [Experiment(name=DEFAULT_EXPERIMENT, description="the profile's training settings")]
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ExperimentsFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping):
        raise ExperimentsFileError(f"{path}: expected a mapping with 'experiments' (and optional 'sweeps')")
    unknown = set(doc) - {"experiments", "sweeps"}
    if unknown:
        raise ExperimentsFileError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    entries = doc.get("experiments") or []
    sweeps = doc.get("sweeps") or []
    if not isinstance(entries, list) or not isinstance(sweeps, list):
        raise ExperimentsFileError(f"{path}: 'experiments' and 'sweeps' must be lists")
    raw: list[tuple[str, Any]] = [(f"experiment #{i + 1}", e) for i, e in enumerate(entries)]
    for i, sweep in enumerate(sweeps):
        raw += [(f"sweep #{i + 1} ({item['name']})", item) for item in _expand_sweep(path, i, sweep)]
    out: list[Experiment] = []
    for entry, item in raw:
        if not isinstance(item, Mapping):
            raise ExperimentsFileError(f"{_where(path, entry)}: an experiment is a mapping with a 'name'")
        out.append(_validated(path, entry, item, settings))
    names = [e.name for e in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ExperimentsFileError(f"{path}: duplicate experiment names {dupes}")
    default = next((e for e in out if e.name == DEFAULT_EXPERIMENT), None)
    if default is None:
        default = Experiment(name=DEFAULT_EXPERIMENT, description="the profile's training settings")
    elif default.training or default.evaluation:
        raise ExperimentsFileError(
            f"{path}: experiment '{DEFAULT_EXPERIMENT}' is the profile's settings unchanged; give a recipe "
            "with overrides another name"
        )
    return [default] + [e for e in out if e.name != DEFAULT_EXPERIMENT]
