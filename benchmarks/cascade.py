"""Semantic dedup cascade: full sentence-model dedup against the cascade, same backend, same run.

Both paths run ``core.dedup.dedupe`` on the same frame with the same sentence embedder (the
settings' ``dedup.embedding_backend`` / ``dedup.embedding_precision``, no embedding cache):

* full: every exact survivor is embedded with all-MiniLM-L6-v2, then the exact greedy walk;
* cascade (``dedup.candidate_model: static``): a static model distilled from the same model
  (model2vec, ``scorers/static_embeddings.py``; built once under the models dir, its build
  time is reported and excluded) embeds every exact survivor, the centred static vectors
  screen for rows with a neighbour at ``dedup.candidate_threshold``, and only those rows are
  embedded with MiniLM and walked.

Wall time of each path includes the embedding (that is what the cascade saves); the models
are loaded and warmed up first. Reported per data set: wall-time ratio (target >= 2x),
candidate rate, rows decided differently (kept by one path and not the other, % of the
rows), and pair recall: of the MiniLM pairs at or above ``dedup.similarity_threshold``
among the exact survivors (from the full path's vectors), the share whose two rows both
reached the cascade's walk (only those can be found). Bar for the cascade (issue 24):
<= 0.5 % rows decided differently and >= 97 % recall.

Data sets: the bundled sample's distinct replies with their engagement (the walk order), and
the benchmark's realistic replies (``benchmarks/e2e.py``'s construction: ``synth_pairs``
recombined with sample replies, plus 5 % near-duplicates; no validation).

``--small``: 300 realistic replies and 300 sample replies (the test suite's mode,
replyassets_tests/test_benchmarks.py): the same code paths and correctness assertions
(every dropped row points at a kept row at or above the threshold, the cascade embeds only
its candidates), never a check on time or on the bar.

Usage: python benchmarks/cascade.py [--replies 20000] [--sample-rows 0 (all)] [--small]
Ends with one JSON line of figures (the CPU model and flags included).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _cpu import cpu_figures, embedding_auto_figures, print_cpu


def realistic_replies(n: int) -> pd.DataFrame:
    from e2e import sample_reply_texts, varied_replies, with_near_duplicates
    from validate import synth_pairs

    pairs = synth_pairs(n, seed=0)
    pairs = varied_replies(pairs, sample_reply_texts(), seed=0)
    pairs = with_near_duplicates(pairs, seed=0)
    return pd.DataFrame({"reply_id": pairs["reply_id"], "reply_clean": pairs["reply"],
                         "reply_likes": pairs["reply_likes"], "reply_retweets": pairs["reply_retweets"],
                         "reply_author_followers": pairs["reply_author_followers"]})


def sample_frame(rows: int) -> pd.DataFrame:
    from embed import sample_replies

    df = sample_replies()
    return df if rows <= 0 else df.iloc[:rows].reset_index(drop=True)


class Recorder:
    """An embedding function that remembers which texts it embedded and their vectors."""

    def __init__(self, encode):
        self.encode = encode
        self.vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts):
        vecs = self.encode(list(texts))
        self.vectors.update(zip(texts, vecs))
        return vecs


def pairs_at(x: np.ndarray, threshold: float, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    from replyassets.core.dedup import _screen

    return _screen(x, x, threshold, upper_only=True, row_chunk=chunk)


def check(out: pd.DataFrame, vectors: dict[str, np.ndarray], threshold: float) -> None:
    kept = out["kept"].to_numpy()
    ids = out["reply_id"].astype(str).to_numpy()
    pos = {r: i for i, r in enumerate(ids)}
    texts = out["reply_clean"].to_numpy(dtype=object)
    for i in np.flatnonzero(~kept):
        o = pos[out["duplicate_of"].iloc[i]]
        assert kept[o], "a dropped row points at a row that was not kept"
        if out["dup_kind"].iloc[i] == "semantic":
            a, b = vectors[texts[i]], vectors[texts[o]]
            cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
            assert cos >= threshold - 1e-4, f"semantic duplicate under the threshold ({cos:.4f})"


def compare(name: str, df: pd.DataFrame, sentence, static, s, figures: dict) -> None:
    from replyassets.core.dedup import cascade_choice_text, dedupe, normalize_rows

    thr, cthr = s.dedup.similarity_threshold, s.dedup.candidate_threshold
    full_enc, casc_enc = Recorder(sentence.encode), Recorder(sentence.encode)
    t = time.perf_counter()
    full = dedupe(df, full_enc, threshold=thr)
    t_full = time.perf_counter() - t
    static_calls = {"s": 0.0}

    def static_encode(texts):
        t0 = time.perf_counter()
        v = static.encode(texts)
        static_calls["s"] += time.perf_counter() - t0
        return v

    t = time.perf_counter()
    casc = dedupe(df, casc_enc, threshold=thr, candidates=static_encode, candidate_threshold=cthr)
    t_casc = time.perf_counter() - t
    how = casc.attrs["semantic_dedup"]
    check(full, full_enc.vectors, thr)
    check(casc, casc_enc.vectors, thr)
    assert how["candidate_model"] == "static" and how["embedded_rows"] == len(casc_enc.vectors) <= len(full_enc.vectors)
    assert set(casc_enc.vectors) <= set(full_enc.vectors), "the cascade embedded a text the full path did not"
    # pairs at or above the threshold among the exact survivors (the full path embedded all of them)
    texts = list(full_enc.vectors)
    x = normalize_rows(np.stack([full_enc.vectors[t] for t in texts])) if texts else np.zeros((0, 1), np.float32)
    pi, pj = pairs_at(x, thr)
    reached = np.array([t in casc_enc.vectors for t in texts], dtype=bool)
    recall = float((reached[pi] & reached[pj]).mean()) if pi.size else 1.0
    differ = int((full["kept"].to_numpy() != casc["kept"].to_numpy()).sum())
    n = len(df)
    ratio = t_full / t_casc if t_casc > 0 else float("inf")
    print(f"{name}: {n:,} rows, {len(texts):,} exact survivors, {pi.size:,} MiniLM pairs >= {thr}; full {t_full:.1f} s, "
          f"cascade {t_casc:.1f} s ({ratio:.2f}x; static encode {static_calls['s']:.1f} s); "
          f"{cascade_choice_text(how)}; rows decided differently {differ} ({differ / max(1, n):.2%}), "
          f"pair recall {recall:.4f}", flush=True)
    meets = bool(differ / max(1, n) <= 0.005 and recall >= 0.97)
    figures.update({f"{name}_rows": n, f"{name}_survivors": len(texts), f"{name}_minilm_pairs": int(pi.size),
                    f"{name}_full_s": round(t_full, 2), f"{name}_cascade_s": round(t_casc, 2),
                    f"{name}_static_encode_s": round(static_calls["s"], 2), f"{name}_speedup": round(ratio, 2),
                    f"{name}_candidate_rate": round(how["candidate_rate"], 4),
                    f"{name}_rows_decided_differently": differ,
                    f"{name}_rows_decided_differently_pct": round(differ / max(1, n) * 100, 3),
                    f"{name}_pair_recall": round(recall, 4), f"{name}_meets_bar": meets,
                    f"{name}_meets_2x": bool(ratio >= 2.0),
                    f"{name}_full_kept": int(full["kept"].sum()), f"{name}_cascade_kept": int(casc["kept"].sum())})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replies", type=int, default=None, help="realistic replies (default 20000; --small: 300)")
    ap.add_argument("--sample-rows", type=int, default=None, help="sample replies, 0 = all (--small: 300)")
    ap.add_argument("--small", action="store_true", help="a few hundred rows: the test suite's mode")
    args = ap.parse_args()
    replies = args.replies if args.replies is not None else (300 if args.small else 20_000)
    sample_rows = args.sample_rows if args.sample_rows is not None else (300 if args.small else 0)

    from replyassets.scorers.embeddings import SentenceTransformerEmbedder
    from replyassets.scorers.static_embeddings import StaticEmbedder
    from replyassets.settings import get_settings

    s = get_settings()
    cpu = cpu_figures()
    auto = embedding_auto_figures(s.dedup.embedding_backend)
    print_cpu(cpu, auto)
    sentence = SentenceTransformerEmbedder(s.dedup.embedding_model, backend=s.dedup.embedding_backend,
                                           precision=s.dedup.embedding_precision, batch_size=s.dedup.batch_size,
                                           export_dir=s.models_dir / "embeddings")
    static = StaticEmbedder(s.dedup.embedding_model, models_dir=s.models_dir)
    t = time.perf_counter()
    sentence.encode(["warm up: the export (once per model) and the first shapes"] * 8)
    t_sentence = time.perf_counter() - t
    t = time.perf_counter()
    static.encode(["warm up: the distillation (once per model)"])
    t_static = time.perf_counter() - t
    print(f"models ready: {sentence.model_id} in {t_sentence:.1f} s, {static.model_id} in {t_static:.1f} s "
          f"(excluded; built once under {s.models_dir})", flush=True)
    figures: dict = {"benchmark": "cascade", "small": args.small, "threshold": s.dedup.similarity_threshold,
                     "candidate_threshold": s.dedup.candidate_threshold, "sentence_model": sentence.model_id,
                     "static_model": static.model_id, "sentence_ready_s": round(t_sentence, 1),
                     "static_ready_s": round(t_static, 1), "cpu_count": os.cpu_count() or 0,
                     "load_average_start": round(os.getloadavg()[0], 2)}
    compare("sample", sample_frame(sample_rows), sentence, static, s, figures)
    compare("realistic", realistic_replies(replies), sentence, static, s, figures)
    figures.update({"load_average_end": round(os.getloadavg()[0], 2), "cpu": cpu, "embedding_auto": auto})
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
