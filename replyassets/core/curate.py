"""Curation: rank deduped pairs, apply review decisions, select, split, export.

Pure pandas/numpy; no Dagster. The ``curated_set`` asset calls :func:`curate` then
:func:`export_curated_set`; the review CLI calls :func:`rank_candidates`.

Quality score (the prototype's "Quality sorting: by engagement + credibility + timing")
---------------------------------------------------------------------------------------
Every term is a number in [0, 1], placed on a log scale inside the band the collection
filters already allow (``CollectionSettings``), so a score means the same thing on every run:

* engagement  ``E = clip(log1p(reply_likes) / log1p(reply_max_likes), 0, 1)``
* credibility ``C = clip((ln followers - ln min_followers) / (ln max_followers - ln min_followers), 0, 1)``
  (followers inside the 200-20,000 band the collection allows: more followers, more credible, while
  celebrities are already excluded by the band's upper end)
* timing      ``T = clip((ln delay - ln min_delay) / (ln max_delay - ln min_delay), 0, 1)``
  (a reply that earns its likes later, without the first-replies visibility advantage the
  prototype warned about (docs/design.md, "Baselines"), is a stronger sign that the text itself is good)

``quality_score = wE*E + wC*C + wT*T`` with weights from ``CurationSettings``
(0.6 / 0.25 / 0.15 by default), divided by their sum, so the score is in [0, 1].
A missing value counts as 0 for its term. Ties break by reply likes (desc) then reply_id
(asc), so the order is total and deterministic.

Split
-----
A function of the tweet id (:func:`tweet_split`): ``u = sha256(f"{seed}:{tweet_id}")`` read as a
number in [0, 1) (its first 64 bits); ``u < test`` -> ``test``, ``u < test + eval`` -> ``eval``,
otherwise ``train`` (the fractions of ``CurationSettings``, normalized to sum 1). So every pair
of a tweet lands in one split, the same seed gives the same split in every set the tweet
appears in, and adding or removing tweets never moves another tweet: preference pairs and
extra evaluation prompts built later from ``tweet_split`` agree with ``curated_set``. Split
sizes are binomial around the fractions (a tweet with many replies moves many pairs at once).

Empty splits: a split with a positive fraction that the hash leaves empty (likely only in
small sets: about 3 * 0.9^150 < 1e-6 at the defaults with 150 tweets) takes, from the split with
the most tweets, the tweet whose ``u`` lies nearest its interval (``train`` first, then
``test``, then ``eval``), when the set has enough tweets. Only that tweet departs from
``tweet_split``; evaluation prompts and preference pairs take a curated tweet's split from the
curated set, so they agree with it.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from replyassets.core.columns import PAIR_COLUMNS
from replyassets.core.files import atomic_write
from replyassets.settings import CollectionSettings, CurationSettings

SPLITS = ("train", "eval", "test")
REVIEW_STATUSES = ("kept", "edited", "pending")
DECISIONS = ("keep", "reject", "edit")
# Columns curate() adds to the candidate columns.
CURATED_EXTRA_COLUMNS = [
    "quality_score", "rank", "split", "review_status", "edited", "train_reply", "prompt",
]
# What a candidate frame must have for ranking and curation.
REQUIRED_CANDIDATE_COLUMNS = [
    "tweet_id", "tweet", "reply_id", "reply", "reply_author",
    "reply_likes", "reply_author_followers", "reply_time_diff_seconds",
]
# Columns that define the training content (content_hash).
CONTENT_COLUMNS = ["reply_id", "tweet_id", "split", "prompt", "train_reply"]
EXPORT_FILES = {"train": "train.jsonl", "eval": "eval.jsonl", "test": "test.jsonl"}


class CurationError(ValueError):
    """Input that curation cannot work with (missing columns, bad template, bad decisions)."""


# --------------------------------------------------------------------------- ranking


def _require(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise CurationError(f"{what} is missing columns {missing}; it has {sorted(map(str, df.columns))}")


def _log_band(values: pd.Series, low: float, high: float) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype("float64")
    low = max(float(low), 1.0)
    high = max(float(high), low + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.log(v.clip(lower=1.0)) - math.log(low)) / (math.log(high) - math.log(low))
    return z.clip(0.0, 1.0).fillna(0.0)


def quality_score(
    df: pd.DataFrame,
    settings: CurationSettings | None = None,
    collection: CollectionSettings | None = None,
) -> pd.Series:
    """The quality score in [0, 1] (formula in the module docstring), indexed like ``df``."""
    settings = settings or CurationSettings()
    collection = collection or CollectionSettings()
    _require(df, ["reply_likes", "reply_author_followers", "reply_time_diff_seconds"], "quality_score input")
    likes = pd.to_numeric(df["reply_likes"], errors="coerce").astype("float64").clip(lower=0)
    engagement = (np.log1p(likes) / math.log1p(max(collection.reply_max_likes, 1))).clip(0.0, 1.0).fillna(0.0)
    credibility = _log_band(df["reply_author_followers"], collection.reply_min_followers, collection.reply_max_followers)
    timing = _log_band(df["reply_time_diff_seconds"], collection.reply_min_delay_s, collection.reply_max_delay_s)
    weights = np.array(
        [settings.quality_weight_engagement, settings.quality_weight_credibility, settings.quality_weight_timing],
        dtype="float64",
    )
    if (weights < 0).any() or weights.sum() <= 0:
        raise CurationError(f"quality weights must be >= 0 with a positive sum, got {weights.tolist()}")
    weights = weights / weights.sum()
    score = weights[0] * engagement + weights[1] * credibility + weights[2] * timing
    return score.round(6).rename("quality_score")


def candidates_from_deduped(deduped: pd.DataFrame) -> pd.DataFrame:
    """Rows that may be trained on: ``valid`` and ``kept`` (columns absent are treated as True)."""
    mask = pd.Series(True, index=deduped.index)
    for col in ("valid", "kept"):
        if col in deduped.columns:
            mask &= deduped[col].fillna(False).astype(bool)
    return deduped.loc[mask].copy()


def rank_candidates(
    df: pd.DataFrame,
    settings: CurationSettings | None = None,
    collection: CollectionSettings | None = None,
) -> pd.DataFrame:
    """``df`` sorted best first, with ``quality_score`` (float) and ``rank`` (int, 1 = best).

    Ties break by reply_likes desc, then reply_id asc. The index is reset.
    """
    _require(df, ["reply_id", "reply_likes", "reply_author_followers", "reply_time_diff_seconds"], "candidates")
    out = df.copy()
    out["quality_score"] = quality_score(out, settings, collection)
    out["_likes"] = pd.to_numeric(out["reply_likes"], errors="coerce").fillna(0)
    out["_rid"] = out["reply_id"].astype(str)
    out = out.sort_values(["quality_score", "_likes", "_rid"], ascending=[False, False, True], kind="mergesort")
    out = out.drop(columns=["_likes", "_rid"]).reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1, dtype="int64")
    return out


# --------------------------------------------------------------------------- prompt / split


def render_prompt(template: str, tweet: str) -> str:
    """The user message: ``template`` with ``{tweet}`` replaced (other braces are left alone)."""
    if "{tweet}" not in template:
        raise CurationError(f"prompt_template must contain '{{tweet}}', got {template!r}")
    return template.replace("{tweet}", tweet)


def split_fractions(settings: CurationSettings) -> dict[str, float]:
    """The split fractions, validated and normalized to sum 1."""
    fracs = np.array([settings.split_train, settings.split_eval, settings.split_test], dtype="float64")
    if not np.isfinite(fracs).all() or (fracs < 0).any() or fracs.sum() <= 0:
        raise CurationError(f"split fractions must be >= 0 with a positive sum, got {fracs.tolist()}")
    fracs = fracs / fracs.sum()
    return dict(zip(SPLITS, fracs.tolist(), strict=True))


def _tweet_unit(seed: int, tweet_id: str) -> float:
    """The tweet's position in [0, 1): the first 64 bits of ``sha256(f"{seed}:{tweet_id}")``."""
    digest = hashlib.sha256(f"{seed}:{tweet_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _intervals(fracs: dict[str, float]) -> dict[str, tuple[float, float]]:
    test_end = fracs["test"]
    eval_end = test_end + fracs["eval"]
    return {"test": (0.0, test_end), "eval": (test_end, eval_end), "train": (eval_end, 1.0)}


def _split_of(u: float, fracs: dict[str, float]) -> str:
    iv = _intervals(fracs)
    if u < iv["test"][1] or fracs["eval"] == fracs["train"] == 0:
        return "test"
    if u < iv["eval"][1] or fracs["train"] == 0:
        return "eval"
    return "train"


def tweet_split(tweet_id: str, settings: CurationSettings | None = None) -> str:
    """``train``, ``eval`` or ``test`` for one tweet id: a pure function of the id, the seed and the
    split fractions (module docstring). Raises :class:`CurationError` on a missing id or bad fractions."""
    settings = settings or CurationSettings()
    if tweet_id is None or (isinstance(tweet_id, float) and math.isnan(tweet_id)):
        raise CurationError("tweet_split needs a tweet id, got None")
    return _split_of(_tweet_unit(settings.seed, str(tweet_id)), split_fractions(settings))


def _distance(u: float, interval: tuple[float, float]) -> float:
    low, high = interval
    return low - u if u < low else (u - high if u >= high else 0.0)


def _fill_empty_splits(assignment: dict[str, str], fracs: dict[str, float], seed: int) -> dict[str, str]:
    """Tiny sets only: give every split with a positive fraction a tweet, when the set allows it.

    Priority ``train``, ``test``, ``eval``: an empty split takes the tweet nearest its interval from
    the split with the most tweets that can spare one (one that keeps a tweet, or an emptier of
    lower priority, which then gets its own turn).
    """
    out = dict(assignment)
    priority = [s for s in ("train", "test", "eval") if fracs[s] > 0]
    iv = _intervals(fracs)
    units = {t: _tweet_unit(seed, t) for t in out}
    for rank, target in enumerate(priority):
        if target in out.values():
            continue
        members = {s: sorted(t for t, v in out.items() if v == s) for s in SPLITS}
        donors = [s for s in SPLITS if s != target and (len(members[s]) >= 2 or (
            len(members[s]) == 1 and (s not in priority or priority.index(s) > rank)))]
        if not donors:
            continue
        donor = max(donors, key=lambda s: (len(members[s]), -SPLITS.index(s)))
        moved = min(members[donor], key=lambda t: (_distance(units[t], iv[target]), units[t], t))
        out[moved] = target
    return out


def assign_splits(df: pd.DataFrame, settings: CurationSettings | None = None) -> pd.Series:
    """A ``split`` value per row: :func:`tweet_split` of its ``tweet_id``; a split with a
    positive fraction that no tweet drew is then filled with the nearest tweet of the largest
    split (only small sets ever need it; module docstring). Evaluation prompts and preference
    pairs take a curated tweet's split from the curated set, so a moved tweet stays consistent."""
    settings = settings or CurationSettings()
    fracs = split_fractions(settings)
    if df.empty:
        return pd.Series([], index=df.index, dtype="object", name="split")
    tweet_ids = df["tweet_id"].astype(str)
    assignment = {t: _split_of(_tweet_unit(settings.seed, t), fracs) for t in pd.unique(tweet_ids)}
    assignment = _fill_empty_splits(assignment, fracs, settings.seed)
    return tweet_ids.map(assignment).rename("split")


# --------------------------------------------------------------------------- decisions / curate


def _normalize_decisions(decisions: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["reply_id", "decision", "edited_reply"]
    if decisions is None or len(decisions) == 0:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in cols})
    _require(decisions, ["reply_id", "decision"], "review decisions")
    d = decisions.copy()
    if "edited_reply" not in d.columns:
        d["edited_reply"] = None
    d["reply_id"] = d["reply_id"].astype(str)
    d["decision"] = d["decision"].astype(str).str.strip().str.lower()
    bad = d.loc[~d["decision"].isin(DECISIONS)]
    if len(bad):
        raise CurationError(f"unknown review decisions {sorted(set(bad['decision']))[:5]}; expected {DECISIONS}")
    blank_edit = (d["decision"] == "edit") & ~d["edited_reply"].fillna("").astype(str).str.strip().astype(bool)
    if blank_edit.any():
        raise CurationError(f"edit decisions without edited text for reply_ids {d.loc[blank_edit, 'reply_id'].tolist()[:5]}")
    if d["reply_id"].duplicated().any():
        # The store keys by reply_id; a frame from elsewhere keeps its last decision per id.
        if "decided_at" in d.columns:
            d = d.sort_values("decided_at", kind="mergesort")
        d = d.drop_duplicates("reply_id", keep="last")
    return d[cols]


