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
- 100,000 and 1,000,000 rows: ours alone. ``dedupe`` on a DataFrame (walk order, exact
  keys, then the semantic step with ``method="auto"``) is timed, and the path ``auto`` chose
  is reported with its cost estimates (``estimate_costs``: above ``ann_threshold_rows`` it
  runs whichever path it predicts faster; on these random vectors exact at 100,000 rows, LSH
  at 1,000,000). The LSH path is then timed explicitly (``dedupe(..., method="lsh")``, unless
  ``auto`` already ran it) and ``greedy_lsh`` is run again with the same seed to expose its
  verified pairs (same keep set asserted); recall = found / true duplicate pairs, where the
  true pairs are every planted pair whose exact similarity is >= the threshold (unrelated
  random rows have cosine ~N(0, 0.05), never near 0.9). Whatever path ``auto`` chose, its keep
  set is checked: no two kept rows form a true or a verified pair, and every dropped row
  points at a kept row at or above the threshold. When ``auto`` chose exact, the rows the LSH
  path decided differently are counted.
- ``--small``: seconds, not minutes (the test suite runs it, replyassets_tests/test_benchmarks.py):
  1,000 rows (the per-pair loop too), 12,000 rows for the large-size section with
  ``--ann-threshold-rows 6000`` so ``auto`` still estimates both paths; same assertions.

Usage: python benchmarks/dedup.py [--small] [--sizes 2000,10000,20000] [--big 100000,1000000]
       [--minilm 20000] [--ann-threshold-rows 50000]
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

from _cpu import cpu_figures, embedding_auto_figures, print_cpu

