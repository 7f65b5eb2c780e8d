"""Optimized CPU inference for sentence-transformers embedding models: ONNX Runtime and OpenVINO.

Why not ``SentenceTransformer(..., backend="onnx" | "openvino")``: sentence-transformers
6.x reaches both through Optimum (``optimum-onnx`` / ``optimum-intel``), and every release of
those pins ``transformers`` (and, for optimum-intel, ``torch``) below the versions this
project installs for training. So the model is exported here with what is installed:

1. the sentence-transformers model is loaded from its *local* folder (the packaged
   all-MiniLM-L6-v2, a folder, or a hub id already in the local Hugging Face cache);
   only ``Transformer -> Pooling (mean | cls | max) [-> Normalize]`` pipelines are
   supported (anything else: use the ``torch`` backend);
2. the transformer plus its pooling and L2 normalization is exported as one ONNX graph
   (``torch.onnx`` TorchScript exporter, eager attention so ONNX Runtime can fuse it);
   the tokenizer goes next to it as ``tokenizer.json`` (truncation at the model's
   ``max_seq_length``, as sentence-transformers does);
3. ``onnx``: ONNX Runtime's transformer optimizer fuses attention / LayerNorm / GELU
   (``fp32``), and ``int8`` adds dynamic quantization (int8 weights, per channel);
   ``openvino``: the ONNX graph converted to OpenVINO IR (fp32 weights); ``bf16`` is an
   inference precision chosen when the model is compiled (AMX / AVX512-BF16 CPUs; a CPU
   without bf16 runs fp32 and the embedder's ``model_id`` says so).

The export is built once per (source model fingerprint, backend[, precision]) under
``<data dir>/models/embeddings/<name>-<fingerprint>-<backend>[-<precision>]/``, atomically:
everything is written into a hidden temporary folder beside it, the manifest
(``export.json``: format, fingerprint, backend, precision, every file with its size) last,
then the folder is renamed into place. A folder whose manifest is missing, from another
format or fingerprint, or whose files do not match the sizes it lists (a killed copy, a
hand edit) is never loaded: it is moved aside and the export is built again. Leftover
temporary folders of killed exports are removed once they are a day old.

Measured on the project's 2 shared CPU cores (``benchmarks/embed.py``, docs/design.md): OpenVINO with
bf16 inference is the fastest variant that keeps the vectors interchangeable with the
PyTorch ones, and is the settings' default. ONNX Runtime fp32 is about as fast as PyTorch
here, and dynamic int8 quantization (either runtime) falls below the 0.99 cosine bar on
real replies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

EXPORT_FORMAT = 1
MANIFEST = "export.json"
BACKENDS = ("torch", "onnx", "openvino")
# precisions each backend supports; "auto" resolves to the first one
PRECISIONS: dict[str, tuple[str, ...]] = {
    "torch": ("fp32",),
    "onnx": ("fp32", "int8"),
    "openvino": ("bf16", "fp32"),
}
_RUNTIME = {"onnx": ("onnxruntime", "ONNX Runtime"), "openvino": ("openvino", "OpenVINO")}
_STALE_TMP_S = 24 * 3600
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_POOLING = ("mean", "cls", "max")
# Probe sentences embedded by both models right after an export: a sanity check recorded
# in the manifest (the real comparison is benchmarks/embed.py and the tests).
PROBES = (
    "The new model really nails long-context reasoning, impressive work by the team.",
    "I can't believe the game last night went to triple overtime, what a finish!",
    "We moved our invoice reconciliation to a state machine and cut errors by 40%.",
    "ok",
    "Honestly the best explanation of transformers I've ever read online 🙌",
    "Any tips for onboarding new hires across three time zones without endless meetings?",
)
# below this the export is broken (a wrong tokenizer or pooling lands far lower); int8 is
# lossy by design and only has to be in the right place
_MIN_PROBE_COSINE = {"fp32": 0.999, "int8": 0.9}

log = logging.getLogger(__name__)

# What torch.onnx.export (the TorchScript exporter, torch 2.9) warns about on these models, each
# expected and harmless here (the probe check after the export catches a broken graph), as
# (category name, message prefix):
_EXPORT_WARNINGS: tuple[tuple[str, str], ...] = (
    ("DeprecationWarning", "You are using the legacy TorchScript-based ONNX export"),
    ("DeprecationWarning", "The feature will be removed. Please remove usage of this function"),
    # the attention mask's shape checks, traced for the example batch; the axes stay dynamic
    ("TracerWarning", "Converting a tensor to a Python boolean might cause the trace to be incorrect"),
    # gather with negative indices: the exported graph never indexes from the end
    ("UserWarning", "Exporting aten::index operator of advanced indexing in opset"),
)


@contextlib.contextmanager
def _expected_warnings_to_log(step: str, expected: tuple[tuple[str, str], ...]):
    """Warnings raised inside: the ``expected`` ones (category name, message prefix) go to the
    log at DEBUG, any other is shown as usual once the block ends."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = str(w.message)
        if any(w.category.__name__ == cat and text.startswith(msg) for cat, msg in expected):
            log.debug("%s: %s: %s", step, w.category.__name__, text)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class EmbeddingBackendError(RuntimeError):
    """A backend that cannot run here or a model it cannot export; the message says what to change."""


