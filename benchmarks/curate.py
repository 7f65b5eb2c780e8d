"""Curation speed: curate() on a large candidate pool, and the semantic-duplicate check
against the prototype's pairwise Python loop (the baseline, docs/design.md "Baselines"), both measured in this run.

    .venv/bin/python benchmarks/curate.py [--pool 50000] [--set 1200] [--small]

``--small``: a 2,000-row pool and a 200-row set (the test suite's mode,
replyassets_tests/test_benchmarks.py). Every mode asserts the set's size and that the
semantic-duplicate check counts the same pairs over 0.9 as the prototype's loop, on the
set's random embeddings (none) and on a copy with planted near-duplicates.
Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _cpu import cpu_figures, print_cpu

from replyassets.core.curate import curate, export_training_files
from replyassets.core.quality_checks import (
    CURATED_CHECKS,
    check_no_semantic_duplicates,
    run_curated_checks,
)
from replyassets.settings import CurationSettings, Settings
from replyassets_tests.curate.data import make_deduped


def seed_loop_max_similarity(emb: np.ndarray, threshold: float) -> int:
    """The prototype's dedup check: every pair, one cosine at a time (returns pairs over threshold)."""
    over = 0
    for i in range(len(emb)):
        for j in range(i + 1, len(emb)):
            a, b = emb[i], emb[j]
            if float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) >= threshold:
                over += 1
    return over


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=None, help="candidate pool rows (default 50000; --small: 2000)")
    ap.add_argument("--set", type=int, default=None, help="curated set size (default 1200; --small: 200)")
    ap.add_argument("--small", action="store_true", help="a small pool and set: the test suite's mode")
    args = ap.parse_args()
    args.pool = args.pool if args.pool is not None else (2000 if args.small else 50_000)
    args.set = args.set if args.set is not None else (200 if args.small else 1200)
    cpu = cpu_figures()
    print_cpu(cpu)

    pool = make_deduped(args.pool // 5, 5)
    settings = CurationSettings(target_pairs=args.set, max_pairs=args.set)
    t = time.perf_counter()
    curated = curate(pool, None, settings)
    curate_s = time.perf_counter() - t
    assert 0 < len(curated) <= args.set, f"curate() returned {len(curated)} rows for a set of {args.set}"

    import tempfile
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        export_training_files(curated, Path(d), settings)
        export_s = time.perf_counter() - t

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(curated), 384)).astype("float32")
    full = Settings(curation=settings)
    t = time.perf_counter()
    ours = check_no_semantic_duplicates(curated, full, embeddings=emb)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    run_curated_checks(curated, full, embeddings=emb)
    all_checks_s = time.perf_counter() - t
    n_base = min(len(curated), 400)  # the loop is O(n^2) in Python: time a slice, scale by pair count
    t = time.perf_counter()
    base_over = seed_loop_max_similarity(emb[:n_base], 0.9)
    base_s = (time.perf_counter() - t) * (len(curated) * (len(curated) - 1)) / (n_base * (n_base - 1))
    # same answer as the loop: none on random vectors, and the same count with planted near-duplicates
    slice_check = check_no_semantic_duplicates(curated.iloc[:n_base], full, embeddings=emb[:n_base])
    assert slice_check.metadata["pairs_over"] == base_over == 0, "pairs over 0.9 among random vectors"
    planted = emb[:n_base].copy()
    planted[1::7] = planted[0:-1:7][: len(planted[1::7])] + rng.normal(scale=0.02, size=(len(planted[1::7]), 384))
    planted_check = check_no_semantic_duplicates(curated.iloc[:n_base], full, embeddings=planted)
    planted_loop = seed_loop_max_similarity(planted, 0.9)
    assert planted_loop > 0 and planted_check.metadata["pairs_over"] == planted_loop, \
        f"semantic check found {planted_check.metadata['pairs_over']} pairs over 0.9, the loop {planted_loop}"
    assert not planted_check.passed, "the semantic check passed a set with near-duplicates"

    print(f"curate(): {args.pool} candidates -> {len(curated)} pairs in {curate_s:.2f} s")
    print(f"export_training_files(): {export_s:.3f} s")
    print(f"semantic-duplicate check on {len(curated)} rows: ours {ours_s:.3f} s | seed pairwise loop "
          f"(baseline, extrapolated from {n_base}) {base_s:.1f} s | speed-up {base_s / ours_s:.0f}x "
          f"(pairs over 0.9: ours {ours.metadata['pairs_over']}, baseline slice {base_over})")
    print(f"all {len(CURATED_CHECKS)} curated checks: {all_checks_s:.3f} s")
    print(json.dumps({
        "benchmark": "curate", "pool_rows": args.pool, "curated_rows": len(curated), "curate_s": round(curate_s, 3),
        "export_s": round(export_s, 3), "semantic_check_s": round(ours_s, 4),
        "seed_loop_baseline_s": round(base_s, 2), "speedup": round(base_s / ours_s, 1),
        "all_checks_s": round(all_checks_s, 3), "small": args.small, "planted_pairs_over": planted_loop,
        "cpu": cpu,
    }))


if __name__ == "__main__":
    main()