from replyassets.core.dedup import (
    dedupe,
    exact_similarity,
    greedy_exact,
    greedy_lsh,
    method_choice_text,
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


def check_keep_set(out: pd.DataFrame, x: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Whatever path ran: no two kept rows form one of ``pairs`` (pairs known to be at or
    above the threshold), and every dropped row points at an earlier, kept row at or above it."""
    kept = out["kept"].to_numpy()
    for a, b in pairs:
        assert not (kept[a] & kept[b]).any(), "two kept rows are duplicates of each other"
    dropped = np.flatnonzero(~kept)
    owner = out["duplicate_of"].to_numpy(dtype=object)[dropped]
    assert all(isinstance(o, str) for o in owner), "a dropped row has no duplicate_of"
    owner = np.array([int(o[1:]) for o in owner], dtype=np.int64)  # reply ids are r<row>
    assert kept[owner].all(), "a dropped row points at a row that was not kept"
    assert (owner < dropped).all(), "a dropped row points at a later row in walk order"
    for c in range(0, dropped.size, 65536):
        d, o = dropped[c:c + 65536], owner[c:c + 65536]
        sims = np.einsum("ij,ij->i", x[d].astype(np.float64), x[o].astype(np.float64))
        assert (sims >= THRESHOLD - 1e-6).all(), "a dropped row is under the threshold to its survivor"
        reported = out["similarity"].to_numpy(dtype=np.float64, na_value=np.nan)[d]
        assert np.allclose(reported, sims, atol=1e-4), "reported similarity differs from the vectors'"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true",
                    help="seconds, not minutes: 1,000 rows, 12,000 in the large section (the test suite's mode)")
    ap.add_argument("--sizes", default=None, help="default 2000,10000,20000 (--small: 1000)")
    ap.add_argument("--big", default=None, help="default 100000,1000000 (--small: 12000)")
    ap.add_argument("--minilm", type=int, default=0,
                    help="also dedup N real all-MiniLM-L6-v2 embeddings of sample texts (0: skip)")
    ap.add_argument("--literal-max", type=int, default=None,
                    help="run the prototype's per-pair loop as written up to this many rows (default 20000; "
                         "--small: 1000)")
    ap.add_argument("--ann-threshold-rows", type=int, default=None,
                    help="dedupe's ann_threshold_rows in the large section: up to it auto runs exact without "
                         "estimating (default 50000, dedupe's; --small: 6000)")
    args = ap.parse_args()
    sizes = args.sizes if args.sizes is not None else ("1000" if args.small else "2000,10000,20000")
    big = args.big if args.big is not None else ("12000" if args.small else "100000,1000000")
    literal_max = args.literal_max if args.literal_max is not None else (1000 if args.small else 20000)
    ann_rows = args.ann_threshold_rows if args.ann_threshold_rows is not None else (6_000 if args.small else 50_000)
    cpu = cpu_figures()
    auto = embedding_auto_figures()
    print_cpu(cpu, auto)
    figures: dict = {"benchmark": "dedup", "small": args.small, "threshold": THRESHOLD, "dim": 384,
                     "cpu_count": os.cpu_count() or 0, "ann_threshold_rows": ann_rows}
    print(f"{'rows':>9} {'seed loop s':>12} {'exact s':>9} {'x':>7} {'lsh s':>8} {'x':>7} {'kept':>7} "
          f"lsh-same  full-product s  k  screened")
    for n in [int(s) for s in sizes.split(",") if s]:
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
        if n <= literal_max:  # the prototype's loop as written: one cosine per (row, kept row) pair
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
    print(f"{'rows':>9} {'auto':>5} {'est exact s':>11} {'est lsh s':>10} {'dedupe s':>9} {'lsh dedupe s':>12} "
          f"{'lsh pairs s':>11} {'true pairs':>11} {'recall':>8} {'kept':>9} {'lsh differs':>11} tables x bits")
    for n in [int(s) for s in big.split(",") if s]:
        x, groups = planted(n, seed=n)
        # the whole DataFrame API (walk order, exact keys, semantic step) on distinct texts; the
        # likes make the walk order the row order, so row i of the result is row i of x
        df = pd.DataFrame({"reply_id": [f"r{i}" for i in range(n)],
                           "reply_clean": [f"reply number {i}" for i in range(n)],
                           "reply_likes": np.arange(n, 0, -1), "reply_retweets": 0,
                           "reply_author_followers": 0, "valid": True})
        out, t = timed(dedupe, df, x, THRESHOLD, ann_threshold_rows=ann_rows)  # method="auto"
        how = out.attrs["semantic_dedup"]
        chosen = how["method"]
        est = {k[len("auto_"):]: v for k, v in how.items() if k.startswith("auto_")}
        assert chosen in ("exact", "lsh"), f"auto ran {chosen!r}"
        assert bool(est) == (n > ann_rows), "auto estimates the paths' costs exactly above ann_threshold_rows"
        if est:  # auto runs the path it predicts to be faster (exact on ties)
            assert chosen == ("lsh" if est["lsh_est_s"] < est["exact_est_s"] else "exact"), (chosen, est)
        if chosen == "lsh":
            out_lsh, t_lsh = out, t
        else:  # the LSH path, explicitly
            out_lsh, t_lsh = timed(dedupe, df, x, THRESHOLD, method="lsh")
        assert out_lsh.attrs["semantic_dedup"]["method"] == "lsh"
        res, t_sem = timed(greedy_lsh, x, THRESHOLD)  # same seed: the same pairs, exposed
        lsh_kept = out_lsh["kept"].to_numpy()
        assert np.array_equal(lsh_kept, res.kept), "dedupe(method='lsh') and greedy_lsh disagree"
        truth = true_pairs(x, groups)
        ei, ej = res.pairs
        found = set(zip(ei.tolist(), ej.tolist()))
        assert all(exact_similarity(x[a], x[b]) >= THRESHOLD - 1e-6
                   for a, b in list(found)[:: max(1, len(found) // 2000)]), "LSH verified a pair under the threshold"
        recall = len(truth & found) / max(1, len(truth))
        tt = np.array(sorted(truth), dtype=np.int64).reshape(-1, 2)
        # exact keeps no two rows of a true pair; LSH can miss a true pair, never invent one
        check_keep_set(out, x, [(ei, ej)] + ([(tt[:, 0], tt[:, 1])] if chosen == "exact" else []))
        if chosen != "lsh":
            check_keep_set(out_lsh, x, [(ei, ej)])
        kept = out["kept"].to_numpy()
        differs = int((kept != lsh_kept).sum())
        est_e, est_l = est.get("exact_est_s"), est.get("lsh_est_s")
        print(f"{n:>9} {chosen:>5} {est_e if est_e is not None else '-':>11} {est_l if est_l is not None else '-':>10} "
              f"{t:>9.1f} {t_lsh:>12.1f} {t_sem:>11.1f} {len(truth):>11} {recall:>8.4f} {int(kept.sum()):>9} "
              f"{differs:>11} {res.info['lsh_tables']} x {res.info['lsh_bits']}")
        if est:
            ran = {"exact": None, "lsh": t_lsh} if chosen == "lsh" else {"exact": t, "lsh": t_lsh}
            print(f"{'':>9} auto chose {chosen}: {method_choice_text(how)}; measured "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in ran.items() if v is not None))
        figures.update({f"auto_method_{n}": chosen, f"seconds_{n}": round(t, 2),
                        **{f"auto_{k}_{n}": v for k, v in est.items()},
                        f"lsh_dedupe_seconds_{n}": round(t_lsh, 2), f"semantic_seconds_{n}": round(t_sem, 2),
                        f"recall_{n}": round(recall, 5), f"true_pairs_{n}": len(truth),
                        f"kept_{n}": int(kept.sum()), f"lsh_kept_{n}": int(lsh_kept.sum()),
                        f"lsh_rows_decided_differently_{n}": differs,
                        f"lsh_tables_{n}": res.info["lsh_tables"], f"lsh_bits_{n}": res.info["lsh_bits"],
                        f"lsh_raw_pairs_{n}": res.info["lsh_raw_pairs"]})
        if chosen == "exact":
            figures[f"exact_dedupe_seconds_{n}"] = round(t, 2)
        del x, res, out, out_lsh, df
    figures.update({"cpu": cpu, "embedding_auto": auto})
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
