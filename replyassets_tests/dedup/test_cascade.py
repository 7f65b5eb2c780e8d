"""The semantic dedup cascade: static-model candidates, then the sentence model and the exact walk
on those rows only (core/dedup.py ``candidate_rows`` / ``dedupe(candidates=...)``,
scorers/static_embeddings.py). The last test measures the cascade against the full path on the
bundled sample (issue 24's bar: <= 0.5 % of rows decided differently, >= 97 % of the sentence
model's pairs at the threshold reach the walk)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from replyassets.core import dedup
from replyassets.core.dedup import (
    candidate_rows,
    cascade_choice_text,
    dedupe,
    normalize_rows,
    semantic_path_metadata,
)


def _brute(static: np.ndarray, t: float) -> np.ndarray:
    z = dedup.centred_rows(static).astype(np.float64)
    p = z @ z.T
    np.fill_diagonal(p, -np.inf)
    return (p >= t).any(axis=1)


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"reply_id": [f"r{i}" for i in range(n)], "reply_clean": [f"text {i}" for i in range(n)],
                         "reply_likes": np.arange(n, 0, -1), "reply_retweets": 0, "reply_author_followers": 0})


def _clustered(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    """A big shared component (as static embeddings have) plus pairs planted on a few rows."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32) * 0.3 + 3.0
    for i in range(0, n // 4, 2):
        x[i + 1] = x[i] + rng.standard_normal(d).astype(np.float32) * 0.02
    return x


def test_candidate_rows_are_the_rows_with_a_centred_neighbour_across_tiles():
    x = _clustered(400)
    for t in (0.3, 0.8, 0.95):
        got = candidate_rows(x, t, row_chunk=64, col_tile=96)  # several tiles, diagonal ones included
        assert np.array_equal(got, _brute(x, t)), t
    planted = np.zeros(400, bool)
    planted[: 400 // 4] = True
    assert np.array_equal(candidate_rows(x, 0.8), planted)  # only the planted pairs
    # uncentred, the shared component makes every row a candidate: why the vectors are centred
    z = normalize_rows(x)
    assert ((z @ z.T) - np.eye(400) >= 0.8).any(axis=1).all()
    assert not candidate_rows(x[:1], 0.0).any() and candidate_rows(x[:0], 0.5).size == 0


def test_cascade_embeds_only_candidates_and_keeps_the_others():
    n = 200
    static = _clustered(n)
    rng = np.random.default_rng(1)
    sentence = normalize_rows(rng.standard_normal((n, 16)).astype(np.float32))
    for i in range(0, 20, 2):  # the first ten planted pairs are sentence-model duplicates too
        sentence[i + 1] = sentence[i]
    sentence[150] = sentence[140]  # a duplicate pair the static model does not see: the cascade misses it
    df = _frame(n)
    asked: list[list[str]] = []

    def embed(texts):
        asked.append(list(texts))
        return sentence[[int(t.split()[1]) for t in texts]]

    out = dedupe(df, embed, 0.9, candidates=static, candidate_threshold=0.8)
    how = out.attrs["semantic_dedup"]
    assert len(asked) == 1 and sorted(int(t.split()[1]) for t in asked[0]) == list(range(n // 4))
    assert how["candidate_model"] == "static" and how["candidate_rows"] == n // 4 == how["embedded_rows"]
    assert how["candidate_rate"] == pytest.approx(0.25) and how["candidate_inputs"] == n
    kept = out["kept"].to_numpy()
    assert not kept[1:20:2].any() and kept[0:20:2].all() and kept[20:].all()
    assert "25.0%" in cascade_choice_text(how)
    full = dedupe(df, sentence, 0.9)
    assert (full["kept"].to_numpy() != kept).sum() == 1 and not full["kept"].iloc[150]
    # every row a candidate: exactly the full path (array or function, same keep set)
    every = dedupe(df, embed, 0.9, candidates=static, candidate_threshold=-1.0)
    assert every["kept"].equals(full["kept"]) and every["duplicate_of"].equals(full["duplicate_of"])
    assert full.attrs["semantic_dedup"]["candidate_model"] == "none"


def test_cascade_checks_its_inputs_and_steps_aside_above_its_row_limit(monkeypatch):
    df = _frame(10)
    vecs = normalize_rows(np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32))
    with pytest.raises(ValueError, match="candidate_threshold"):
        dedupe(df, vecs, 0.9, candidates=vecs)
    with pytest.raises(ValueError, match="candidate vectors shape"):
        dedupe(df, vecs, 0.9, candidates=vecs[:3], candidate_threshold=0.5)
    with pytest.raises(ValueError, match="returned shape"):
        dedupe(df, lambda texts: vecs[:2], 0.9)
    monkeypatch.setattr(dedup, "CASCADE_MAX_ROWS", 5)
    out = dedupe(df, vecs, 0.9, candidates=lambda texts: pytest.fail("not called"), candidate_threshold=0.5)
    how = out.attrs["semantic_dedup"]
    assert how["candidate_model"] == "none" and how["embedded_rows"] == 10
    assert "over the cascade's 5" in cascade_choice_text(how)


def test_no_valid_rows_embeds_nothing():
    df = _frame(3).assign(valid=False)
    out = dedupe(df, lambda texts: pytest.fail("not called"), 0.9,
                 candidates=lambda texts: pytest.fail("not called"), candidate_threshold=0.5)
    assert not out["kept"].any() and out.attrs["semantic_dedup"] == {"method": "none"}


def test_deduped_pairs_metadata_says_which_path_ran_the_candidate_rate_and_why():
    df = _frame(40)
    static = _clustered(40)
    vecs = normalize_rows(static - static.mean(axis=0))
    casc = semantic_path_metadata(dedupe(df, vecs, 0.9, candidates=static, candidate_threshold=0.8)
                                  .attrs["semantic_dedup"], "static")
    assert casc["semantic_path"] == "cascade" and casc["candidate_model"] == "static"
    assert casc["candidate_rate"] == pytest.approx(10 / 40) and casc["candidate_rows"] == 10
    assert casc["candidate_threshold"] == 0.8 and casc["semantic_rows_embedded"] == 10
    assert "cascade: static-model candidates at centred cosine >= 0.8" in casc["semantic_path_why"]
    full = semantic_path_metadata(dedupe(df, vecs, 0.9).attrs["semantic_dedup"], "none")
    assert full["semantic_path"] == "full" and "candidate_rate" not in full
    assert full["semantic_rows_embedded"] == 40 and "the default" in full["semantic_path_why"]
    assert "under 2x" in full["semantic_path_why"]
    empty = semantic_path_metadata(dedupe(df.assign(valid=False), vecs, 0.9).attrs["semantic_dedup"], "static")
    assert empty == {"semantic_path": "full", "semantic_path_why": "no valid rows", "candidate_model": "static",
                     "semantic_rows_embedded": 0}


def _sample_replies() -> pd.DataFrame:
    from replyassets.core.normalize import normalize_item
    from replyassets.settings import PROJECT_ROOT
    from replyassets.sources.replay import read_items

    rows: dict[str, dict] = {}
    for path in sorted((PROJECT_ROOT / "data" / "sample").glob("*.json*")):
        for item in read_items(path):
            rec, _ = normalize_item(item, source=path.name)
            if rec and rec["is_reply"] and rec["id"] not in rows:
                rows[rec["id"]] = {"reply_id": rec["id"], "reply_clean": rec["text"], "reply_likes": rec["likes"],
                                   "reply_retweets": rec["retweets"], "reply_author_followers": rec["author_followers"]}
    return pd.DataFrame(list(rows.values()))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_cascade_matches_the_full_path_on_the_sample(tmp_path):
    """Measured bar (issue 24) at the settings' candidate_threshold, on every distinct reply of
    the bundled sample with its engagement. The static model is distilled once per models
    folder (the session's, conftest.py): 2-3.5 minutes on 2 shared cores."""
    from replyassets.scorers.embeddings import SentenceTransformerEmbedder
    from replyassets.scorers.static_embeddings import StaticEmbedder
    from replyassets.settings import Settings, get_settings

    s = Settings().dedup
    df = _sample_replies()
    assert len(df) > 1000
    sentence = SentenceTransformerEmbedder(s.embedding_model)  # torch: no export needed
    vectors: dict[str, np.ndarray] = {}

    def embed(texts):
        todo = [t for t in dict.fromkeys(texts) if t not in vectors]
        if todo:
            vectors.update(zip(todo, sentence.encode(todo)))
        return np.stack([vectors[t] for t in texts])

    static = StaticEmbedder(s.embedding_model, models_dir=get_settings().models_dir)
    full = dedupe(df, embed, s.similarity_threshold)
    casc = dedupe(df, embed, s.similarity_threshold, candidates=static.encode,
                  candidate_threshold=s.candidate_threshold)
    how = casc.attrs["semantic_dedup"]
    differ = int((full["kept"].to_numpy() != casc["kept"].to_numpy()).sum())
    # the sentence model's pairs at the threshold among the exact survivors (all embedded by the full path)
    surv = df.loc[full["dup_kind"].fillna("").to_numpy(dtype=object) != "exact", "reply_clean"].tolist()
    x = normalize_rows(embed(surv))
    p = x @ x.T
    i, j = np.nonzero(np.triu(p >= s.similarity_threshold, 1))
    reached = candidate_rows(static.encode(surv), s.candidate_threshold)  # order-independent
    assert reached.sum() == how["candidate_rows"] and how["candidate_inputs"] == len(surv)
    recall = float((reached[i] & reached[j]).mean())
    assert i.size > 50, i.size  # the sample has semantic duplicates to find
    assert differ / len(df) <= 0.005, (differ, len(df))
    assert recall >= 0.97, (recall, i.size)
    assert how["candidate_rate"] < 0.7, how  # the cascade skips a good share of the sentence model's work


def test_static_model_is_built_once_content_addressed_and_rebuilt_when_incomplete(tmp_path, monkeypatch):
    from replyassets.scorers import static_embeddings as se

    builds: list[Path] = []

    def fake_build(source, out, pca_dims=se.PCA_DIMS):
        builds.append(out)
        (out / "model.safetensors").write_bytes(b"w" * 64)
        (out / "config.json").write_text("{}")
        return {"distill_seconds": 0.0, "pca_dims": pca_dims, "dim": pca_dims, "vocabulary": 1}

    monkeypatch.setattr(se, "build_static_model", fake_build)
    src = tmp_path / "model"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"a")
    models = tmp_path / "models"
    first = se.ensure_static_model(src, models, label="mini")
    assert first.parent == models / "static" and first.name.startswith("static-mini-")
    assert se.ensure_static_model(src, models, label="mini") == first and len(builds) == 1
    manifest = se.read_static_manifest(first)
    assert manifest["files"] == {"config.json": 2, "model.safetensors": 64} and manifest["pca_dims"] == se.PCA_DIMS
    assert not [p for p in (models / "static").iterdir() if p.name.startswith(".")]  # no temporary folder left
    (first / "model.safetensors").write_bytes(b"w")  # a truncated file: never loaded, rebuilt
    assert se.ensure_static_model(src, models, label="mini") == first and len(builds) == 2
    assert se.ensure_static_model(src, models, label="mini", pca_dims=64) != first  # another recipe, another folder
    se._fingerprint.cache_clear()
    (src / "weights.bin").write_bytes(b"b")  # another source model, another folder
    assert se.ensure_static_model(src, models, label="mini") != first and len(builds) == 4
