"""Preferences from engagement: (chosen, rejected) reply pairs and a KTO view (no Dagster here).

Replies to one tweet compete for the same readers, so their likes say which reply those readers
preferred, with two confounders the rules below remove (after the SHP dataset's construction):

- **Exposure.** A reply posted earlier is on screen longer and collects likes for that reason
  alone. A pair is kept only when the chosen reply was posted *no earlier* than the rejected one:
  it won despite less time on screen, so exposure cannot explain the win.
- **Noise.** 12 likes against 10 is no preference. The chosen reply needs at least
  ``min_like_ratio`` (default 2) times the rejected one's engagement and at least ``min_likes``
  likes.

Engagement is the reply's likes, or (``normalize_by_followers``) its likes per 1,000 followers of
its author, so a large account's reach is not mistaken for quality. ``min_likes`` always applies
to raw likes.

Every candidate pair of a tweet (two kept replies, the one with more engagement as the candidate
chosen) is kept or rejected by the first rule it fails, in this order: ``same_text`` (the two
texts are equal once case and spacing are ignored), ``min_likes``, ``like_ratio``, ``exposure``,
then ``per_tweet_cap`` (at most ``max_pairs_per_tweet`` pairs per tweet, the largest engagement
ratios first, so one busy thread does not dominate). The counts per rule are the asset's funnel.

Splits come from the curated set: a tweet's split is the curated set's for its tweets and the
same assignment function (``core.curate.tweet_split``) for the others, so no test tweet ever
feeds preference training and every split holds whole tweets.

The KTO view labels single replies instead of pairs: in a tweet with ``n >= 2`` replies ranked
by engagement, the top ``n // 2`` are desirable and the bottom ``n // 2`` undesirable (an odd
middle one is left out); a desirable and an undesirable reply with equal engagement are both
left out (the rank between them is arbitrary).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from replyassets.core.curate import render_prompt
from replyassets.core.files import atomic_write
from replyassets.settings import CurationSettings, PreferenceSettings

RULES = ("same_text", "min_likes", "like_ratio", "exposure", "per_tweet_cap")

PAIR_COLUMNS = [
    "pair_id", "tweet_id", "query", "split", "tweet", "prompt",
    "chosen_reply_id", "rejected_reply_id", "chosen", "rejected",
    "chosen_likes", "rejected_likes", "chosen_engagement", "rejected_engagement", "engagement_ratio",
    "chosen_created_at", "rejected_created_at", "chosen_followers", "rejected_followers",
]
KTO_COLUMNS = [
    "reply_id", "tweet_id", "query", "split", "tweet", "prompt", "completion", "label",
    "likes", "engagement", "engagement_rank", "replies_in_tweet",
]
REQUIRED = ["tweet_id", "reply_id", "reply_likes", "reply_created_at", "reply_author_followers"]


class PreferenceError(ValueError):
    pass


@dataclass
class PreferenceResult:
    pairs: pd.DataFrame
    kto: pd.DataFrame
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    candidate_pairs: int = 0
    tweets_considered: int = 0  # tweets with at least two usable replies
    replies_used: int = 0
    replies_excluded: dict[str, int] = field(default_factory=dict)


def _text_col(df: pd.DataFrame, clean: str, raw: str) -> pd.Series:
    base = df[clean] if clean in df.columns else df[raw]
    fallback = df[raw] if raw in df.columns else base
    ok = base.notna() & (base.astype(str).str.strip() != "")
    return base.where(ok, fallback).astype(str).str.strip()


def _same_text_key(s: str) -> str:
    return " ".join(s.casefold().split())


def engagement(likes: pd.Series, followers: pd.Series, normalize_by_followers: bool) -> pd.Series:
    """Raw likes, or likes per 1,000 followers (followers floored at 1)."""
    likes = pd.to_numeric(likes, errors="coerce").fillna(0).astype("float64")
    if not normalize_by_followers:
        return likes
    f = pd.to_numeric(followers, errors="coerce").fillna(0).clip(lower=1).astype("float64")
    return likes * 1000.0 / f


def usable_replies(
    deduped: pd.DataFrame, decisions: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Valid, kept replies with review decisions applied: a rejected reply is left out, an
    edited one uses its edited text. Returns (replies, excluded counts by reason)."""
    missing = [c for c in REQUIRED if c not in deduped.columns]
    if missing:
        raise PreferenceError(f"preference pairs need columns {missing}")
    df = deduped.copy()
    excluded: dict[str, int] = {}
    mask = pd.Series(True, index=df.index)
    if "valid" in df.columns:
        excluded["not_valid"] = int((~df["valid"].astype(bool)).sum())
        mask &= df["valid"].astype(bool)
    if "kept" in df.columns:
        excluded["duplicate"] = int((mask & ~df["kept"].astype(bool)).sum())
        mask &= df["kept"].astype(bool)
    df = df.loc[mask].copy()
    df["tweet_id"] = df["tweet_id"].astype(str)
    df["reply_id"] = df["reply_id"].astype(str)
    df["reply_text"] = _text_col(df, "reply_clean", "reply")
    df["tweet_text"] = _text_col(df, "tweet_clean", "tweet")
    if decisions is not None and len(decisions):
        dec = decisions.assign(reply_id=decisions["reply_id"].astype(str)).drop_duplicates("reply_id", keep="last")
        dec = dec.set_index("reply_id")
        d = df["reply_id"].map(dec["decision"].astype(str).str.lower())
        rejected = d == "reject"
        excluded["review_rejected"] = int(rejected.sum())
        df = df.loc[~rejected].copy()
        if "edited_reply" in dec.columns:
            edited = df["reply_id"].map(dec["edited_reply"])
            is_edit = df["reply_id"].map(dec["decision"].astype(str).str.lower()) == "edit"
            use = is_edit & edited.notna() & (edited.astype(str).str.strip() != "")
            df.loc[use, "reply_text"] = edited[use].astype(str).str.strip()
    empty = df["reply_text"] == ""
    excluded["empty_text"] = int(empty.sum())
    return df.loc[~empty].reset_index(drop=True), {k: v for k, v in excluded.items() if v}