class EmbeddingBackendUnavailable(EmbeddingBackendError):
    """The runtime of the chosen backend (onnxruntime / openvino) cannot be imported."""


def _setting_hint() -> str:
    return ("set `dedup.embedding_backend: torch` in config/profiles/<profile>.yaml "
            "(or in the file named by REPLYASSETS_SETTINGS)")


def resolve_precision(backend: str, precision: str = "auto") -> str:
    """The precision ``auto`` stands for, after checking the (backend, precision) pair."""
    if backend not in PRECISIONS:
        raise EmbeddingBackendError(
            f"unknown embedding backend {backend!r} (dedup.embedding_backend: one of {', '.join(BACKENDS)})")
    allowed = PRECISIONS[backend]
    if precision == "auto":
        return allowed[0]
    if precision not in allowed:
        raise EmbeddingBackendError(
            f"dedup.embedding_precision {precision!r} is not available with dedup.embedding_backend "
            f"{backend!r} (choose auto or one of {', '.join(allowed)})")
    return precision


def require_runtime(backend: str) -> Any:
    """Import the backend's runtime, or fail with an error that names the setting to change."""
    if backend == "torch":
        return None
    module, name = _RUNTIME[backend]
    try:
        if module == "openvino":
            import openvino as rt
        else:
            import onnxruntime as rt
    except Exception as exc:  # ImportError, or a broken native library
        raise EmbeddingBackendUnavailable(
            f"dedup.embedding_backend is {backend!r}, but {name} cannot be imported "
            f"({type(exc).__name__}: {exc}). Install the project's dependencies "
            f"(pip install -e . installs {module}), or {_setting_hint()}."
        ) from exc
    return rt


def openvino_bf16_supported() -> bool:
    import openvino as ov

    try:
        caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - no CPU plugin property: assume no bf16
        return False
    return "BF16" in [str(c).upper() for c in caps]


# --------------------------------------------------------------------------- export cache


def export_name(label: str, fingerprint: str, backend: str, precision: str) -> str:
    """Folder name of an export; OpenVINO's IR is fp32 whatever the inference precision."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)[:60].strip("-.") or "model"
    tail = backend if backend == "openvino" else f"{backend}-{precision}"
    return f"{safe}-{fingerprint}-{tail}"


def read_manifest(folder: Path, fingerprint: str, backend: str, precision: str) -> dict | None:
    """The folder's manifest when the folder is a complete export of exactly this; else None."""
    try:
        m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("format") != EXPORT_FORMAT or m.get("source_fingerprint") != fingerprint:
        return None
    if m.get("backend") != backend or (backend != "openvino" and m.get("precision") != precision):
        return None
    return m if files_intact(folder, m.get("files")) else None


def files_intact(folder: Path, files: object) -> bool:
    """Whether a manifest's ``files`` ({name: size}, non-empty) are all in ``folder`` at their size."""
    if not isinstance(files, dict) or not files:
        return False
    for name, size in files.items():
        p = folder / name
        if "/" in name or not p.is_file() or p.stat().st_size != size:
            return False
    return True


def _discard(path: Path) -> None:
    """Move a folder out of the way (one rename, so nobody loads it), then delete it."""
    aside = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        path.rename(aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _sweep(root: Path) -> None:
    now = time.time()
    for p in root.glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".*.stale-*"):
        shutil.rmtree(p, ignore_errors=True)


