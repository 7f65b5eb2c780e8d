"""Toxicity scorers: one small interface, two real backends.

- ``ProfanityCheckScorer`` (profile ``local``): alt-profanity-check's packaged linear SVM,
  ``predict_prob`` (about 49,000 texts/s, offline, no weights to fetch).
- ``DetoxifyScorer`` (profile ``production``): the real ``detoxify.Detoxify`` class; the
  score is its ``toxicity`` head. Without ``checkpoint`` Detoxify downloads its weights via
  torch.hub; offline, pass a local ``.ckpt`` (Detoxify's format: ``{"config": {"arch":
  {"args": {model_type, model_name, tokenizer_name, num_classes}}, "dataset": {"args":
  {"classes": [...]}}}, "state_dict": ...}``) and ``huggingface_config_path``, the folder
  holding the transformers config and tokenizer files.

Every scorer returns a float64 array in [0, 1], one value per input text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ToxicityScorer(Protocol):
    name: str

    def score(self, texts: Sequence[str]) -> np.ndarray: ...


def _as_texts(texts: Sequence[str]) -> list[str]:
    return [t if isinstance(t, str) else "" for t in texts]


class ProfanityCheckScorer:
    """alt-profanity-check's probability that a text is offensive."""

    name = "profanity-check"

    def __init__(self) -> None:
        from profanity_check import predict_prob

        self._predict_prob = predict_prob

    def score(self, texts: Sequence[str]) -> np.ndarray:
        texts = _as_texts(texts)
        if not texts:
            return np.zeros(0, dtype=np.float64)
        return np.clip(np.asarray(self._predict_prob(texts), dtype=np.float64), 0.0, 1.0)


class DetoxifyScorer:
    """Detoxify's ``toxicity`` head, batched."""

    def __init__(
        self,
        model_type: str = "original",
        checkpoint: str | None = None,
        huggingface_config_path: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
    ) -> None:
        from detoxify import Detoxify

        self.name = f"detoxify-{model_type}"
        self.batch_size = int(batch_size)
        if checkpoint is not None:
            path = Path(checkpoint)
            if not path.is_file():
                raise FileNotFoundError(
                    f"Detoxify checkpoint not found: {checkpoint} (expected a .ckpt file holding "
                    "'config' and 'state_dict')"
                )
            checkpoint = str(path)
            self.name = f"detoxify:{path.name}"
        if huggingface_config_path is not None and not Path(huggingface_config_path).is_dir():
            raise FileNotFoundError(
                f"Detoxify huggingface_config_path is not a folder: {huggingface_config_path} "
                "(it must hold the transformers config.json and tokenizer files)"
            )
        try:
            self._model = Detoxify(
                model_type=model_type,
                checkpoint=checkpoint,
                device=device,
                huggingface_config_path=huggingface_config_path,
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            where = checkpoint or f"the published '{model_type}' weights (downloaded via torch.hub)"
            raise RuntimeError(
                f"could not load Detoxify from {where}: {type(exc).__name__}: {exc}. Offline, pass "
                "checkpoint=<local .ckpt> and huggingface_config_path=<folder with config and tokenizer>."
            ) from exc
        if "toxicity" not in self._model.class_names:
            raise ValueError(
                f"Detoxify checkpoint has no 'toxicity' class (classes: {self._model.class_names})"
            )

    def score(self, texts: Sequence[str]) -> np.ndarray:
        texts = _as_texts(texts)
        out = np.zeros(len(texts), dtype=np.float64)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            # Detoxify's tokenizer rejects an empty string in some versions: give it a space.
            batch = [t if t.strip() else " " for t in batch]
            values = self._model.predict(batch)["toxicity"]
            out[start : start + len(batch)] = np.atleast_1d(np.asarray(values, dtype=np.float64))
        return np.clip(out, 0.0, 1.0)


_KINDS = {
    "profanity-check": "profanity-check",
    "profanity_check": "profanity-check",
    "local": "profanity-check",
    "offline": "profanity-check",
    "detoxify": "detoxify",
    "production": "detoxify",
}


def make_toxicity_scorer(kind: str, **kwargs) -> ToxicityScorer:
    """``kind``: ``profanity-check`` (alias ``local``/``offline``) or ``detoxify`` (alias
    ``production``); ``kwargs`` go to the backend (DetoxifyScorer's arguments)."""
    resolved = _KINDS.get(str(kind).strip().lower())
    if resolved is None:
        raise ValueError(f"unknown toxicity scorer {kind!r}; choose one of {sorted(set(_KINDS))}")
    if resolved == "profanity-check":
        if kwargs:
            raise TypeError(f"profanity-check takes no options, got {sorted(kwargs)}")
        return ProfanityCheckScorer()
    return DetoxifyScorer(**kwargs)
