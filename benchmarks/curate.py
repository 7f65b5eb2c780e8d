"""Curation speed: curate() on a large candidate pool, and the semantic-duplicate check
against the prototype's pairwise Python loop (the baseline, docs/design.md "Baselines"), both measured in this run.

    .venv/bin/python benchmarks/curate.py [--pool 50000] [--set 1200]

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
    ap.add_argument("--pool", type=int, default=50_000)
    ap.add_argument("--set", type=int, default=1200)
    args = ap.parse_args()

    pool = make_deduped(args.pool // 5, 5)
    settings = CurationSettings(target_pairs=args.set, max_pairs=args.set)
    t = time.perf_counter()
    curated = curate(pool, None, settings)
    curate_s = time.perf_counter() - t

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

    print(f"curate(): {args.pool} candidates -> {len(curated)} pairs in {curate_s:.2f} s")
    print(f"export_training_files(): {export_s:.3f} s")
    print(f"semantic-duplicate check on {len(curated)} rows: ours {ours_s:.3f} s | seed pairwise loop "
          f"(baseline, extrapolated from {n_base}) {base_s:.1f} s | speed-up {base_s / ours_s:.0f}x "
          f"(pairs over 0.9: ours {ours.metadata['pairs_over']}, baseline slice {base_over})")
    print(f"all {len(CURATED_CHECKS)} curated checks: {all_checks_s:.3f} s")
    print(json.dumps({
        "pool_rows": args.pool, "curated_rows": len(curated), "curate_s": round(curate_s, 3),
        "export_s": round(export_s, 3), "semantic_check_s": round(ours_s, 4),
        "seed_loop_baseline_s": round(base_s, 2), "speedup": round(base_s / ours_s, 1),
        "all_checks_s": round(all_checks_s, 3),
    }))


if __name__ == "__main__":
    main()
