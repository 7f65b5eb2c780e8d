"""DuckDB embedding cache, the packaged MiniLM model, the cached embedder, the dedupe CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from replyassets.core.dedup import dedupe
from replyassets.core.embedding_cache import DuckDBEmbeddingCache, text_hash
from replyassets.scorers.embeddings import (
    CachedEmbedder,
    Embedder,
    SentenceTransformerEmbedder,
)

ROOT = Path(__file__).resolve().parents[2]

# Measured with the packaged all-MiniLM-L6-v2: the first three pairs are close paraphrases
# (cosine about 0.98); the last pair says the same thing in other words (about 0.85) and
# stays below 0.9, like unrelated replies (about 0.1-0.3).
PARAPHRASES = [
    ("The new model really nails long-context reasoning, impressive work by the team.",
     "The new model truly nails long context reasoning, impressive work from the team."),
    ("I can't believe the game last night went to triple overtime, what a finish!",
     "What a finish last night, can't believe the game went to triple overtime!"),
    ("Honestly this is the best explanation of transformers I have ever read online.",
     "Honestly the best explanation of transformers I've ever read online."),
]
LOOSE = ("The new model really nails long-context reasoning, impressive work by the team.",
         "This new model is really good at reasoning over long contexts, great work team.")
UNRELATED = "My cat knocked the coffee off my desk again this morning, send help."


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def test_cache_round_trip_ignores_repeats_and_separates_models(tmp_path, any_storage):
    cache = DuckDBEmbeddingCache(any_storage)  # a DuckDB file, then a DuckLake
    rng = np.random.default_rng(0)
    items = {text_hash(f"t{i}"): rng.standard_normal(384).astype(np.float32) for i in range(500)}
    assert cache.put_many("m1", items) == 500
    cache.put_many("m1", list(items.items())[:10])  # a retry never duplicates
    cache.put_many("m1", [(text_hash("t0"), np.zeros(384, np.float32))])  # first write wins
    assert cache.count("m1") == 500
    got = cache.get_many("m1", list(items) + [text_hash("absent")])
    assert set(got) == set(items)
    for h, v in items.items():
        assert got[h].dtype == np.float32 and np.array_equal(got[h], v)
    assert cache.get_many("m2", list(items)) == {}
    cache.put_many("m2", {text_hash("t0"): np.ones(8, np.float32)})
    assert cache.get_many("m2", [text_hash("t0")])[text_hash("t0")].shape == (8,)
    if not any_storage.is_lake:
        with duckdb.connect(str(any_storage.database)) as con:  # released: another writer can open it
            assert con.execute("SELECT typeof(vector) FROM embedding_cache LIMIT 1").fetchone()[0] == "FLOAT[]"
    with pytest.raises(ValueError, match="table"):
        DuckDBEmbeddingCache(tmp_path / "c.duckdb", table="x; DROP TABLE y")
    assert text_hash("é") == text_hash("é") != text_hash("e")
    assert len(text_hash("abc")) == 64


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_cache_waits_for_another_process_holding_the_file(tmp_path):
    db = tmp_path / "locked.duckdb"
    cache = DuckDBEmbeddingCache(db, lock_timeout_s=60)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(2); c.close()",
         str(db)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    cache.put_many("m", {text_hash("x"): np.ones(4, np.float32)})  # retries until released
    holder.wait(timeout=60)
    assert cache.count("m") == 1


def test_packaged_minilm_scores_paraphrases_above_the_threshold(minilm):
    assert isinstance(minilm, Embedder)
    texts = [t for pair in PARAPHRASES for t in pair] + [LOOSE[1], UNRELATED]
    assert LOOSE[0] == texts[0]
    v = minilm.encode(texts)
    assert v.shape == (len(texts), 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    for k in range(len(PARAPHRASES)):
        assert float(v[2 * k] @ v[2 * k + 1]) >= 0.95
    assert 0.7 < float(v[0] @ v[6]) < 0.9
    assert float(v[0] @ v[7]) < 0.5
    df = pd.DataFrame({"reply_id": [str(i) for i in range(len(texts))], "reply_clean": texts,
                       "reply_likes": [10, 20, 30, 5, 1, 2, 0, 3]})
    out = dedupe(df, v)
    # each paraphrase pair keeps its more-liked reply; the loose rewording (6) stays
    assert out["kept"].tolist() == [False, True, True, False, False, True, True, True]
    assert out["duplicate_of"].fillna("-").tolist() == ["1", "-", "-", "2", "5", "-", "-", "-"]
    assert minilm.model_id.startswith("all-MiniLM-L6-v2@")


def test_cached_embedder_embeds_only_new_texts(tmp_path, minilm):
    db = tmp_path / "cache.duckdb"
    texts = [t for pair in PARAPHRASES for t in pair]
    calls0, encoded0 = minilm.encode_calls, minilm.texts_encoded

    first = CachedEmbedder(minilm, DuckDBEmbeddingCache(db))
    v1 = first.encode(texts + texts[:2])  # repeats inside one call are embedded once
    assert first.stats()["cache_misses"] == 8 and first.stats()["cache_hits"] == 0
    assert minilm.texts_encoded - encoded0 == 6 and minilm.encode_calls - calls0 == 1

    second = CachedEmbedder(minilm, DuckDBEmbeddingCache(db))  # a new run, same file
    v2 = second.encode(texts)
    assert second.stats() == {"model_id": minilm.model_id, "cache_hits": 6, "cache_misses": 0,
                              "texts_embedded": 0}
    assert minilm.texts_encoded - encoded0 == 6 and minilm.encode_calls - calls0 == 1
    assert np.array_equal(v1[:6], v2)

    third = CachedEmbedder(minilm, DuckDBEmbeddingCache(db))  # a new partition arrives
    v3 = third.encode(texts + list(LOOSE[1:]) + [UNRELATED])
    assert third.stats()["cache_hits"] == 6 and third.stats()["cache_misses"] == 2
    assert minilm.texts_encoded - encoded0 == 8 and minilm.encode_calls - calls0 == 2
    assert np.allclose(v3[-1], minilm.encode([UNRELATED])[0], atol=1e-6)

    other = SentenceTransformerEmbedder.__new__(SentenceTransformerEmbedder)
    other.__dict__.update(minilm.__dict__, model_id="another-model")
    fourth = CachedEmbedder(other, DuckDBEmbeddingCache(db))  # a different model misses
    fourth.encode(texts[:1])
    assert fourth.stats()["cache_misses"] == 1


def test_cache_from_two_threads_never_duplicates(tmp_path):
    cache = DuckDBEmbeddingCache(tmp_path / "t.duckdb")
    items = {text_hash(str(i)): np.full(16, i, np.float32) for i in range(200)}
    errors = []

    def work():
        try:
            cache.put_many("m", items)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and cache.count("m") == 200


def run_cli(args, cwd, stdin=""):
    return subprocess.run([sys.executable, "-m", "replyassets.cli", "dedupe", *args], check=False, cwd=cwd,
                          input=stdin, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
                               "TRANSFORMERS_OFFLINE": "1", "REPLYASSETS_DATA_DIR": str(cwd)})


@pytest.mark.slow
def test_cli_prints_every_row_with_kept_duplicate_of_similarity(tmp_path):
    rows = [
        {"reply_id": "a", "reply_clean": PARAPHRASES[0][0], "valid": True, "reply_likes": 10, "reply_retweets": 1},
        {"reply_id": "b", "reply_clean": PARAPHRASES[0][1], "valid": True, "reply_likes": 50, "reply_retweets": 1},
        {"reply_id": "c", "reply_clean": PARAPHRASES[0][0].upper() + "!!", "valid": True, "reply_likes": 3},
        {"reply_id": "d", "reply_clean": UNRELATED, "valid": True, "reply_likes": 5, "extra": [1, 2]},
        {"reply_id": "e", "reply_clean": UNRELATED, "valid": False, "reply_likes": 500},
    ]
    f = tmp_path / "validated.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cache = tmp_path / "emb.duckdb"
    res = run_cli([str(f), "--cache", str(cache)], tmp_path)
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["reply_id"] for r in out] == ["a", "b", "c", "d", "e"]
    assert [r["kept"] for r in out] == [False, True, False, True, False]
    assert [r["duplicate_of"] for r in out] == ["b", None, "b", None, None]
    assert out[0]["similarity"] > 0.95 and out[0]["dup_kind"] == "semantic"
    assert out[2]["dup_kind"] == "exact"
    assert out[1]["similarity"] is None and out[4]["similarity"] is None
    assert out[3]["extra"] == [1, 2]  # input fields come back unchanged
    assert '"cache_misses": 4' in res.stderr  # every valid row's text (e is invalid)

    again = run_cli([str(f), "--cache", str(cache)], tmp_path)
    assert again.returncode == 0 and again.stdout == res.stdout
    assert '"cache_hits": 4, "cache_misses": 0' in again.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n[1, 2]\n")
    res = run_cli([str(bad), "--exact-only"], tmp_path)
    assert res.returncode == 2 and "bad.jsonl:2" in res.stderr
    res = run_cli(["-", "--exact-only"], tmp_path, stdin="\n".join(json.dumps(r) for r in rows))
    assert res.returncode == 0
    assert [json.loads(x)["kept"] for x in res.stdout.splitlines()] == [True, True, False, True, False]
    assert run_cli([str(tmp_path / "missing.jsonl")], tmp_path).returncode == 2


def test_lone_surrogates_embed_and_cache_instead_of_crashing_in_the_tokenizer(tmp_path, minilm):
    """A hand-made JSONL can carry "\\ud800": valid in a Python str, not in UTF-8. The Rust
    tokenizer raised a TypeError on it; now it is embedded as U+FFFD and cached by its own key."""
    bad = "TIL you can use pathlib to replace \ud800 here"
    cached = CachedEmbedder(minilm, DuckDBEmbeddingCache(tmp_path / "c.duckdb"))
    v = cached.encode([bad, "TIL you can use pathlib to replace \ufffd here"])
    assert v.shape == (2, 384) and np.allclose(v[0], v[1], atol=1e-6)
    assert text_hash(bad) != text_hash(bad.replace("\ud800", "\ufffd"))
    assert cached.stats()["cache_misses"] == 2
    again = CachedEmbedder(minilm, DuckDBEmbeddingCache(tmp_path / "c.duckdb"))
    assert np.array_equal(again.encode([bad]), v[:1]) and again.stats()["cache_hits"] == 1
