"""Semantic dedup: the prototype's loop (docs/design.md, "Baselines") vs ours on the same embeddings.

Random 384-d unit vectors with planted near-duplicates (10 % of rows are noisy copies of
another row, cosine roughly 0.85-0.99 to their source, so pairs fall on both sides of the
0.9 threshold); rows are in walk order (a random permutation of the copies). Embedding
time is excluded everywhere.

- 2,000 / 10,000 / 20,000 rows: ``seed_greedy_dedup`` (the prototype's loop, each row against
  every kept row with one numpy matrix-vector product, on one BLAS thread: with two threads
  on this shared 2-core machine the per-row products ran 10-70x slower, so one thread is
  the baseline's best setting) vs ``greedy_exact`` (blocked screens with the sound
  principal-axes bound, k chosen per input; also timed with the plain full product,
  ``prefilter_dims=None``) and ``greedy_lsh`` (approximate candidates, exact verification);
  the keep sets are asserted identical (exact: always; lsh: checked, reported).
- 2,000 rows also: the prototype's loop exactly as written (one Python-level dot per pair).
- ``--minilm N``: also real all-MiniLM-L6-v2 embeddings (packaged model, offline) of N
  texts made from the bundled sample's tweets and replies (originals, then recombined
  halves of two random replies), embedding time excluded: exact path with and without the
  screen, and the per-row reference loop; same keep set asserted.
- 100,000 and 1,000,000 rows: ours alone: ``dedupe`` on a DataFrame (walk order, exact
  keys, then the LSH path, which ``auto`` picks above 50,000 rows) is timed; ``greedy_lsh``
  is run again with the same seed to expose its verified pairs; recall = found / true duplicate pairs,
  where the true pairs are every planted pair whose exact similarity is >= the threshold
  (unrelated random rows have cosine ~N(0, 0.05), never near 0.9).

Usage: python benchmarks/dedup.py [--sizes 2000,10000,20000] [--big 100000,1000000] [--minilm 20000]
Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from replyassets.core.dedup import (
    dedupe,
    exact_similarity,
    greedy_exact,
    greedy_lsh,
    normalize_rows,
    seed_greedy_dedup,
)

THRESHOLD = 0.9


def planted(n: int, d: int = 384, frac: float = 0.1, seed: int = 0):
    """(x in walk order, groups): groups are lists of walk positions planted together."""
    rng = np.random.default_rng(seed)
    nb = n - int(n * frac)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[:nb] /= np.linalg.norm(x[:nb], axis=1, keepdims=True)
    src = rng.integers(0, nb, n - nb)
    sigma = rng.uniform(0.14, 0.62, n - nb).astype(np.float32)[:, None]  # cos ~ 1/sqrt(1+s^2)
    x[nb:] = x[src] + sigma * x[nb:] / np.sqrt(d)
    perm = rng.permutation(n)  # perm[w] = generated row placed at walk position w
    where = np.empty(n, dtype=np.int64)
    where[perm] = np.arange(n)
    members: dict[int, list[int]] = {}
    for k, s in enumerate(src.tolist()):
        members.setdefault(s, [int(where[s])]).append(int(where[nb + k]))
    return normalize_rows(x[perm]), list(members.values())


def true_pairs(x: np.ndarray, groups) -> set[tuple[int, int]]:
    out = set()
    for g in groups:
        for a, b in combinations(sorted(g), 2):
            if exact_similarity(x[a], x[b]) >= THRESHOLD:
                out.add((a, b))
    return out


def literal_seed_loop(x: np.ndarray, threshold: float) -> list[int]:
    """The prototype's loop as written: one Python-level cosine per (row, kept row) pair."""
    keep: list[int] = []
    for i in range(x.shape[0]):
        e = x[i]
        if all(float(np.dot(e, x[j])) < threshold for j in keep):
            keep.append(i)
    return keep


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


def timed(fn, *a, **k):
    t = time.perf_counter()
    r = fn(*a, **k)
    return r, time.perf_counter() - t


def _strings(node, out: list[str]) -> None:
    """Every text field of an export item, whatever its format (apidojo, legacy, twscrape...)."""
    if isinstance(node, dict):
        for key, v in node.items():
            if isinstance(v, str) and key in {"text", "full_text", "fullText", "rawContent", "tweet", "reply"}:
                out.append(v)
            else:
                _strings(v, out)
    elif isinstance(node, list):
        for v in node:
            _strings(v, out)


