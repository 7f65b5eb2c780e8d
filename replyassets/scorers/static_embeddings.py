"""A static embedding model for the semantic dedup cascade's candidate step (``dedup.candidate_model: static``).

model2vec's ``distill`` turns the sentence model (the packaged all-MiniLM-L6-v2) into a
static one: every vocabulary token is embedded once by the sentence model, the table is
reduced to ``PCA_DIMS`` dimensions by PCA and weighted by token frequency (model2vec's
defaults), and a text's vector is the mean of its tokens' rows. No network: the source is
the local model folder; the distillation runs on the CPU (about 35 s on a free core, 2-3
minutes on the project's shared 2 cores) and needs torch, transformers and skeletoken.

The model is built once per (source model content, ``PCA_DIMS``, model2vec major.minor,
``STATIC_FORMAT``), content-addressed under ``<models dir>/static/static-<label>-<key>/``
(``REPLYASSETS_MODELS_DIR``, else ``<data dir>/models``, as the tiny base model and the
embedding exports), under a file lock so that processes sharing the folder build it once:
it is written into a hidden temporary folder, the manifest (``static.json``, every file with
its size) last, then renamed into place; a folder whose manifest does not match its files
is rebuilt. Encoding: about 3,000-8,000 texts/s on one core, against 40-100/s for the
sentence model on the same machine (docs/design.md, "Semantic dedup cascade").

Nothing here imports model2vec (or torch) before a model is built or loaded: the Dagster
definitions import this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from replyassets.scorers import embedding_backends as eb

STATIC_FORMAT = 1
MANIFEST = "static.json"
# PCA dimensions of the distilled table: model2vec's default. Measured on the sample and the
# benchmark's replies (docs/design.md), 384 dimensions without PCA and other frequency weights
# needed as many candidates for the same recall.
PCA_DIMS = 256


def _model2vec_version() -> str:
    try:
        return ".".join(metadata.version("model2vec").split(".")[:2])
    except metadata.PackageNotFoundError:
        return "missing"


@lru_cache(maxsize=8)
def _fingerprint(source: str) -> str:
    return eb.content_fingerprint(Path(source))


def static_model_key(fingerprint: str, pca_dims: int = PCA_DIMS) -> str:
    """Content address of a static model: what it is built from and how."""
    spec = {"format": STATIC_FORMAT, "source": fingerprint, "pca_dims": pca_dims,
            "model2vec": _model2vec_version()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def read_static_manifest(folder: Path) -> dict | None:
    """The manifest of a complete static model folder, else None."""
    try:
        m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("format") != STATIC_FORMAT:
        return None
    return m if eb.files_intact(folder, m.get("files")) else None


def build_static_model(source: Path, out: Path, pca_dims: int = PCA_DIMS) -> dict:
    """Distill ``source`` into the folder ``out`` (written in place: callers pass a temporary folder)."""
    try:
        from model2vec.distill import distill
    except Exception as exc:  # ImportError, or a distill dependency missing
        raise eb.EmbeddingBackendError(
            f"dedup.candidate_model is 'static', but model2vec's distillation cannot be imported "
            f"({type(exc).__name__}: {exc}). Install the project's dependencies (pip install -e . installs "
            f"model2vec and skeletoken), or set `dedup.candidate_model: none`.") from exc

    t0 = time.perf_counter()
    model = distill(model_name=str(source), pca_dims=pca_dims)
    model.save_pretrained(str(out))
    return {"distill_seconds": round(time.perf_counter() - t0, 2), "pca_dims": pca_dims,
            "dim": int(model.embedding.shape[1]), "vocabulary": int(model.embedding.shape[0])}


def ensure_static_model(source: str | Path, models_dir: str | Path, label: str = "model",
                        pca_dims: int = PCA_DIMS) -> Path:
    """The folder of the static model distilled from ``source``; built (once, under a lock) if absent."""
    return _ensure(source, models_dir, label, pca_dims)[0]


def _ensure(source: str | Path, models_dir: str | Path, label: str, pca_dims: int) -> tuple[Path, bool]:
    """(folder, built by this call)."""
    from filelock import FileLock

    source = Path(source)
    fingerprint = _fingerprint(str(source))
    key = static_model_key(fingerprint, pca_dims)
    root = Path(models_dir) / "static"
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)[:60].strip("-.") or "model"
    final = root / f"static-{safe}-{key[:12]}"
    if read_static_manifest(final) is not None:
        return final, False
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{final}.lock"):
        if read_static_manifest(final) is not None:  # another process built it while we waited
            return final, False
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
        try:
            info = build_static_model(source, tmp, pca_dims)
            files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
            manifest = {"format": STATIC_FORMAT, "key": key, "source_fingerprint": fingerprint, "label": label,
                        "model2vec": _model2vec_version(), **info, "files": files}
            with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o755)  # mkdtemp makes it private
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final, True


class StaticEmbedder:
    """Static (model2vec) vectors of the sentence model ``model``, distilled on first use.

    ``encode`` returns float32 rows as the static model gives them (the dedup cascade
    mean-centres and normalizes them itself, ``core.dedup.candidate_rows``).
    """

    def __init__(self, model: str, models_dir: str | Path | None = None, pca_dims: int = PCA_DIMS) -> None:
        from replyassets.scorers.embeddings import SentenceTransformerEmbedder

        self._sentence = SentenceTransformerEmbedder(model=model, backend="torch")  # resolves the source only
        self.model = model
        self.pca_dims = pca_dims
        if models_dir is None:
            from replyassets.settings import get_settings

            models_dir = get_settings().models_dir
        self.models_dir = Path(models_dir)
        self.model_id = f"static-pca{pca_dims}:{self._sentence.model_id}"
        self.texts_encoded = 0
        self.built_now = False
        self._model = None

    def path(self) -> Path:
        out, built = _ensure(self._sentence._local_source(), self.models_dir, self._sentence._label, self.pca_dims)
        self.built_now = self.built_now or built
        return out

    def _load(self):
        if self._model is None:
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(str(self.path()))
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from replyassets.scorers.embeddings import model_text

        texts = [model_text(t) for t in texts]
        self.texts_encoded += len(texts)
        model = self._load()
        if not texts:
            return np.zeros((0, int(model.embedding.shape[1])), dtype=np.float32)
        vecs = model.encode(texts, show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32)