def _empty_like(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="object") for c in columns})


def curate(
    candidates: pd.DataFrame,
    decisions: pd.DataFrame | None,
    settings: CurationSettings | None = None,
    collection: CollectionSettings | None = None,
) -> pd.DataFrame:
    """Rank, apply review decisions and policy, cap per author, select, split, render prompts.

    ``candidates``: deduped pairs (rows not ``valid`` & ``kept`` are dropped here).
    ``decisions``: ``reply_id``, ``decision`` in keep|reject|edit, ``edited_reply`` (as
    :meth:`ReviewStore.decisions` returns). Returns the candidate columns plus
    ``quality_score, rank, split, review_status, edited, train_reply, prompt``, sorted by rank;
    ``rank`` is the pair's rank among all candidates (gaps show what was dropped).
    """
    settings = settings or CurationSettings()
    collection = collection or CollectionSettings()  # the engagement bands and the per-author cap
    _require(candidates, REQUIRED_CANDIDATE_COLUMNS, "candidates")
    if settings.target_pairs < 0 or settings.max_pairs < 0:
        raise CurationError("target_pairs and max_pairs must be >= 0")
    if "{tweet}" not in settings.prompt_template:
        raise CurationError(f"prompt_template must contain '{{tweet}}', got {settings.prompt_template!r}")
    pool = candidates_from_deduped(candidates)
    pool = pool.drop(columns=[c for c in CURATED_EXTRA_COLUMNS if c in pool.columns])
    out_columns = list(pool.columns) + CURATED_EXTRA_COLUMNS
    if pool.empty:
        return _empty_like(out_columns)
    ranked = rank_candidates(pool, settings, collection)
    dec = _normalize_decisions(decisions).rename(
        columns={"reply_id": "_rid", "decision": "_decision", "edited_reply": "_edited_reply"})
    ranked["_rid"] = ranked["reply_id"].astype(str)
    if ranked["_rid"].duplicated().any():
        dupes = ranked.loc[ranked["_rid"].duplicated(), "_rid"].tolist()[:5]
        raise CurationError(f"candidates have duplicate reply_ids {dupes}: dedup must run first")
    merged = ranked.merge(dec, how="left", on="_rid", validate="one_to_one").drop(columns="_rid")
    decision = merged["_decision"].fillna("")
    merged = merged.loc[decision != "reject"].copy()
    decision = merged["_decision"].fillna("")
    merged["review_status"] = decision.map({"keep": "kept", "edit": "edited"}).fillna("pending")
    if settings.review_policy == "reviewed_only":
        merged = merged.loc[merged["review_status"] != "pending"].copy()
    merged["edited"] = merged["review_status"] == "edited"
    base_reply = merged["reply_clean"] if "reply_clean" in merged.columns else merged["reply"]
    base_reply = base_reply.where(base_reply.notna() & (base_reply.astype(str).str.strip() != ""), merged["reply"])
    merged["train_reply"] = merged["_edited_reply"].where(merged["edited"], base_reply).astype(str).str.strip()
    # Per-author cap in rank order (authors compared case-insensitively: handles are).
    author = merged["reply_author"].astype(str).str.strip().str.lower()
    merged = merged.loc[author.groupby(author).cumcount() < collection.max_replies_per_author]
    limit = min(settings.target_pairs, settings.max_pairs)
    merged = merged.sort_values("rank", kind="mergesort").head(limit).copy()
    tweet_text = merged["tweet_clean"] if "tweet_clean" in merged.columns else merged["tweet"]
    tweet_text = tweet_text.where(tweet_text.notna() & (tweet_text.astype(str).str.strip() != ""), merged["tweet"])
    merged["prompt"] = [render_prompt(settings.prompt_template, str(t)) for t in tweet_text]
    merged["split"] = assign_splits(merged, settings)
    merged = merged.drop(columns=["_decision", "_edited_reply"])
    merged["edited"] = merged["edited"].astype(bool)
    merged["rank"] = merged["rank"].astype("int64")
    return merged[out_columns].reset_index(drop=True)


