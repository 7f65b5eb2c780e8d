"""Validation throughput: the rule engine without model inference (target >= 50,000 rows/s)
next to a naive per-row Python baseline, and the full ``local`` validation with lingua and
the offline toxicity scorer (target >= 2,000 rows/s on 2 cores).

Rows are synthetic but realistic: each reply is built from the hand-written replies in
replyassets_tests/validate/lang_samples.py (English, non-English), spam, URL, contact and
generic variants, with a random tail so every reply text is unique (the scorers cache by
unique text, so duplicates would flatter the figure).

    .venv/bin/python benchmarks/validate.py [--rows 100000] [--baseline-rows 10000] [--full-rows 10000]

Ends with one JSON line.
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

from replyassets.core import clean as C
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
        tail = " ".join(rng.choice(TAIL) for _ in range(rng.randint(1, 3)))
        replies.append(f"{base} {tail} {i}")
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
    """The seed's shape: one row at a time, one regex per keyword/phrase."""
    spam_res = [re.compile(V._phrase_pattern([k]), re.IGNORECASE) for k in V.SPAM_KEYWORDS]
    spam_res.append(re.compile(V._HYPE_MULTIPLIER, re.IGNORECASE))
    generic_res = [re.compile(V._phrase_pattern([g]), re.IGNORECASE) for g in sorted(V.GENERIC_PHRASES, key=len, reverse=True)]
    out = []
    for i, row in pairs.iterrows():
        reply = row["reply"] if isinstance(row["reply"], str) else ""
        text = C.clean_text(reply, s)
        ok = bool(row["reply_id"]) and bool(reply.strip()) and row["tweet"] is not None and not pd.isna(row["reply_likes"])
        ok &= s.min_chars <= len(text) <= s.max_chars
        ok &= not (bool(row["has_urls"]) or C.has_url(reply))
        ok &= row["reply_likes"] >= s.min_likes
        ok &= lang[i] > s.min_lang_confidence and tox[i] < s.max_toxicity
        ok &= not any(r.search(text) for r in spam_res)
        low = text.lower().replace(s.handle_placeholder.lower(), " ")
        low = V._PLACEHOLDERS_RE.sub(" ", low)
        words = set(V._TOKEN_RE.findall(low.replace("'", "").replace("’", "")))
        ok &= sum(1 for w in words if w not in V.STOP_WORDS) >= s.min_meaningful_words
        total = len(V._WORD_RE.findall(text))
        rest = text
        for r in generic_res:
            rest = r.sub(" ", rest)
        ratio = (total - len(V._WORD_RE.findall(rest))) / total if total else 0.0
        ok &= ratio < s.max_generic_ratio
        ok &= not (C.has_email(reply) or C.has_phone(reply))
        out.append(bool(ok))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--baseline-rows", type=int, default=10_000)
    ap.add_argument("--full-rows", type=int, default=10_000)
    args = ap.parse_args()
    s = ValidationSettings()
    C.known_words()  # load the word list outside the timings

    pairs = synth_pairs(args.rows)
    rng = np.random.default_rng(0)
    lang = rng.uniform(0.5, 1.0, len(pairs))
    tox = rng.uniform(0.0, 0.4, len(pairs))

    t = time.perf_counter()
    frame = V.clean_pairs(pairs, s)
    t_clean = time.perf_counter() - t
    t = time.perf_counter()
    ruled = V.apply_rules(frame, s, lang, tox)
    t_rules = time.perf_counter() - t
    engine_rps = len(pairs) / (t_clean + t_rules)

    nb = min(args.baseline_rows, len(pairs))
    t = time.perf_counter()
    naive = naive_validate(pairs.iloc[:nb], s, lang, tox)
    naive_rps = nb / (time.perf_counter() - t)
    agree = bool((ruled["valid"].iloc[:nb].to_numpy() == np.array(naive)).all())
    print(f"rule engine (no inference): {engine_rps:,.0f} rows/s on {len(pairs):,} rows "
          f"(clean {t_clean:.2f}s + rules {t_rules:.2f}s); naive per-row: {naive_rps:,.0f} rows/s "
          f"on {nb:,} rows; speedup {engine_rps / naive_rps:.1f}x; same verdicts: {agree}")
    assert agree, "the vectorised engine and the naive baseline disagree"

    from replyassets.scorers.language import LanguageScorer
    from replyassets.scorers.toxicity import ProfanityCheckScorer

    t = time.perf_counter()
    language = LanguageScorer.from_settings(s)
    toxicity = ProfanityCheckScorer()
    t_build = time.perf_counter() - t
    full = synth_pairs(args.full_rows, seed=1)
    t = time.perf_counter()
    out = V.validate_pairs(full, s, language, toxicity)
    t_full = time.perf_counter() - t
    full_rps = len(full) / t_full
    # the accurate-only variant of the language scorer, same rows, for comparison
    accurate = LanguageScorer(english_prior=s.english_prior, min_letters=s.min_lang_letters, fast_accept=None)
    t = time.perf_counter()
    V.validate_pairs(full, s, accurate, toxicity)
    accurate_rps = len(full) / (time.perf_counter() - t)
    funnel = V.validation_funnel(out)
    print(f"full local validation (lingua two-pass + profanity-check): {full_rps:,.0f} rows/s on "
          f"{len(full):,} unique replies; lingua high-accuracy only: {accurate_rps:,.0f} rows/s; "
          f"scorer build {t_build:.1f}s; valid {funnel['valid']:,}/{funnel['rows_in']:,}")
    print(json.dumps({
        "engine_rows_per_s": round(engine_rps), "naive_rows_per_s": round(naive_rps),
        "engine_speedup": round(engine_rps / naive_rps, 1), "engine_rows": len(pairs),
        "naive_rows": nb, "same_verdicts": agree, "full_local_rows_per_s": round(full_rps),
        "full_accurate_only_rows_per_s": round(accurate_rps), "full_rows": len(full),
        "scorer_build_s": round(t_build, 1), "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "targets": {"engine_rows_per_s": 50_000, "full_local_rows_per_s": 2_000},
    }))


if __name__ == "__main__":
    main()
