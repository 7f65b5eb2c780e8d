"""End to end at scale: N varied replies through validation (lingua + the offline toxicity
scorer, the local profile's rules) and dedup with embeddings (the configured backend, exact
keys then semantic at the profile's threshold): wall time per stage and peak memory.

Replies: 72 % recombined real replies of the bundled sample (the first words of one, the
last words of another: distinct sentences, as in a real collection), the rest built as in
benchmarks/validate.py (non-English, spam, URLs, contacts, generic praise: templated, each
made unique by a tail of words, so they form clusters of near-identical replies as
templated spam does), plus 5 % near-duplicates (an earlier reply with "!!" or a prefix);
5 replies per tweet.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/e2e.py --replies 1000000 [--chunk 50000]
        [--backend openvino|torch|onnx] [--small]

``--small``: 600 replies in chunks of 300, a 50-text baseline (the test suite's mode,
replyassets_tests/test_benchmarks.py). Every mode checks the dedup result: one row per valid
reply, kept <= valid <= rows in, and every dropped reply points at a kept one. The JSON line
records the CPU (model, AVX2 / AVX-512 / VNNI / AMX flags) and the precision the embedder's
``auto`` picked on it.

The baseline next to it is the same pipeline with PyTorch embeddings on the first
``--baseline-replies`` valid replies (embedding only: validation and dedup are shared code).
Peak memory is this process's maximum resident set size. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cpu import cpu_figures, print_cpu
from validate import synth_pairs


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sample_reply_texts() -> list[str]:
    """The bundled sample's distinct replies, normalized as collection reads them."""
    from replyassets.core.normalize import normalize_item
    from replyassets.sources.replay import read_items

    seen: dict[str, None] = {}
    for path in sorted((ROOT / "data" / "sample").glob("*.json*")):
        for item in read_items(path):
            rec, _ = normalize_item(item, source=path.name)
            if rec and rec["is_reply"] and rec["text"]:
                seen[rec["text"]] = None
    return list(seen)


def varied_replies(df: pd.DataFrame, texts: list[str], fraction: float = 0.72, seed: int = 0) -> pd.DataFrame:
    """Replace ``fraction`` of the replies by recombined real replies: the first words of
    one sample reply, the last words of another (about 3 million combinations from the
    sample's ~1,800 replies), so most replies are distinct sentences as in a real
    collection. The rest keep ``synth_pairs``' templated cases (other languages, spam,
    URLs, contacts, generic praise), which form clusters of near-identical replies as
    templated spam does."""
    rng = random.Random(seed)
    words = [t.split() for t in texts]
    replies = df["reply"].tolist()
    for i in range(len(replies)):
        if rng.random() < fraction:
            a, b = rng.choice(words), rng.choice(words)
            ca, cb = rng.randint(1, max(1, len(a) - 1)), rng.randint(1, max(1, len(b) - 1))
            replies[i] = " ".join(a[:ca] + b[cb:])
    return df.assign(reply=replies)