def build_preferences(
    deduped: pd.DataFrame,
    settings: PreferenceSettings,
    split_of: Callable[[str], str],
    curation: CurationSettings | None = None,
    decisions: pd.DataFrame | None = None,
) -> PreferenceResult:
    """Pairs and the KTO view from ``deduped`` (deduped_pairs rows); see the module docstring."""
    curation = curation or CurationSettings()
    replies, excluded = usable_replies(deduped, decisions)
    replies["engagement"] = engagement(
        replies["reply_likes"], replies["reply_author_followers"], settings.normalize_by_followers)
    replies["likes"] = pd.to_numeric(replies["reply_likes"], errors="coerce").fillna(0).astype("int64")
    replies["created"] = pd.to_datetime(replies["reply_created_at"])
    replies["followers"] = pd.to_numeric(replies["reply_author_followers"], errors="coerce").fillna(0).astype("int64")
    counts = dict.fromkeys(RULES, 0)
    pair_rows: list[dict[str, Any]] = []
    kto_rows: list[dict[str, Any]] = []
    candidates = tweets = 0
    prompts: dict[str, str] = {}
    for tweet_id, group in replies.groupby("tweet_id", sort=True):
        if len(group) < 2:
            continue
        tweets += 1
        split = split_of(str(tweet_id))
        first = group.iloc[0]
        tweet_text = str(first["tweet_text"])
        prompt = prompts.setdefault(tweet_text, render_prompt(curation.prompt_template, tweet_text))
        query = str(first["query"]) if "query" in group.columns else ""
        # Highest engagement first; ties broken by reply id (deterministic).
        g = group.sort_values(["engagement", "reply_id"], ascending=[False, True], kind="mergesort")
        recs = g.to_dict("records")
        passing: list[tuple[float, str, str, dict, dict]] = []
        for i in range(len(recs)):
            for j in range(i + 1, len(recs)):
                c, r = recs[i], recs[j]
                candidates += 1
                if _same_text_key(c["reply_text"]) == _same_text_key(r["reply_text"]):
                    counts["same_text"] += 1
                elif c["likes"] < settings.min_likes:
                    counts["min_likes"] += 1
                elif c["engagement"] < settings.min_like_ratio * r["engagement"] or c["engagement"] <= r["engagement"]:
                    counts["like_ratio"] += 1
                elif c["created"] < r["created"]:
                    counts["exposure"] += 1
                else:
                    ratio = c["engagement"] / r["engagement"] if r["engagement"] > 0 else float("inf")
                    passing.append((ratio, c["reply_id"], r["reply_id"], c, r))
        passing.sort(key=lambda t: (-t[0], t[1], t[2]))
        counts["per_tweet_cap"] += max(0, len(passing) - settings.max_pairs_per_tweet)
        for ratio, _, _, c, r in passing[: settings.max_pairs_per_tweet]:
            pair_rows.append({
                "pair_id": f"{c['reply_id']}>{r['reply_id']}",
                "tweet_id": str(tweet_id), "query": query, "split": split,
                "tweet": tweet_text, "prompt": prompt,
                "chosen_reply_id": c["reply_id"], "rejected_reply_id": r["reply_id"],
                "chosen": c["reply_text"], "rejected": r["reply_text"],
                "chosen_likes": int(c["likes"]), "rejected_likes": int(r["likes"]),
                "chosen_engagement": float(c["engagement"]), "rejected_engagement": float(r["engagement"]),
                "engagement_ratio": float(ratio) if np.isfinite(ratio) else float("nan"),
                "chosen_created_at": c["created"], "rejected_created_at": r["created"],
                "chosen_followers": int(c["followers"]), "rejected_followers": int(r["followers"]),
            })
        kto_rows += _kto_labels(recs, str(tweet_id), query, split, tweet_text, prompt)
    pairs = pd.DataFrame(pair_rows, columns=PAIR_COLUMNS)
    if pairs.empty:
        pairs = _typed_empty_pairs()
    kto = pd.DataFrame(kto_rows, columns=KTO_COLUMNS)
    if kto.empty:
        kto = pd.DataFrame({c: pd.Series(dtype="bool" if c == "label" else "object") for c in KTO_COLUMNS})
    return PreferenceResult(
        pairs=pairs.reset_index(drop=True), kto=kto.reset_index(drop=True), rejected_by_rule=counts,
        candidate_pairs=candidates, tweets_considered=tweets, replies_used=len(replies), replies_excluded=excluded,
    )