# --------------------------------------------------------------------------- hashing / export


def _canonical_records(curated: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    cols = [c for c in columns if c in curated.columns]
    frame = curated[cols].copy()
    for c in cols:
        frame[c] = frame[c].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    records = frame.to_dict(orient="records")
    return sorted(records, key=lambda r: json.dumps(r, sort_keys=True, ensure_ascii=False))


def content_hash(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    """sha256 over the training-relevant columns (default :data:`CONTENT_COLUMNS`), row-order independent."""
    columns = columns or CONTENT_COLUMNS
    _require(df, [c for c in columns if c != "split"], "content_hash input")
    h = hashlib.sha256()
    h.update(json.dumps([c for c in columns if c in df.columns]).encode())
    for rec in _canonical_records(df, columns):
        h.update(json.dumps(rec, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def render_text(prompt: str, reply: str) -> str:
    """The Qwen3 chat rendering of one pair, with an empty think block (no trailing newline)."""
    return (
        f"<|im_start|>user\n{prompt}<|im_end|>\n"
        f"<|im_start|>assistant\n<think>\n\n</think>\n\n{reply}<|im_end|>"
    )


def training_record(row: dict[str, Any]) -> dict[str, Any]:
    """One JSONL line: ids, ``messages``, conversational ``prompt``/``completion`` and ``text``."""
    user = {"role": "user", "content": str(row["prompt"])}
    assistant = {"role": "assistant", "content": str(row["train_reply"])}
    return {
        "id": str(row["reply_id"]),
        "reply_id": str(row["reply_id"]),
        "tweet_id": str(row["tweet_id"]),
        "split": str(row["split"]),
        "messages": [user, assistant],
        "prompt": [user],
        "completion": [assistant],
        "text": render_text(user["content"], assistant["content"]),
    }


_atomic_write = atomic_write


def _describe(values: pd.Series) -> dict[str, float | int | None]:
    v = pd.to_numeric(values, errors="coerce").dropna().astype("float64")
    if v.empty:
        return {"count": 0, "min": None, "p25": None, "median": None, "p75": None, "max": None, "mean": None}
    q = v.quantile([0.25, 0.5, 0.75])
    return {
        "count": int(v.size), "min": float(v.min()), "p25": float(q.loc[0.25]), "median": float(q.loc[0.5]),
        "p75": float(q.loc[0.75]), "max": float(v.max()), "mean": round(float(v.mean()), 4),
    }


def dataset_card(curated: pd.DataFrame, settings: CurationSettings | None = None) -> dict[str, Any]:
    """Counts, diversity and distributions of a curated set, with its content hash and settings."""
    settings = settings or CurationSettings()
    split_counts = {s: int((curated["split"] == s).sum()) for s in SPLITS} if "split" in curated else {}
    status = curated["review_status"].value_counts().to_dict() if "review_status" in curated else {}
    reply_len = curated["train_reply"].astype(str).str.len() if "train_reply" in curated else pd.Series([], dtype=float)
    return {
        "rows": len(curated),
        "splits": split_counts,
        "unique_tweets": int(curated["tweet_id"].nunique()) if "tweet_id" in curated else 0,
        "unique_authors": int(curated["reply_author"].astype(str).str.lower().nunique()) if "reply_author" in curated else 0,
        "unique_tweets_per_split": (
            {s: int(curated.loc[curated["split"] == s, "tweet_id"].nunique()) for s in SPLITS} if "split" in curated else {}
        ),
        "review_status": {k: int(status.get(k, 0)) for k in REVIEW_STATUSES},
        "distributions": {
            "reply_length_chars": _describe(reply_len),
            "reply_likes": _describe(curated["reply_likes"]) if "reply_likes" in curated else _describe(pd.Series([], dtype=float)),
            "reply_author_followers": (
                _describe(curated["reply_author_followers"]) if "reply_author_followers" in curated else _describe(pd.Series([], dtype=float))
            ),
            "quality_score": _describe(curated["quality_score"]) if "quality_score" in curated else _describe(pd.Series([], dtype=float)),
        },
        "queries": (
            {str(k): int(v) for k, v in curated["query"].value_counts().sort_index().items()} if "query" in curated else {}
        ),
        "content_hash": content_hash(curated),
        "format": "Qwen3 chat (messages; prompt/completion; text with an empty think block)",
        "settings": settings.model_dump(mode="json"),
    }


def _card_markdown(card: dict[str, Any], files: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# replyassets curated set",
        "",
        f"- content hash: `{card['content_hash']}`",
        (f"- pairs: {card['rows']} (train {card['splits'].get('train', 0)}, eval {card['splits'].get('eval', 0)}, "
        f"test {card['splits'].get('test', 0)})"),
        f"- unique tweets: {card['unique_tweets']}; unique reply authors: {card['unique_authors']}",
        "- review status: " + ", ".join(f"{k} {v}" for k, v in card["review_status"].items()),
        f"- review policy: {card['settings']['review_policy']}; seed: {card['settings']['seed']}",
        f"- prompt template: `{json.dumps(card['settings']['prompt_template'])}`",
        "",
        "## Distributions",
        "",
        "| column | count | min | p25 | median | p75 | max | mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, d in card["distributions"].items():
        lines.append(f"| {name} | " + " | ".join("" if d[k] is None else f"{d[k]:g}" for k in
                                                   ("count", "min", "p25", "median", "p75", "max", "mean")) + " |")
    lines += ["", "## Files", "", "| file | rows | sha256 |", "|---|---|---|"]
    for name, f in files.items():
        lines.append(f"| {name} | {f['rows']} | `{f['sha256']}` |")
    if card["queries"]:
        lines += ["", "## Pairs per query", ""] + [f"- {q}: {n}" for q, n in card["queries"].items()]
    return "\n".join(lines) + "\n"


def training_file_contents(curated: pd.DataFrame, settings: CurationSettings | None = None) -> tuple[dict[str, bytes], dict[str, int], str]:
    """The bytes of every file of a curated set's export: ``({name: bytes}, {name: rows},
    content hash)``. Rows are in rank order; the same curated set and settings give the same bytes."""
    settings = settings or CurationSettings()
    _require(curated, ["reply_id", "tweet_id", "split", "prompt", "train_reply"], "curated set")
    bad_split = sorted(set(curated["split"].astype(str)) - set(SPLITS))
    if bad_split:
        raise CurationError(f"unknown split values {bad_split}")
    ordered = curated.sort_values("rank", kind="mergesort") if "rank" in curated.columns else curated
    contents: dict[str, bytes] = {}
    rows: dict[str, int] = {}
    for split, name in EXPORT_FILES.items():
        part = ordered.loc[ordered["split"] == split]
        contents[name] = "".join(
            json.dumps(training_record(r), ensure_ascii=False, sort_keys=False) + "\n" for r in part.to_dict(orient="records")
        ).encode("utf-8")
        rows[name] = len(part)
    jsonl = {name: {"rows": rows[name], "sha256": hashlib.sha256(contents[name]).hexdigest()} for name in EXPORT_FILES.values()}
    card = dataset_card(curated, settings)
    card["files"] = jsonl
    contents["dataset_card.json"] = (json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    rows["dataset_card.json"] = 1
    contents["dataset_card.md"] = _card_markdown(card, jsonl).encode("utf-8")
    rows["dataset_card.md"] = 1
    return contents, rows, card["content_hash"]


def export_hash(contents: dict[str, bytes]) -> str:
    """sha256 over every file's name and bytes: the name of the folder that holds exactly them."""
    h = hashlib.sha256()
    for name in sorted(contents):
        h.update(json.dumps([name, hashlib.sha256(contents[name]).hexdigest()]).encode())
        h.update(b"\n")
    return h.hexdigest()


def export_training_files(curated: pd.DataFrame, out_dir: Path | str, settings: CurationSettings | None = None) -> dict[str, Any]:
    """Write train/eval/test.jsonl and dataset_card.md/.json into ``out_dir``, each atomically.

    Returns ``{"out_dir", "content_hash", "files": {name: {"path", "sha256", "rows"}}}``.
    Rows are written in rank order; the same curated set gives the same bytes.
    """
    contents, rows, digest = training_file_contents(curated, settings)
    out_dir = Path(out_dir)
    files = {name: {"path": str(out_dir / name), "sha256": _atomic_write(out_dir / name, body), "rows": rows[name]}
             for name, body in contents.items()}
    return {"out_dir": str(out_dir), "content_hash": digest, "files": files}


def export_curated_set(curated: pd.DataFrame, root: Path | str, settings: CurationSettings | None = None) -> dict[str, Any]:
    """Export into ``root/{export hash[:16]}``, a folder named by the hash of every byte it holds
    (rows, dataset card, settings), so a folder a materialization recorded is never written again:
    other bytes (the same rows with another setting, say) go to another folder.

    In an existing folder, a file with the expected bytes is left as it is (not even replaced by
    the same bytes), a missing one (an export that crashed) is written, and a file with other
    bytes (edited outside) raises :class:`CurationError` and nothing is written.
    Returns what :func:`export_training_files` returns, plus ``export_hash``.
    """
    contents, rows, digest = training_file_contents(curated, settings)
    full = export_hash(contents)
    out_dir = Path(root) / full[:16]
    expected = {name: hashlib.sha256(body).hexdigest() for name, body in contents.items()}
    missing = []
    for name, sha in expected.items():
        path = out_dir / name
        if not path.exists():
            missing.append(name)
        elif hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            raise CurationError(
                f"{path} differs from the export it names (edited outside replyassets?); nothing was written. "
                f"Move the folder {out_dir} away to export again."
            )
    for name in missing:
        _atomic_write(out_dir / name, contents[name])
    files = {name: {"path": str(out_dir / name), "sha256": expected[name], "rows": rows[name]} for name in contents}
    return {"out_dir": str(out_dir), "content_hash": digest, "export_hash": full, "files": files}


__all__ = [
    "CONTENT_COLUMNS",
    "CURATED_EXTRA_COLUMNS",
    "PAIR_COLUMNS",
    "REQUIRED_CANDIDATE_COLUMNS",
    "SPLITS",
    "CurationError",
    "assign_splits",
    "candidates_from_deduped",
    "content_hash",
    "curate",
    "dataset_card",
    "export_curated_set",
    "export_hash",
    "export_training_files",
    "quality_score",
    "rank_candidates",
    "render_prompt",
    "render_text",
    "training_file_contents",
    "training_record",
    "tweet_split",
]