def minilm_texts(n: int) -> list[str]:
    """n texts from the bundled sample: every tweet and reply once, then recombined halves."""
    texts: list[str] = []
    for f in sorted((Path(__file__).resolve().parents[1] / "data" / "sample").iterdir()):
        raw = f.read_text(encoding="utf-8")
        try:
            items = json.loads(raw)
        except json.JSONDecodeError:
            items = []
            for line in raw.splitlines():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        _strings(items, texts)
    texts = list(dict.fromkeys(t for t in texts if len(t) >= 20))
    rng = np.random.default_rng(0)
    words = [t.split() for t in texts]
    out = texts[:n]
    while len(out) < n:
        a, b = rng.integers(0, len(words), 2)
        out.append(" ".join(words[a][: max(1, len(words[a]) // 2)] + words[b][len(words[b]) // 2:]))
    return out


def minilm(n: int, figures: dict) -> None:
    from replyassets.scorers.embeddings import SentenceTransformerEmbedder

    texts = minilm_texts(n)
    emb, t_embed = timed(SentenceTransformerEmbedder().encode, texts)
    x = normalize_rows(emb)[np.random.default_rng(1).permutation(n)]
    with _one_blas_thread():
        ref, t_seed = timed(seed_greedy_dedup, x, np.arange(n), THRESHOLD)
    ex, t_exact = timed(greedy_exact, x, THRESHOLD)
    fp, t_full = timed(greedy_exact, x, THRESHOLD, prefilter_dims=None)
    mask = np.zeros(n, dtype=bool)
    mask[ref] = True
    assert np.array_equal(ex.kept, mask) and np.array_equal(fp.kept, mask), "MiniLM keep sets differ"
    print(f"all-MiniLM-L6-v2, {n} sample texts (embedded in {t_embed:.0f} s, excluded): per-row seed "
          f"loop {t_seed:.2f} s, exact {t_exact:.3f} s (k={ex.info['prefilter_dims']}, "
          f"{ex.info['screened_pairs']} pairs checked in full), full product {t_full:.3f} s; "
          f"{int(mask.sum())} kept")
    figures.update({f"minilm_rowvec_seconds_{n}": round(t_seed, 3), f"minilm_exact_seconds_{n}": round(t_exact, 3),
                    f"minilm_full_product_seconds_{n}": round(t_full, 3),
                    f"minilm_screen_dims_{n}": ex.info["prefilter_dims"], f"minilm_kept_{n}": int(mask.sum())})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2000,10000,20000")
    ap.add_argument("--big", default="100000,1000000")
    ap.add_argument("--minilm", type=int, default=0,
                    help="also dedup N real all-MiniLM-L6-v2 embeddings of sample texts (0: skip)")
    ap.add_argument("--literal-max", type=int, default=20000,
                    help="run the prototype's per-pair loop as written up to this many rows")
    args = ap.parse_args()
    figures: dict[str, float | int | bool | str] = {"threshold": THRESHOLD, "dim": 384,
                                                    "cpu_count": os.cpu_count() or 0}
    print(f"{'rows':>9} {'seed loop s':>12} {'exact s':>9} {'x':>7} {'lsh s':>8} {'x':>7} {'kept':>7} "
          f"lsh-same  full-product s  k  screened")
    for n in [int(s) for s in args.sizes.split(",") if s]:
        x, groups = planted(n, seed=n)
        with _one_blas_thread():  # the per-row loop is faster on one thread (measured)
            ref, t_seed = timed(seed_greedy_dedup, x, np.arange(n), THRESHOLD)
        ex, t_exact = timed(greedy_exact, x, THRESHOLD)
        fp, t_full = timed(greedy_exact, x, THRESHOLD, prefilter_dims=None)
        ls, t_lsh = timed(greedy_lsh, x, THRESHOLD)
        ref_mask = np.zeros(n, dtype=bool)
        ref_mask[ref] = True
        assert np.array_equal(ex.kept, ref_mask), f"exact keep set differs from the seed loop at {n}"
        assert np.array_equal(fp.kept, ref_mask), f"full-product keep set differs at {n}"
        same_lsh = bool(np.array_equal(ls.kept, ref_mask))
        figures[f"lsh_rows_decided_differently_{n}"] = int((ls.kept != ref_mask).sum())
        if n <= args.literal_max:  # the prototype's loop as written: one cosine per (row, kept row) pair
            lit, t_lit = timed(literal_seed_loop, x, THRESHOLD)
            assert lit == ref.tolist(), "per-pair loop and per-row loop disagree"
            print(f"{n:>9} per-pair seed loop (as written): {t_lit:.2f} s; exact path "
                  f"{t_lit / t_exact:.0f}x, lsh path {t_lit / t_lsh:.0f}x faster")
            # speedup_N: against the prototype's loop as written (docs/design.md, "Baselines");
            # speedup_rowvec_N: against a per-row numpy rewrite of it (a stronger baseline).
            figures.update({f"literal_seed_seconds_{n}": round(t_lit, 3),
                            f"speedup_{n}": round(t_lit / t_exact, 1),
                            f"speedup_vs_literal_{n}": round(t_lit / t_exact, 1)})
        print(f"{n:>9} {t_seed:>12.2f} {t_exact:>9.3f} {t_seed / t_exact:>7.1f} {t_lsh:>8.3f} "
              f"{t_seed / t_lsh:>7.1f} {int(ref_mask.sum()):>7} {same_lsh!s:>8} {t_full:>14.3f} "
              f"{ex.info['prefilter_dims']:>3} {ex.info['screened_pairs']:>9}")
        figures.update({f"seed_seconds_{n}": round(t_seed, 3), f"exact_seconds_{n}": round(t_exact, 3),
                        f"lsh_seconds_{n}": round(t_lsh, 3), f"speedup_rowvec_{n}": round(t_seed / t_exact, 1),
                        f"speedup_lsh_{n}": round(t_seed / t_lsh, 1), f"lsh_same_keep_set_{n}": same_lsh,
                        f"kept_{n}": int(ref_mask.sum()), f"full_product_seconds_{n}": round(t_full, 3),
                        f"screen_dims_{n}": ex.info["prefilter_dims"]})
    if args.minilm:
        minilm(args.minilm, figures)
    print(f"{'rows':>9} {'dedupe s':>8} {'lsh s':>8} {'true pairs':>11} {'recall':>8} {'kept':>9} tables x bits")
    for n in [int(s) for s in args.big.split(",") if s]:
        x, groups = planted(n, seed=n)
        # the whole DataFrame API (walk order, exact keys, semantic step) on distinct texts
        df = pd.DataFrame({"reply_id": [f"r{i}" for i in range(n)],
                           "reply_clean": [f"reply number {i}" for i in range(n)],
                           "reply_likes": np.arange(n, 0, -1), "reply_retweets": 0,
                           "reply_author_followers": 0, "valid": True})
        out, t = timed(dedupe, df, x, THRESHOLD)  # auto: lsh above 50,000 rows
        res, t_sem = timed(greedy_lsh, x, THRESHOLD)  # same seed: the same pairs, exposed
        assert np.array_equal(out["kept"].to_numpy(), res.kept)
        truth = true_pairs(x, groups)
        ei, ej = res.pairs
        found = set(zip(ei.tolist(), ej.tolist()))
        recall = len(truth & found) / max(1, len(truth))
        print(f"{n:>9} {t:>8.1f} {t_sem:>8.1f} {len(truth):>11} {recall:>8.4f} {int(res.kept.sum()):>9} "
              f"{res.info['lsh_tables']} x {res.info['lsh_bits']}")
        figures.update({f"seconds_{n}": round(t, 2), f"semantic_seconds_{n}": round(t_sem, 2),
                        f"recall_{n}": round(recall, 5),
                        f"true_pairs_{n}": len(truth), f"kept_{n}": int(res.kept.sum()),
                        f"lsh_tables_{n}": res.info["lsh_tables"], f"lsh_bits_{n}": res.info["lsh_bits"],
                        f"lsh_raw_pairs_{n}": res.info["lsh_raw_pairs"]})
        del x, res, out, df
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