def _typed_empty_pairs() -> pd.DataFrame:
    out = {c: pd.Series(dtype="object") for c in PAIR_COLUMNS}
    for c in ("chosen_likes", "rejected_likes", "chosen_followers", "rejected_followers"):
        out[c] = pd.Series(dtype="int64")
    for c in ("chosen_engagement", "rejected_engagement", "engagement_ratio"):
        out[c] = pd.Series(dtype="float64")
    for c in ("chosen_created_at", "rejected_created_at"):
        out[c] = pd.Series(dtype="datetime64[ns]")
    return pd.DataFrame(out)


def _kto_labels(recs: list[dict], tweet_id: str, query: str, split: str, tweet: str, prompt: str) -> list[dict]:
    """``recs`` sorted by engagement, highest first (module docstring)."""
    n = len(recs)
    k = n // 2
    top, bottom = recs[:k], recs[n - k:]
    low_top = min(r["engagement"] for r in top)
    high_bottom = max(r["engagement"] for r in bottom)
    rows = []
    for rank, r in enumerate(recs, start=1):
        if rank <= k:
            label = True
            if r["engagement"] <= high_bottom:
                continue
        elif rank > n - k:
            label = False
            if r["engagement"] >= low_top:
                continue
        else:
            continue
        rows.append({
            "reply_id": r["reply_id"], "tweet_id": tweet_id, "query": query, "split": split, "tweet": tweet,
            "prompt": prompt, "completion": r["reply_text"], "label": label, "likes": int(r["likes"]),
            "engagement": float(r["engagement"]), "engagement_rank": rank, "replies_in_tweet": n,
        })
    return rows