def ensure_export(source: str | Path, fingerprint: str, backend: str, precision: str, root: str | Path,
                  label: str = "model") -> Path:
    """The folder of a complete export of ``source`` for ``backend``; built (atomically) if absent."""
    precision = resolve_precision(backend, precision)
    if backend == "torch":
        raise EmbeddingBackendError("the torch backend needs no export")
    root = Path(root)
    final = root / export_name(label, fingerprint, backend, precision)
    if root.is_dir():
        _sweep(root)
    if read_manifest(final, fingerprint, backend, precision) is not None:
        return final
    root.mkdir(parents=True, exist_ok=True)
    if final.exists():
        log.warning("embedding export %s is incomplete or stale: rebuilding it", final)
        _discard(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        t0 = time.perf_counter()
        manifest = export_model(str(source), backend, precision, tmp)
        manifest.update({"format": EXPORT_FORMAT, "source_fingerprint": fingerprint, "label": label,
                         "export_seconds": round(time.perf_counter() - t0, 2)})
        manifest["files"] = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        _write_json_durably(tmp / MANIFEST, manifest)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        try:
            os.rename(tmp, final)
        except OSError:
            # another process finished the same export first: use theirs when it is complete
            if read_manifest(final, fingerprint, backend, precision) is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                fd = os.open(root, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_json_durably(path: Path, data: dict) -> None:
    for f in path.parent.iterdir():  # the model files first, so the manifest never precedes them
        if f.is_file():
            with open(f, "rb+") as fh:
                os.fsync(fh.fileno())
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())


# --------------------------------------------------------------------------- the export itself


def _pipeline(st) -> tuple[Any, str]:
    """(Transformer module, pooling mode) of a supported sentence-transformers model."""
    mods = list(st)
    names = [type(m).__name__ for m in mods]
    ok = len(mods) >= 2 and names[0] == "Transformer" and names[1] == "Pooling" and all(
        n == "Normalize" for n in names[2:])
    if not ok:
        raise EmbeddingBackendError(
            f"the embedding model's modules {names} are not Transformer -> Pooling [-> Normalize]; "
            f"only such models can be exported: {_setting_hint()}")
    mode = getattr(mods[1], "pooling_mode", None)
    if mode is None:  # sentence-transformers < 6 keeps the mode as flags
        flags = getattr(mods[1], "get_pooling_mode_str", None)
        mode = flags() if flags else None
    if mode not in _POOLING:
        raise EmbeddingBackendError(
            f"pooling {mode!r} of the embedding model cannot be exported (mean, cls or max only): {_setting_hint()}")
    return mods[0], mode


def _pooled_module(hf_model, mode: str):
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf_model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kw = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kw["token_type_ids"] = token_type_ids
            h = self.model(**kw)[0]
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            if mode == "cls":
                v = h[:, 0]
            elif mode == "max":
                v = (h + (mask - 1.0) * 1e9).max(dim=1).values
            else:
                v = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2.0, dim=1)

    return Pooled().eval()


def export_model(source: str, backend: str, precision: str, out: Path) -> dict:
    """Export ``source`` (a local sentence-transformers folder or cached hub id) into ``out``."""
    import torch
    from sentence_transformers import SentenceTransformer

    require_runtime(backend)
    st = SentenceTransformer(source, device="cpu", model_kwargs={"attn_implementation": "eager"})
    transformer, mode = _pipeline(st)
    hf = transformer.auto_model.eval()
    tokenizer = st.tokenizer
    backend_tok = getattr(tokenizer, "backend_tokenizer", None)
    if backend_tok is None:
        raise EmbeddingBackendError(f"the embedding model has no fast tokenizer (tokenizer.json): {_setting_hint()}")
    max_len = int(st.max_seq_length or getattr(tokenizer, "model_max_length", 512))
    inputs = [n for n in _ONNX_INPUTS if n in tokenizer.model_input_names]
    if inputs[:2] != ["input_ids", "attention_mask"]:
        raise EmbeddingBackendError(f"unexpected tokenizer inputs {tokenizer.model_input_names}: {_setting_hint()}")

    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(backend_tok.to_str())
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    tok.save(str(out / "tokenizer.json"))

    module = _pooled_module(hf, mode)
    example = tuple(torch.ones(2, 8, dtype=torch.long) if n != "token_type_ids" else torch.zeros(2, 8, dtype=torch.long)
                    for n in inputs)
    raw = out / ".raw.onnx"
    axes = {n: {0: "batch", 1: "sequence"} for n in inputs} | {"sentence_embedding": {0: "batch"}}
    with _expected_warnings_to_log("onnx export", _EXPORT_WARNINGS), torch.no_grad():
        torch.onnx.export(module, example, str(raw), input_names=inputs, output_names=["sentence_embedding"],
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True, dynamo=False)
    cfg = hf.config
    if backend == "onnx":
        _onnx_finish(raw, out / "model.onnx", cfg, precision)
    else:
        import openvino as ov

        ov.save_model(ov.convert_model(str(raw)), str(out / "openvino_model.xml"), compress_to_fp16=False)
    raw.unlink()
    manifest = {
        "backend": backend, "precision": precision, "pooling": mode, "normalize": True,
        "max_seq_length": max_len, "inputs": inputs, "dim": int(cfg.hidden_size),
        "pad_id": int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        "versions": _versions(backend),
    }
    # sanity check against the PyTorch model on a few sentences (the export fails when broken)
    ref = st.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True)
    got = ExportedModel(out, manifest, "fp32" if backend == "openvino" else precision).encode(list(PROBES))
    cos = float(np.min(np.sum(ref * got, axis=1)))
    manifest["probe_min_cosine"] = round(cos, 6)
    if not cos >= _MIN_PROBE_COSINE["int8" if precision == "int8" else "fp32"]:
        raise EmbeddingBackendError(
            f"the {backend}/{precision} export of the embedding model disagrees with PyTorch "
            f"(cosine {cos:.4f} on probe sentences): {_setting_hint()}")
    return manifest


