"""Validation throughput: the rule engine without model inference (target >= 50,000 rows/s)
next to a naive per-row Python baseline, and the full ``local`` validation with lingua and
the offline toxicity scorer (target >= 2,000 rows/s on 2 cores).

Rows are synthetic but realistic: each reply is built from the hand-written replies in
replyassets_tests/validate/lang_samples.py (English, non-English), spam, URL, contact and
generic variants, with a tail of words spelling the row number, so every reply is unique
even as lingua sees it (digits stripped): the engine cleans, and the scorers score, each
distinct text once, so duplicates would flatter the figure.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/validate.py [--rows 100000]
        [--baseline-rows 5000] [--full-rows 10000] [--accurate-rows 2000] [--reps 3] [--small]

``--small``: 3,000 / 500 / 500 / 200 rows, one run (the test suite's mode); the engine and the
naive baseline must still give the same verdicts, and the full validation one verdict per row.

Each figure is the best and the median of ``--reps`` runs, by wall clock, with rows per
CPU-second of this process next to it: on the shared machine the gap between the two is
the time other processes took the cores. The load average is printed. Ends with one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _cpu import cpu_figures, print_cpu

from replyassets.core import clean as C
from replyassets.core import urls as U
from replyassets.core import validate as V
from replyassets.settings import ValidationSettings
from replyassets_tests.validate.lang_samples import ENGLISH, NON_ENGLISH

TAIL = ["debugging", "cache", "latency", "schema", "rollback", "deploy", "index", "queue", "tests", "review", "refactor", "memory", "thread", "kernel", "compiler", "pipeline", "metrics", "tracing", "staging", "budget", "sprint"]


def synth_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    other = [t for _, t in NON_ENGLISH]
    replies = []
    for i in range(n):
        r = rng.random()
        if r < 0.70:
            base = rng.choice(ENGLISH)
        elif r < 0.78:
            base = rng.choice(other)
        elif r < 0.83:
            base = "gm ser, wagmi " + rng.choice(ENGLISH)
        elif r < 0.87:
            base = rng.choice(ENGLISH) + " https://t.co/x" + str(i)
        elif r < 0.90:
            base = "Congrats! Love this, thanks for sharing. so true"
        elif r < 0.92:
            base = rng.choice(ENGLISH) + " mail me at dev@example.com"
        else:
            base = "@someone sooo " + rng.choice(ENGLISH) + " #MachineLearning"
        replies.append(f"{base} {_tail(i)} {i}")
    return pd.DataFrame({
        "query": [f"q{i % 4}" for i in range(n)], "source": "replay",
        "tweet_id": [f"t{i // 5}" for i in range(n)],
        "tweet": [rng.choice(ENGLISH) for _ in range(n)],
        "tweet_author": "alice", "tweet_author_followers": 5000, "tweet_likes": 500,
        "tweet_retweets": 50, "tweet_created_at": pd.Timestamp("2025-09-29 21:24:45"),
        "reply_id": [f"r{i}" for i in range(n)], "reply": replies,
        "reply_author": [f"u{i % 997}" for i in range(n)], "reply_author_followers": 1000,
        "reply_likes": [rng.randint(0, 50) for _ in range(n)], "reply_retweets": 1,
        "reply_created_at": pd.Timestamp("2025-09-29 22:24:45"), "reply_time_diff_seconds": 3600,
        "has_media": False, "has_urls": False, "lang": "en",
        "collected_at": pd.Timestamp("2025-10-01"),
    })


def naive_validate(pairs: pd.DataFrame, s: ValidationSettings, lang, tox) -> list[bool]:
    """The prototype's shape (docs/design.md, "Baselines"): one row at a time, one regex per keyword/phrase."""
    spam_res = [re.compile(V._phrase_pattern([k]), re.IGNORECASE) for k in V.SPAM_KEYWORDS]
    spam_res.append(re.compile(V._HYPE_MULTIPLIER, re.IGNORECASE))
    generic_res = [re.compile(V._phrase_pattern([g]), re.IGNORECASE) for g in sorted(V.GENERIC_PHRASES, key=len, reverse=True)]
    stop = V.stop_words()
    out = []
    for i, row in pairs.iterrows():
        reply = row["reply"] if isinstance(row["reply"], str) else ""
        text = C.clean_text(reply, s)
        ok = bool(row["reply_id"]) and bool(reply.strip()) and row["tweet"] is not None and not pd.isna(row["reply_likes"])
        ok &= s.min_chars <= len(text) <= s.max_chars
        ok &= not (bool(row["has_urls"]) or U.has_url(reply) or U.has_url(text))
        ok &= row["reply_likes"] >= s.min_likes
        ok &= lang[i] > s.min_lang_confidence and tox[i] < s.max_toxicity
        ok &= not any(r.search(text) for r in spam_res)
        low = text.lower().replace(s.handle_placeholder.lower(), " ")
        low = V._PLACEHOLDERS_RE.sub(" ", low)
        words = set(V._TOKEN_RE.findall(low.replace("'", "").replace("’", "")))
        ok &= sum(1 for w in words if w not in stop) >= s.min_meaningful_words
        total = len(V._WORD_RE.findall(text))
        rest = text
        for r in generic_res:
            rest = r.sub(" ", rest)
        ratio = (total - len(V._WORD_RE.findall(rest))) / total if total else 0.0
        ok &= ratio < s.max_generic_ratio
        ok &= not (C.has_email(reply) or C.has_phone(reply))
        out.append(bool(ok))
    return out


