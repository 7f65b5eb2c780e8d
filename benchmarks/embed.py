"""Embedding throughput: all-MiniLM-L6-v2 in PyTorch against the optimized backend, same texts, one run.

Texts: every distinct reply of the bundled sample (read through the replay source and
normalized, as collection reads them), then realistic replies composed by
``scripts/make_sample.py``'s generator (topic fragments; many share a fragment, so there
are near-duplicates around the 0.9 threshold) until there are ``--texts`` of them.

Measured for PyTorch (sentence-transformers, fp32) and for each optimized variant
(default: the settings' ``dedup.embedding_backend`` / ``dedup.embedding_precision``;
``--variants all`` adds every other one):

* replies/s: wall clock, best of ``--repeat`` passes over all texts (each pass after a
  warm-up batch; the export, built once under the data dir, is excluded and reported);
  also replies per CPU-second of this process, which moves less when other processes
  share the cores (on a shared machine the wall figure depends on the neighbours);
* the cosine of each text's vector to its PyTorch vector: min, p1, p50;
* the dedup keep set (``core.dedup.dedupe``, threshold 0.9): on the sample's replies
  (their engagement gives the walk order) and on all the texts; the difference is the
  number of replies kept by one and not the other, as % of the PyTorch keep set.

Targets (issue: at least 5x faster embedding at scale): >= 1,000 replies/s and >= 3x PyTorch on 2
cores; bar for a default: min cosine >= 0.99 and keep-set difference <= 0.5 %.

``--small``: 120 texts, one pass (the test suite's mode, replyassets_tests/test_benchmarks.py).
Every mode asserts one vector per text and, for fp32/bf16 variants, a min cosine >= 0.99 to
PyTorch's (int8 is lossy by design: reported, not asserted). The JSON line records the CPU
(model, AVX2 / AVX-512 / VNNI / AMX flags) and the precision ``auto`` picked on it
(``embedding_auto``: openvino runs bf16 only where the CPU has it).

Usage: python benchmarks/embed.py [--texts 4000] [--repeat 2] [--variants default|all]
       [--export-dir DIR] [--small]
Ends with one JSON line holding all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _cpu import cpu_figures, embedding_auto_figures, print_cpu

from replyassets.core.dedup import dedupe
from replyassets.core.normalize import normalize_item
from replyassets.scorers.embedding_backends import resolve_precision
from replyassets.scorers.embeddings import SentenceTransformerEmbedder
from replyassets.settings import get_settings
from replyassets.sources.replay import read_items

THRESHOLD = 0.9
ALL_VARIANTS = [("openvino", "bf16"), ("openvino", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]


def sample_replies() -> pd.DataFrame:
    rows: dict[str, dict] = {}
    for path in sorted((ROOT / "data" / "sample").glob("*.json*")):
        for item in read_items(path):
            rec, _ = normalize_item(item, source=path.name)
            if rec and rec["is_reply"] and rec["id"] not in rows:
                rows[rec["id"]] = {"reply_id": rec["id"], "reply_clean": rec["text"], "reply_likes": rec["likes"],
                                   "reply_retweets": rec["retweets"],
                                   "reply_author_followers": rec["author_followers"]}
    return pd.DataFrame(list(rows.values()))


def generated_replies(n: int, seed: int = 7) -> list[str]:
    """Replies composed like the sample's (scripts/make_sample.py), without its diversity filter."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_sample
    import sample_text

    rng = random.Random(seed)
    topics = list(sample_text.QUERIES)
    out: list[str] = []
    per = max(1, n // len(topics) + 1)
    for topic in topics:
        out.extend(text for text, _ in make_sample.candidate_replies(topic, rng, per))
    rng.shuffle(out)
    return out[:n]


def timed_encode(emb, texts: list[str], repeat: int) -> tuple[np.ndarray, float, float]:
    """(vectors, best wall seconds, CPU seconds of that pass)."""
    emb.encode(texts[:64])  # warm-up: loads the model, first shapes
    best = (float("inf"), 0.0)
    vecs = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        vecs = emb.encode(texts)
        w, c = time.perf_counter() - w, time.process_time() - c
        if w < best[0]:
            best = (w, c)
    return vecs, best[0], best[1]


def kept_ids(frame: pd.DataFrame, vecs: np.ndarray) -> set:
    out = dedupe(frame, vecs, threshold=THRESHOLD)
    return set(out.loc[out["kept"], "reply_id"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=None, help="default 4000 (--small: 120)")
    ap.add_argument("--repeat", type=int, default=None, help="default 2 (--small: 1)")
    ap.add_argument("--small", action="store_true", help="120 texts, one pass: the test suite's mode")
    ap.add_argument("--variants", choices=("default", "all"), default="default")
    ap.add_argument("--export-dir", default=None, help="default: <data dir>/models/embeddings")
    args = ap.parse_args()
    args.texts = args.texts if args.texts is not None else (120 if args.small else 4000)
    args.repeat = args.repeat if args.repeat is not None else (1 if args.small else 2)

    settings = get_settings()
    machine = cpu_figures()  # (``cpu`` below is replies per CPU-second)
    auto = embedding_auto_figures(settings.dedup.embedding_backend)
    print_cpu(machine, auto)
    export_dir = Path(args.export_dir) if args.export_dir else settings.data_dir / "models" / "embeddings"
    default = (settings.dedup.embedding_backend,
               resolve_precision(settings.dedup.embedding_backend, settings.dedup.embedding_precision))
    replies = sample_replies()
    real = list(dict.fromkeys(replies["reply_clean"]))
    texts = (real + generated_replies(max(0, args.texts - len(real))))[: max(args.texts, 1)]
    n = len(texts)
    row_of = {t: i for i, t in enumerate(texts)}
    real_rows = replies["reply_clean"].map(row_of)
    if real_rows.isna().any():  # --texts smaller than the sample: compare on the replies embedded
        replies = replies[real_rows.notna()].reset_index(drop=True)
        real_rows = real_rows.dropna()
    real_rows = real_rows.astype(int).to_numpy()
    walk = pd.DataFrame({"reply_id": [str(i) for i in range(n)], "reply_clean": texts})

    load0 = os.getloadavg()
    figures: dict = {"texts": n, "sample_replies": len(replies), "sample_distinct_texts": len(real),
                     "cpu_count": os.cpu_count() or 0, "threshold": THRESHOLD, "repeat": args.repeat,
                     "default_backend": default[0], "default_precision": default[1],
                     "load_average_start": round(load0[0], 2)}
    print(f"{n} texts ({min(len(real), n)} distinct sample replies + {max(0, n - len(real))} generated), "
          f"{os.cpu_count()} CPUs, load average {load0[0]:.1f}")

    torch_emb = SentenceTransformerEmbedder(backend="torch", batch_size=settings.dedup.batch_size)
    ref, w, c = timed_encode(torch_emb, texts, args.repeat)
    assert ref.shape[0] == n and np.isfinite(ref).all(), "PyTorch: not one finite vector per text"
    torch_rps, torch_cpu = n / w, n / c
    keep_real = kept_ids(replies, ref[real_rows])
    keep_all = kept_ids(walk, ref)
    print(f"{'variant':<16} {'replies/s':>10} {'per CPU-s':>10} {'speedup':>8} {'cos min':>9} {'p1':>9} "
          f"{'p50':>9} {'keep diff (sample)':>19} {'keep diff (all)':>16} {'export s':>9}")
    print(f"{'torch/fp32':<16} {torch_rps:>10.0f} {torch_cpu:>10.0f} {1.0:>8.2f} {1:>9.5f} {1:>9.5f} {1:>9.5f} "
          f"{'0 / ' + str(len(keep_real)):>19} {'0 / ' + str(len(keep_all)):>16} {'-':>9}")
    figures.update({"torch_replies_per_s": round(torch_rps, 1), "torch_replies_per_cpu_s": round(torch_cpu, 1),
                    "torch_kept_sample": len(keep_real), "torch_kept_all": len(keep_all)})

    variants = [default] + ([v for v in ALL_VARIANTS if v != default] if args.variants == "all" else [])
    for backend, precision in variants:
        emb = SentenceTransformerEmbedder(backend=backend, precision=precision, export_dir=export_dir,
                                          batch_size=settings.dedup.batch_size)
        name = f"{backend}/{emb.precision}"
        key = f"{backend}_{emb.precision}"
        t0 = time.perf_counter()
        emb.export_path()
        export_s = time.perf_counter() - t0
        vecs, w, c = timed_encode(emb, texts, args.repeat)
        rps, cpu = n / w, n / c
        assert vecs.shape == ref.shape and np.isfinite(vecs).all(), f"{name}: not one finite vector per text"
        cos = np.sum(vecs * ref, axis=1) / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(ref, axis=1))
        if emb.precision != "int8":
            assert float(cos.min()) >= 0.99, f"{name}: min cosine to PyTorch {float(cos.min()):.5f} < 0.99"
        k_real = kept_ids(replies, vecs[real_rows])
        k_all = kept_ids(walk, vecs)
        d_real = len(k_real ^ keep_real) / max(1, len(keep_real)) * 100
        d_all = len(k_all ^ keep_all) / max(1, len(keep_all)) * 100
        fig = {"replies_per_s": round(rps, 1), "replies_per_cpu_s": round(cpu, 1),
               "speedup": round(rps / torch_rps, 2), "speedup_cpu": round(cpu / torch_cpu, 2),
               "cos_min": round(float(cos.min()), 5), "cos_p1": round(float(np.percentile(cos, 1)), 5),
               "cos_p50": round(float(np.median(cos)), 5),
               "keep_diff_pct_sample": round(d_real, 3), "keep_diff_replies_sample": len(k_real ^ keep_real),
               "keep_diff_pct_all": round(d_all, 3), "keep_diff_replies_all": len(k_all ^ keep_all),
               "export_s": round(export_s, 1)}
        fig["meets_bar"] = bool(fig["cos_min"] >= 0.99 and d_real <= 0.5 and d_all <= 0.5)
        print(f"{name:<16} {rps:>10.0f} {cpu:>10.0f} {rps / torch_rps:>8.2f} {fig['cos_min']:>9.5f} "
              f"{fig['cos_p1']:>9.5f} {fig['cos_p50']:>9.5f} "
              f"{f'{len(k_real ^ keep_real)} ({d_real:.2f} %)':>19} {f'{len(k_all ^ keep_all)} ({d_all:.2f} %)':>16} "
              f"{export_s:>9.1f}")
        figures.update({f"{key}_{k}": v for k, v in fig.items()})
        if (backend, precision) == default:
            figures.update({"default_model_id": emb.model_id, **{f"default_{k}": v for k, v in fig.items()}})
            figures["default_meets_throughput_target"] = bool(rps >= 1000 and rps / torch_rps >= 3)
    figures["load_average_end"] = round(os.getloadavg()[0], 2)
    figures.update({"benchmark": "embed", "small": args.small, "cpu": machine, "embedding_auto": auto})
    d = {k[len("default_"):]: v for k, v in figures.items() if k.startswith("default_")}
    print(f"default {default[0]}/{default[1]}: {d['replies_per_s']:.0f} replies/s, {d['speedup']:.2f}x PyTorch "
          f"({d['speedup_cpu']:.2f}x per CPU-second); min cosine {d['cos_min']:.5f}; keep set differs by "
          f"{d['keep_diff_pct_sample']:.2f} % (sample) / {d['keep_diff_pct_all']:.2f} % (all texts); "
          f"bar {'met' if d['meets_bar'] else 'NOT met'}; throughput target (>= 1,000/s and >= 3x) "
          f"{'met' if d['meets_throughput_target'] else 'not met'} "
          f"(load average {figures['load_average_start']} -> {figures['load_average_end']})")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