def _onnx_finish(raw: Path, dest: Path, cfg, precision: str) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    fused = raw
    if getattr(cfg, "model_type", "") in {"bert", "roberta", "xlm-roberta", "mpnet", "distilbert", "electra"}:
        quiet = logging.getLogger("onnxruntime")  # the optimizer logs every fusion it tries
        old, quiet.level = quiet.level, logging.ERROR
        try:
            opt = optimize_model(str(raw), model_type="bert", num_heads=int(cfg.num_attention_heads),
                                 hidden_size=int(cfg.hidden_size), opt_level=1)
        finally:
            quiet.setLevel(old)
        fused = raw.with_name(".fused.onnx")
        opt.save_model_to_file(str(fused))
    if precision == "int8":
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fused), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    else:
        shutil.copyfile(fused, dest)
    if fused != raw:
        fused.unlink()


def _versions(backend: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "sentence-transformers", _RUNTIME[backend][0]):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


# --------------------------------------------------------------------------- inference


class ExportedModel:
    """An export loaded for inference: tokenizer + ONNX Runtime session or compiled OpenVINO model.

    Texts are tokenized in chunks, sorted by token count within a chunk and run in batches
    of ``batch_size`` padded to a multiple of 8 (fewer distinct shapes); rows come back in
    input order, L2-normalized, float32.
    """

    def __init__(self, folder: Path, manifest: dict, precision: str, batch_size: int = 128,
                 threads: int = 0) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.manifest = manifest
        self.backend = manifest["backend"]
        self.precision = precision
        self.batch_size = max(1, int(batch_size))
        self.dim = int(manifest["dim"])
        self.inputs = list(manifest["inputs"])
        self.pad_id = int(manifest.get("pad_id", 0))
        self.max_len = int(manifest["max_seq_length"])
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        if self.backend == "onnx":
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.log_severity_level = 3
            if threads:
                so.intra_op_num_threads = int(threads)
            self._session = ort.InferenceSession(str(self.folder / "model.onnx"), so,
                                                 providers=["CPUExecutionProvider"])
            self._run = lambda feed: self._session.run(None, feed)[0]
        else:
            import openvino as ov

            config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                                      "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
            if threads:
                config["INFERENCE_NUM_THREADS"] = int(threads)
            compiled = ov.Core().compile_model(str(self.folder / "openvino_model.xml"), "CPU", config)
            request = compiled.create_infer_request()
            output = compiled.outputs[0]
            self._run = lambda feed: request.infer(feed)[output]

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=True)]

    def encode(self, texts: Sequence[str], chunk: int = 8192) -> np.ndarray:
        n = len(texts)
        out = np.empty((n, self.dim), dtype=np.float32)
        for c0 in range(0, n, chunk):
            ids = self.tokenize(texts[c0:c0 + chunk])
            order = np.argsort([-len(x) for x in ids], kind="stable")
            for b0 in range(0, len(order), self.batch_size):
                rows = order[b0:b0 + self.batch_size]
                longest = max(len(ids[i]) for i in rows)
                width = min(-(-longest // 8) * 8, max(longest, self.max_len))
                input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for k, i in enumerate(rows):
                    input_ids[k, :len(ids[i])] = ids[i]
                    mask[k, :len(ids[i])] = 1
                feed = {"input_ids": input_ids, "attention_mask": mask}
                if "token_type_ids" in self.inputs:
                    feed["token_type_ids"] = np.zeros_like(input_ids)
                out[c0 + rows] = self._run(feed)
        # the graph normalizes; renormalizing here removes the last rounding of bf16 outputs
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, np.maximum(norms, 1e-12), out=out)
        return out


def content_fingerprint(folder: Path) -> str:
    """Short hash of every file of a model folder, names and contents (the export's key: a
    fine-tuned model of the same shape gets its own export)."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()[:16]
