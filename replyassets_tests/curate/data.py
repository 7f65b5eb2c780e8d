"""Synthetic deduped pairs with every column curate/review/check code reads (deterministic)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TOPICS = ["agents", "compilers", "startups", "databases", "testing", "design", "hiring", "pricing",
          "latency", "caching", "typing", "tooling", "security", "docs", "onboarding", "metrics"]
VERBS = ["ship", "measure", "refactor", "document", "profile", "review", "automate", "simplify"]
ADJ = ["boring", "careful", "honest", "small", "explicit", "patient", "clear", "cheap"]


def reply_text(i: int) -> str:
    t, v, a = TOPICS[i % len(TOPICS)], VERBS[(i // 3) % len(VERBS)], ADJ[(i // 7) % len(ADJ)]
    return (f"Reply {i}: the {a} way to {v} {t} is to start with one real user and "
            f"write down what broke, case number {i * 7 + 3}.")


def make_deduped(n_tweets: int = 40, replies_per_tweet: int = 5, n_authors: int | None = None,
                 seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    n = n_tweets * replies_per_tweet
    n_authors = n_authors or n
    base = pd.Timestamp("2025-09-01 12:00:00")
    for t in range(n_tweets):
        created = base + pd.Timedelta(hours=t)
        tweet = f"Tweet {t}: what is the one habit that made your {TOPICS[t % len(TOPICS)]} work better?"
        for r in range(replies_per_tweet):
            i = t * replies_per_tweet + r
            delay = int(rng.integers(300, 7 * 24 * 3600))
            text = reply_text(i)
            rows.append({
                "query": "ai-agents" if t % 2 else "coding",
                "source": "replay",
                "tweet_id": str(1_000_000 + t),
                "tweet": tweet,
                "tweet_author": f"poster{t % 7}",
                "tweet_author_followers": 50_000,
                "tweet_likes": int(rng.integers(200, 2000)),
                "tweet_retweets": int(rng.integers(10, 500)),
                "tweet_created_at": created,
                "reply_id": str(2_000_000 + i),
                "reply": text,
                "reply_author": f"user{i % n_authors}",
                "reply_author_followers": int(rng.integers(200, 20_000)),
                "reply_likes": int(rng.integers(5, 500)),
                "reply_retweets": int(rng.integers(0, 20)),
                "reply_created_at": created + pd.Timedelta(seconds=delay),
                "reply_time_diff_seconds": delay,
                "has_media": False,
                "has_urls": False,
                "lang": "en",
                "collected_at": base + pd.Timedelta(days=30),
                "reply_clean": text,
                "tweet_clean": tweet,
                "lang_confidence": 0.95,
                "toxicity": 0.01,
                "valid": True,
                "reasons": "",
                "kept": True,
                "duplicate_of": None,
                "similarity": None,
            })
    df = pd.DataFrame(rows)
    df["tweet_author_followers"] = df["tweet_author_followers"].astype("Int64")
    return df