def _tail(i: int) -> str:
    """``i`` written in TAIL words (base len(TAIL)): unique words per row, so even the text
    lingua sees (digits stripped) differs from row to row."""
    words = []
    while True:
        words.append(TAIL[i % len(TAIL)])
        i //= len(TAIL)
        if not i:
            return " ".join(words)


def _timed(fn, reps: int) -> dict:
    """Wall and CPU (this process, all threads) seconds of ``reps`` runs: best and median."""
    wall, cpu = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"best": min(wall), "median": float(np.median(wall)), "cpu_best": min(cpu),
            "cpu_median": float(np.median(cpu))}


def _rates(rows: int, t: dict) -> dict:
    return {"best": round(rows / t["best"]), "median": round(rows / t["median"]),
            "cpu_best": round(rows / t["cpu_best"]), "cpu_median": round(rows / t["cpu_median"])}


def _fmt(r: dict) -> str:
    return f"best {r['best']:>7,} median {r['median']:>7,} rows/s (per CPU-second {r['cpu_best']:,})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=None, help="default 100000 (--small: 3000)")
    ap.add_argument("--baseline-rows", type=int, default=None, help="default 5000 (--small: 500)")
    ap.add_argument("--full-rows", type=int, default=None, help="default 10000 (--small: 500)")
    ap.add_argument("--accurate-rows", type=int, default=None, help="default 2000 (--small: 200)")
    ap.add_argument("--reps", type=int, default=None, help="default 3 (--small: 1)")
    ap.add_argument("--small", action="store_true", help="seconds: the test suite's mode")
    args = ap.parse_args()
    for name, full_size, small_size in (("rows", 100_000, 3_000), ("baseline_rows", 5_000, 500),
                                        ("full_rows", 10_000, 500), ("accurate_rows", 2_000, 200), ("reps", 3, 1)):
        if getattr(args, name) is None:
            setattr(args, name, small_size if args.small else full_size)
    cpu = cpu_figures()
    print_cpu(cpu)
    s = ValidationSettings()
    C.known_words()  # load the word list and the character tables outside the timings
    C.char_classes()
    load_start = os.getloadavg()

    pairs = synth_pairs(args.rows)
    rng = np.random.default_rng(0)
    lang = rng.uniform(0.5, 1.0, len(pairs))
    tox = rng.uniform(0.0, 0.4, len(pairs))
    result = {}

    def engine():
        result["ruled"] = V.apply_rules(V.clean_pairs(pairs, s), s, lang, tox)

    t_engine = _timed(engine, args.reps)
    engine_rps = _rates(len(pairs), t_engine)
    nb = min(args.baseline_rows, len(pairs))
    base = pairs.iloc[:nb]
    t_naive = _timed(lambda: result.__setitem__("naive", naive_validate(base, s, lang, tox)), args.reps)
    naive_rps = _rates(nb, t_naive)
    agree = bool((result["ruled"]["valid"].iloc[:nb].to_numpy() == np.array(result["naive"])).all())
    speedup = round(engine_rps["best"] / naive_rps["best"], 1)
    print(f"rule engine, no inference ({len(pairs):,} rows, {args.reps} runs)")
    print(f"  naive per-row baseline ({nb:,} rows): {_fmt(naive_rps)}")
    print(f"  ours:                               {_fmt(engine_rps)}   {speedup}x; same verdicts: {agree}")
    assert agree, "the vectorised engine and the naive baseline disagree"

    from replyassets.scorers.language import LanguageScorer
    from replyassets.scorers.toxicity import ProfanityCheckScorer

    t = time.perf_counter()
    language = LanguageScorer.from_settings(s)
    toxicity = ProfanityCheckScorer()
    t_build = time.perf_counter() - t
    full = synth_pairs(args.full_rows, seed=1)
    t_full = _timed(lambda: result.__setitem__("full", V.validate_pairs(full, s, language, toxicity)), args.reps)
    full_rps = _rates(len(full), t_full)
    # the accurate-only variant of the language scorer (every text in high-accuracy mode)
    accurate = LanguageScorer(english_prior=s.english_prior, min_letters=s.min_lang_letters, fast_accept=None)
    acc_rows = full.iloc[: min(args.accurate_rows, len(full))]
    t_acc = _timed(lambda: V.validate_pairs(acc_rows, s, accurate, toxicity), 1)
    acc_rps = _rates(len(acc_rows), t_acc)
    funnel = V.validation_funnel(result["full"])
    assert len(result["full"]) == len(full) and funnel["rows_in"] == len(full), "full validation lost rows"
    assert 0 < funnel["valid"] < funnel["rows_in"], f"implausible funnel {funnel}"
    print(f"full local validation: lingua + profanity-check ({len(full):,} unique replies, {args.reps} runs)")
    print(f"  lingua high-accuracy only ({len(acc_rows):,} rows, 1 run): {_fmt(acc_rps)}")
    print(f"  ours (lingua fast pass, accurate re-score of the rest): {_fmt(full_rps)}")
    print(f"  scorer build {t_build:.1f}s (once per process); valid {funnel['valid']:,}/{funnel['rows_in']:,}")
    load_end = os.getloadavg()
    print(f"load average 1m at start {load_start[0]:.2f}, at end {load_end[0]:.2f} ({os.cpu_count()} CPUs)")
    print(json.dumps({
        "engine_rows_per_s": engine_rps["best"], "engine_rows_per_s_median": engine_rps["median"],
        "engine_rows_per_cpu_s": engine_rps["cpu_best"],
        "naive_rows_per_s": naive_rps["best"], "naive_rows_per_s_median": naive_rps["median"],
        "engine_speedup": speedup, "engine_rows": len(pairs), "naive_rows": nb, "same_verdicts": agree,
        "full_local_rows_per_s": full_rps["best"], "full_local_rows_per_s_median": full_rps["median"],
        "full_local_rows_per_cpu_s": full_rps["cpu_best"],
        "full_accurate_only_rows_per_s": acc_rps["best"], "full_rows": len(full),
        "accurate_rows": len(acc_rows), "reps": args.reps, "scorer_build_s": round(t_build, 1),
        "cpus": os.cpu_count(), "load_avg_1m_start": round(load_start[0], 2),
        "load_avg_1m_end": round(load_end[0], 2),
        "targets": {"engine_rows_per_s": 50_000, "full_local_rows_per_s": 2_000},
        "benchmark": "validate", "small": args.small, "cpu": cpu,
    }))


if __name__ == "__main__":
    main()