# --------------------------------------------------------------------------- training files


def dpo_record(row: dict[str, Any]) -> dict[str, Any]:
    """One line of preference_train.jsonl / preference_eval.jsonl (the training program's format)."""
    return {
        "prompt": [{"role": "user", "content": str(row["prompt"])}],
        "chosen": [{"role": "assistant", "content": str(row["chosen"])}],
        "rejected": [{"role": "assistant", "content": str(row["rejected"])}],
        "tweet_id": str(row["tweet_id"]),
        "pair_id": str(row["pair_id"]),
    }


def kto_record(row: dict[str, Any]) -> dict[str, Any]:
    """One line of kto_train.jsonl / kto_eval.jsonl."""
    return {
        "prompt": [{"role": "user", "content": str(row["prompt"])}],
        "completion": [{"role": "assistant", "content": str(row["completion"])}],
        "label": bool(row["label"]),
        "tweet_id": str(row["tweet_id"]),
        "reply_id": str(row["reply_id"]),
    }


EXPORT_FILES = {
    "preference_train.jsonl": ("pairs", "train"),
    "preference_eval.jsonl": ("pairs", "eval"),
    "kto_train.jsonl": ("kto", "train"),
    "kto_eval.jsonl": ("kto", "eval"),
}


def export_preference_files(pairs: pd.DataFrame, kto: pd.DataFrame, out_dir: str | Path) -> dict[str, Any]:
    """The training program's files (train and eval splits only: test tweets never train),
    each written atomically; ``{name: {"path", "sha256", "rows"}}``. Same frames, same bytes."""
    out_dir = Path(out_dir)
    files: dict[str, dict[str, Any]] = {}
    for name, (kind, split) in EXPORT_FILES.items():
        frame = pairs if kind == "pairs" else kto
        order = ["tweet_id", "pair_id"] if kind == "pairs" else ["tweet_id", "reply_id"]
        rows = frame[frame["split"].astype(str) == split].sort_values(order, kind="mergesort") if len(frame) else frame
        to_record = dpo_record if kind == "pairs" else kto_record
        body = "".join(json.dumps(to_record(r), ensure_ascii=False) + "\n" for r in rows.to_dict("records"))
        path = out_dir / name
        files[name] = {"path": str(path), "sha256": atomic_write(path, body.encode("utf-8")), "rows": int(len(rows))}
    return files


# --------------------------------------------------------------------------- checks


def split_conflicts(pairs: pd.DataFrame, curated: pd.DataFrame | None = None) -> list[str]:
    """Tweets found in two splits (within the pairs, or against the curated set's split)."""
    bad: set[str] = set()
    if len(pairs):
        per = pairs.groupby(pairs["tweet_id"].astype(str))["split"].nunique()
        bad |= set(per[per > 1].index)
    if curated is not None and len(curated) and len(pairs):
        cur = dict(zip(curated["tweet_id"].astype(str), curated["split"].astype(str), strict=True))
        for t, s in zip(pairs["tweet_id"].astype(str), pairs["split"].astype(str), strict=True):
            if t in cur and cur[t] != s:
                bad.add(t)
    return sorted(bad)


def same_reply_pairs(pairs: pd.DataFrame) -> list[str]:
    """pair_ids whose chosen and rejected are one reply or one text."""
    if pairs.empty:
        return []
    same_id = pairs["chosen_reply_id"].astype(str) == pairs["rejected_reply_id"].astype(str)
    same_text = pairs["chosen"].map(_same_text_key) == pairs["rejected"].map(_same_text_key)
    return pairs.loc[same_id | same_text, "pair_id"].astype(str).tolist()