def with_near_duplicates(df: pd.DataFrame, fraction: float = 0.05, seed: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    n = len(df)
    idx = rng.sample(range(n // 2, n), int(n * fraction))
    replies = df["reply"].tolist()
    for i in idx:
        src = replies[rng.randrange(0, i)]
        replies[i] = (src + "!!") if rng.random() < 0.5 else ("Exactly this. " + src)
    return df.assign(reply=replies)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replies", type=int, default=None, help="default 1000000 (--small: 600)")
    ap.add_argument("--chunk", type=int, default=None, help="default 50000 (--small: 300)")
    ap.add_argument("--backend", default=None, help="embedding backend (default: the local profile's)")
    ap.add_argument("--baseline-replies", type=int, default=None, help="default 5000 (--small: 50)")
    ap.add_argument("--small", action="store_true", help="600 replies: the test suite's mode")
    args = ap.parse_args(argv)
    args.replies = args.replies if args.replies is not None else (600 if args.small else 1_000_000)
    args.chunk = args.chunk if args.chunk is not None else (300 if args.small else 50_000)
    args.baseline_replies = args.baseline_replies if args.baseline_replies is not None else (50 if args.small else 5_000)

    from replyassets.core.dedup import dedupe, method_choice_text
    from replyassets.core.validate import validate_pairs
    from replyassets.scorers.embeddings import SentenceTransformerEmbedder, model_text
    from replyassets.scorers.language import LanguageScorer
    from replyassets.scorers.toxicity import ProfanityCheckScorer
    from replyassets.settings import get_settings

    s = get_settings("local")
    backend = args.backend or s.dedup.embedding_backend
    cpu = cpu_figures()
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    stages: dict[str, float] = {}

    t = time.perf_counter()
    language = LanguageScorer.from_settings(s.validation)
    toxicity = ProfanityCheckScorer()
    stages["scorer_build_s"] = time.perf_counter() - t

    sample_texts = sample_reply_texts()
    t = time.perf_counter()
    keep_cols = ["query", "tweet_id", "reply_id", "reply_clean", "reply_likes", "reply_author",
                 "reply_author_followers", "reply_time_diff_seconds", "valid"]
    valid_parts, rows_in, valid_n = [], 0, 0
    for start in range(0, args.replies, args.chunk):
        n = min(args.chunk, args.replies - start)
        pairs = synth_pairs(n, seed=start)
        pairs["reply_id"] = [f"r{start + i}" for i in range(n)]
        pairs["tweet_id"] = [f"t{(start + i) // 5}" for i in range(n)]
        pairs = varied_replies(pairs, sample_texts, seed=start)
        pairs = with_near_duplicates(pairs, seed=start)
        out = validate_pairs(pairs, s.validation, language, toxicity)
        rows_in += len(out)
        kept = out.loc[out["valid"], [c for c in keep_cols if c in out.columns]]
        valid_n += len(kept)
        valid_parts.append(kept)
        print(f"  validated {rows_in:,} rows ({valid_n:,} valid), {time.perf_counter() - t:.0f}s, "
              f"peak {peak_rss_mb():,.0f} MB", flush=True)
    valid = pd.concat(valid_parts, ignore_index=True)
    del valid_parts
    stages["validate_s"] = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as export_dir:
        t = time.perf_counter()
        embedder = SentenceTransformerEmbedder(backend=backend, precision=s.dedup.embedding_precision,
                                               export_dir=Path(export_dir))
        embedder.encode(["warm up: export (once per model, then cached under the data dir) and compile"])
        stages["embedder_build_s"] = time.perf_counter() - t
        auto = {"backend": backend, "precision_setting": s.dedup.embedding_precision,
                "precision": embedder.precision}  # what the setting resolved to on this CPU
        print_cpu(cpu, auto)
        texts = [model_text(x) for x in valid["reply_clean"]]
        distinct = list(dict.fromkeys(texts))
        t = time.perf_counter()
        vecs = np.empty((len(distinct), 384), dtype=np.float32)
        for start in range(0, len(distinct), args.chunk):
            vecs[start:start + args.chunk] = embedder.encode(distinct[start:start + args.chunk])
            done = min(start + args.chunk, len(distinct))
            print(f"  embedded {done:,} / {len(distinct):,} texts ({backend}), {time.perf_counter() - t:.0f}s, "
                  f"{done / (time.perf_counter() - t):,.0f}/s, peak {peak_rss_mb():,.0f} MB", flush=True)
        stages["embed_s"] = time.perf_counter() - t
        pos = {x: i for i, x in enumerate(distinct)}
        embeddings = vecs[[pos[x] for x in texts]]
        del vecs, pos  # one copy of the vectors in memory, as the asset holds

        t = time.perf_counter()
        result = dedupe(valid, embeddings, threshold=s.dedup.similarity_threshold)
        stages["dedup_s"] = time.perf_counter() - t
        kept = int(result["kept"].sum())
        assert len(result) == valid_n and 0 < kept <= valid_n <= rows_in, (len(result), kept, valid_n, rows_in)
        dropped = result.loc[~result["kept"]]
        kept_ids = set(result.loc[result["kept"], "reply_id"])
        assert dropped["duplicate_of"].isin(kept_ids).all(), "a dropped reply points at a reply not kept"
        how = result.attrs.get("semantic_dedup", {})
        print(f"  dedup: {how.get('method')} path ({method_choice_text(how) or 'under ann_threshold_rows'}), "
              f"peak {peak_rss_mb():,.0f} MB", flush=True)

        nb = min(args.baseline_replies, len(distinct))
        base = SentenceTransformerEmbedder(backend="torch")
        t = time.perf_counter()
        base.encode(distinct[:nb])
        torch_rps = nb / (time.perf_counter() - t)
        t = time.perf_counter()
        embedder.encode(distinct[:nb])
        ours_rps = nb / (time.perf_counter() - t)

    total = time.perf_counter() - t0
    load_end = os.getloadavg()
    print(f"{args.replies:,} replies -> {valid_n:,} valid -> {kept:,} kept after dedup")
    for k, v in stages.items():
        print(f"  {k:<18} {v:,.1f}")
    print(f"  total {total:,.0f}s ({total / 60:.1f} min), peak RSS {peak_rss_mb():,.0f} MB")
    print(f"  embedding on the first {nb:,} texts: torch {torch_rps:,.0f}/s, {backend} {ours_rps:,.0f}/s "
          f"({ours_rps / torch_rps:.2f}x)")
    print(f"load average 1m at start {load_start[0]:.2f}, at end {load_end[0]:.2f} ({os.cpu_count()} CPUs)")
    print(json.dumps({
        "replies": args.replies, "valid": valid_n, "kept": kept, "backend": backend,
        "dedup_method": how.get("method"),
        **{f"dedup_{k}": v for k, v in how.items() if k.startswith("auto_")},
        **{k: round(v, 1) for k, v in stages.items()},
        "total_s": round(total, 1), "peak_rss_mb": round(peak_rss_mb()),
        "validate_rows_per_s": round(rows_in / stages["validate_s"]),
        "embed_texts_per_s": round(len(distinct) / stages["embed_s"]),
        "baseline_texts": nb, "baseline_torch_texts_per_s": round(torch_rps), "ours_texts_per_s": round(ours_rps),
        "cpus": os.cpu_count(), "load_avg_1m_start": round(load_start[0], 2), "load_avg_1m_end": round(load_end[0], 2),
        "targets": {"total_s": 1800, "peak_rss_mb": 8192},
        "benchmark": "e2e", "small": args.small, "cpu": cpu, "embedding_auto": auto,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