# --------------------------------------------------------------------------- judge vs likes


def likes_agreement_items(pairs: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One pair per tweet of ``split`` (the largest engagement ratio): the units on which a judge
    is checked against real likes. Columns for ``core.judging.judge_pairs``: ``item_id``,
    ``tweet``, ``base_reply`` (the rejected reply), ``adapter_reply`` (the chosen one), no
    reference; the judge never sees likes or authors."""
    cols = ["item_id", "tweet_id", "tweet", "base_reply", "adapter_reply", "engagement_ratio"]
    if pairs.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    p = pairs[pairs["split"].astype(str) == split].copy()
    p["_r"] = p["engagement_ratio"].fillna(np.inf)
    p = p.sort_values(["tweet_id", "_r", "pair_id"], ascending=[True, False, True]).drop_duplicates("tweet_id")
    return pd.DataFrame({
        "item_id": "likes:" + p["pair_id"].astype(str),
        "tweet_id": p["tweet_id"].astype(str),
        "tweet": p["tweet"].astype(str),
        "base_reply": p["rejected"].astype(str),
        "adapter_reply": p["chosen"].astype(str),
        "engagement_ratio": p["engagement_ratio"],
    }).reset_index(drop=True)


OUTCOME_CREDIT = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def likes_agreement(
    judged: pd.DataFrame, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """How often the judge prefers the reply readers liked more: credit 1 when it picks the chosen
    reply in both orders, 0.5 for a tie or a split verdict, 0 when it picks the rejected one; the
    mean over tweets (one pair each) with a percentile bootstrap interval. ``better_than_chance``
    is True only when the whole interval lies above 0.5."""
    valid = judged[judged["outcome"].isin(list(OUTCOME_CREDIT))] if len(judged) else judged
    n = len(valid)
    out: dict[str, Any] = {
        "pairs": int(n), "invalid": int(len(judged) - n), "agreement": None, "ci_low": None, "ci_high": None,
        "agree": 0, "disagree": 0, "ties": 0, "position_flips": 0, "better_than_chance": False,
        "confidence": confidence,
    }
    if n == 0:
        return out
    credit = valid["outcome"].map(OUTCOME_CREDIT).to_numpy(dtype="float64")
    out.update(
        agreement=float(credit.mean()),
        agree=int((valid["outcome"] == "win").sum()),
        disagree=int((valid["outcome"] == "loss").sum()),
        ties=int((valid["outcome"] == "tie").sum()),
        position_flips=int(valid["position_flip"].astype(bool).sum()) if "position_flip" in valid else 0,
    )
    if n >= 2:
        rng = np.random.default_rng(seed)
        means = credit[rng.integers(0, n, size=(int(resamples), n))].mean(axis=1)
        lo, hi = np.quantile(means, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
        out.update(ci_low=float(lo), ci_high=float(hi))
        out["better_than_chance"] = bool(lo > 0.5)
    return out


def judges_agreement(judged: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Agreement between judges on the same items (``judge_pairs`` frames by judge name, one row
    per ``item_id``): for every two judges, the items both judged validly, the share where they
    give the same outcome (win, tie or loss), and the share where one says win and the other loss."""
    names = list(judged)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            fa = judged[a].set_index("item_id")["outcome"]
            fb = judged[b].set_index("item_id")["outcome"]
            both = fa.to_frame("a").join(fb.to_frame("b"), how="inner")
            both = both[both["a"].isin(list(OUTCOME_CREDIT)) & both["b"].isin(list(OUTCOME_CREDIT))]
            n = len(both)
            opposite = ((both["a"] == "win") & (both["b"] == "loss")) | ((both["a"] == "loss") & (both["b"] == "win"))
            rows.append({"judge_a": a, "judge_b": b, "items": int(n),
                         "same_outcome": float((both["a"] == both["b"]).mean()) if n else None,
                         "opposite": float(opposite.mean()) if n else None})
    return rows
