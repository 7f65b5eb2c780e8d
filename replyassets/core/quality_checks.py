"""Data-quality checks as plain functions (the Dagster asset checks call these).

Each check takes a DataFrame (and, for the curated set, the full :class:`Settings`) and
returns a :class:`CheckOutcome` whose ``metadata`` is JSON-friendly (ints, floats, strings,
lists, dicts) and carries at most :data:`MAX_EXAMPLES` failing examples.

``CURATED_CHECKS`` lists the checks on ``curated_set`` (name -> :class:`CheckSpec`, with the
blocking flag); :func:`run_curated_checks` runs them all. No Dagster import here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from replyassets.core.curate import SPLITS
from replyassets.core.rule_settings import setting_ref as ref
from replyassets.core.urls import url_mask
from replyassets.settings import Settings

MAX_EXAMPLES = 10

# Columns a curated set must carry, non-null and (for text) non-blank.
CURATED_REQUIRED_TEXT = ["reply_id", "tweet_id", "reply_author", "prompt", "train_reply", "split", "review_status"]
CURATED_REQUIRED_OTHER = ["quality_score", "rank", "toxicity", "lang_confidence"]


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


EmbedFn = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    fn: Callable[..., CheckOutcome]
    blocking: bool
    description: str
    needs_embeddings: bool = False


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if np.isnan(v) else round(float(v), 6)
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, bool)):
        return v
    return str(v)


def _examples(df: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    cols = [c for c in columns if c in df.columns]
    rows = df[cols].head(MAX_EXAMPLES).to_dict(orient="records")
    return [{k: _jsonable(v) if not isinstance(v, str) else v[:200] for k, v in r.items()} for r in rows]


def _outcome(passed: bool, description: str, **metadata: Any) -> CheckOutcome:
    return CheckOutcome(bool(passed), description, _jsonable(metadata))


def _missing(df: pd.DataFrame, columns: Sequence[str], check: str) -> CheckOutcome | None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        return _outcome(False, f"{check}: the frame lacks columns {missing}", missing_columns=missing)
    return None


def _reply_text(df: pd.DataFrame) -> pd.Series:
    return df["train_reply"] if "train_reply" in df.columns else df["reply"]


def _authors(df: pd.DataFrame) -> pd.Series:
    return df["reply_author"].astype(str).str.strip().str.lower()


# --------------------------------------------------------------------------- generic (upstream)


def non_empty(df: pd.DataFrame, what: str = "rows") -> CheckOutcome:
    """At least one row."""
    n = len(df)
    return _outcome(n > 0, f"{n} {what}" if n else f"no {what}: the partition/table is empty", rows=n)


def rejection_rate(df: pd.DataFrame, alarm: float, flag_column: str = "valid") -> CheckOutcome:
    """Fails (raise a WARN in Dagster) when the share of rows with ``flag_column`` False exceeds ``alarm``.

    Also reports the count per rejection reason when a ``reasons`` column is present.
    """
    if (m := _missing(df, [flag_column], "rejection_rate")) is not None:
        return m
    n = len(df)
    rejected = int((~df[flag_column].fillna(False).astype(bool)).sum())
    rate = rejected / n if n else 0.0
    by_reason: dict[str, int] = {}
    if "reasons" in df.columns and rejected:
        exploded = df["reasons"].fillna("").astype(str).str.split(",").explode()
        by_reason = {k: int(v) for k, v in exploded[exploded != ""].value_counts().head(20).items()}
    passed = n > 0 and rate <= alarm
    desc = (f"rejection rate {rate:.1%} ({rejected}/{n}) "
            + ("within" if passed else "above") + f" the alarm at {alarm:.0%}") if n else "no rows to judge"
    return _outcome(passed, desc, rows=n, rejected=rejected, rejection_rate=round(rate, 4), alarm=alarm,
                    rejected_by_reason=by_reason)


# --------------------------------------------------------------------------- curated set


def check_size(df: pd.DataFrame, settings: Settings) -> CheckOutcome:
    c = settings.curation
    n = len(df)
    ok = c.min_pairs <= n <= c.max_pairs
    desc = f"{n} pairs, allowed [{ref('curation.min_pairs', settings)}, {ref('curation.max_pairs', settings)}]"
    return _outcome(ok, desc, rows=n, min_pairs=c.min_pairs,
                    max_pairs=c.max_pairs)


def check_unique_tweets(df: pd.DataFrame, settings: Settings) -> CheckOutcome:
    if (m := _missing(df, ["tweet_id"], "unique tweets")) is not None:
        return m
    n = int(df["tweet_id"].nunique())
    need = settings.curation.min_unique_tweets
    return _outcome(n >= need, f"{n} unique tweets (need >= {ref('curation.min_unique_tweets', settings)})",
                    unique_tweets=n, min_unique_tweets=need)


def check_unique_authors(df: pd.DataFrame, settings: Settings) -> CheckOutcome:
    if (m := _missing(df, ["reply_author"], "unique authors")) is not None:
        return m
    n = int(_authors(df).nunique())
    need = settings.curation.min_unique_authors
    return _outcome(n >= need, f"{n} unique reply authors (need >= {ref('curation.min_unique_authors', settings)})",
                    unique_authors=n,
                    min_unique_authors=need)


def check_replies_per_author(df: pd.DataFrame, settings: Settings) -> CheckOutcome:
    if (m := _missing(df, ["reply_author"], "replies per author")) is not None:
        return m
    cap = settings.collection.max_replies_per_author
    counts = _authors(df).value_counts()
    over = counts[counts > cap]
    top = int(counts.max()) if len(counts) else 0
    return _outcome(
        over.empty,
        f"max {top} replies per author (cap {ref('collection.max_replies_per_author', settings)})"
        + ("" if over.empty else f"; {len(over)} authors over"),
        max_per_author=top, cap=cap, authors_over_cap=len(over),
        examples=[{"reply_author": a, "replies": int(n)} for a, n in over.head(MAX_EXAMPLES).items()],
    )


def _norm_text(s: pd.Series) -> pd.Series:
    return s.fillna("").astype(str).str.casefold().str.replace(r"\s+", " ", regex=True).str.strip()


def check_no_exact_duplicates(df: pd.DataFrame, settings: Settings | None = None) -> CheckOutcome:
    """No repeated reply_id, and no two training replies equal after casefolding and whitespace collapse."""
    if (m := _missing(df, ["reply_id"], "exact duplicates")) is not None:
        return m
    dup_ids = df.loc[df["reply_id"].duplicated(keep=False)]
    text = _norm_text(_reply_text(df))
    mask = text.duplicated(keep=False) & (text != "")
    dup_text = df.loc[mask].assign(_norm=text[mask].to_numpy())
    dup_text = dup_text.sort_values("_norm", kind="mergesort")
    ok = dup_ids.empty and dup_text.empty
    return _outcome(
        ok,
        "no exact duplicates" if ok else f"{len(dup_ids)} rows share a reply_id, {len(dup_text)} rows share a reply text",
        duplicate_id_rows=len(dup_ids), duplicate_text_rows=len(dup_text),
        examples=_examples(dup_ids, ["reply_id", "tweet_id"]) + _examples(dup_text, ["reply_id", "tweet_id", "train_reply", "reply"]),
    )


def check_no_semantic_duplicates(
    df: pd.DataFrame,
    settings: Settings,
    embeddings: np.ndarray | None = None,
    embed: EmbedFn | None = None,
    threshold: float | None = None,
) -> CheckOutcome:
    """No two rows whose reply embeddings have cosine >= threshold (default: the dedup threshold).

    Pass precomputed ``embeddings`` (one row per df row, same order) or an ``embed`` function
    taking a list of texts. With neither, the check fails: it cannot vouch for the set.
    """
    threshold_text = ref("dedup.similarity_threshold", settings) if threshold is None else str(threshold)
    threshold = settings.dedup.similarity_threshold if threshold is None else float(threshold)
    n = len(df)
    if n < 2:
        return _outcome(True, f"{n} rows: nothing to compare", rows=n, threshold=threshold)
    texts = _reply_text(df).fillna("").astype(str).tolist()
    if embeddings is None:
        if embed is None:
            return _outcome(False, "no embeddings or embed function given: semantic duplicates not checked",
                            rows=n, threshold=threshold)
        embeddings = embed(texts)
    emb = np.asarray(embeddings, dtype="float32")
    if emb.ndim != 2 or emb.shape[0] != n:
        return _outcome(False, f"embeddings have shape {list(emb.shape)}, expected ({n}, dim)", rows=n)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    if not np.isfinite(emb).all() or (norms == 0).any():
        return _outcome(False, "embeddings contain non-finite or zero vectors", rows=n)
    emb = emb / norms
    pairs: list[tuple[float, int, int]] = []
    count = 0
    best = -1.0
    chunk = 1024
    for start in range(0, n, chunk):
        sims = emb[start:start + chunk] @ emb.T
        rows = np.arange(start, min(start + chunk, n))
        sims[np.arange(n)[None, :] <= rows[:, None]] = -np.inf  # each pair once (j > i), never self
        best = max(best, float(sims.max()))
        ii, jj = np.nonzero(sims >= threshold)
        count += len(ii)
        for a, b in zip(ii[:MAX_EXAMPLES], jj[:MAX_EXAMPLES], strict=False):
            pairs.append((float(sims[a, b]), int(rows[a]), int(b)))
    pairs.sort(reverse=True)
    ids = df["reply_id"].astype(str).tolist() if "reply_id" in df.columns else [str(i) for i in range(n)]
    examples = [{"similarity": round(s, 4), "reply_id_a": ids[a], "reply_id_b": ids[b],
                 "reply_a": texts[a][:200], "reply_b": texts[b][:200]} for s, a, b in pairs[:MAX_EXAMPLES]]
    return _outcome(
        count == 0,
        f"max pairwise cosine {best:.3f} (threshold {threshold_text})" + ("" if count == 0 else f"; {count} pairs at or above"),
        rows=n, threshold=threshold, max_similarity=round(best, 4), pairs_over=count, examples=examples,
    )


def check_toxicity(df: pd.DataFrame, settings: Settings) -> CheckOutcome:
    """Every row scored and below ``validation.max_toxicity`` (a missing score fails)."""
    if (m := _missing(df, ["toxicity"], "toxicity")) is not None:
        return m
    limit = settings.validation.max_toxicity
    tox = pd.to_numeric(df["toxicity"], errors="coerce")
    bad = df.loc[tox.isna() | (tox >= limit)]
    return _outcome(
        bad.empty,
        f"max toxicity {tox.max():.3f} (< {ref('validation.max_toxicity', settings)} required)" if bad.empty
        else f"{len(bad)} rows toxic or unscored (>= {ref('validation.max_toxicity', settings)})",
        max_toxicity=float(tox.max()) if tox.notna().any() else None, limit=limit, failing_rows=len(bad),
        examples=_examples(bad, ["reply_id", "toxicity", "train_reply", "reply"]),
    )


def check_english(df: pd.DataFrame, settings: Settings) -> CheckOutcome:
    """Every row's English confidence above ``validation.min_lang_confidence`` (missing fails)."""
    if (m := _missing(df, ["lang_confidence"], "English only")) is not None:
        return m
    limit = settings.validation.min_lang_confidence
    conf = pd.to_numeric(df["lang_confidence"], errors="coerce")
    bad = df.loc[conf.isna() | (conf <= limit)]
    return _outcome(
        bad.empty,
        f"min English confidence {conf.min():.3f} (> {ref('validation.min_lang_confidence', settings)} required)"
        if bad.empty else f"{len(bad)} rows not confidently English (<= {ref('validation.min_lang_confidence', settings)})",
        min_lang_confidence=float(conf.min()) if conf.notna().any() else None, limit=limit, failing_rows=len(bad),
        examples=_examples(bad, ["reply_id", "lang_confidence", "train_reply", "reply"]),
    )


def check_no_urls(df: pd.DataFrame, settings: Settings | None = None) -> CheckOutcome:
    """No URL in the training reply (core/urls.py, the detector validation uses), and no row
    flagged ``has_urls``."""
    text = _reply_text(df).fillna("").astype(str)
    found = pd.Series(url_mask(text.tolist()), index=df.index)
    if "has_urls" in df.columns:
        found |= df["has_urls"].fillna(False).astype(bool)
    bad = df.loc[found]
    return _outcome(bad.empty, "no URLs in replies" if bad.empty else f"{len(bad)} replies carry URLs",
                    failing_rows=len(bad), examples=_examples(bad, ["reply_id", "train_reply", "reply"]))


def check_splits_disjoint(df: pd.DataFrame, settings: Settings | None = None) -> CheckOutcome:
    """Split values are train/eval/test, each present, and no tweet_id appears in two splits."""
    if (m := _missing(df, ["tweet_id", "split"], "splits")) is not None:
        return m
    split = df["split"].astype("object")
    unknown = sorted({str(s) for s in split.dropna().unique()} - set(SPLITS))
    null_split = int(split.isna().sum())
    per_tweet = df.groupby(df["tweet_id"].astype(str))["split"].nunique()
    leaked = per_tweet[per_tweet > 1]
    counts = {s: int((split == s).sum()) for s in SPLITS}
    empty = [s for s, c in counts.items() if c == 0]
    problems = []
    if unknown or null_split:
        problems.append(f"unknown/missing split values {unknown} ({null_split} null)")
    if len(leaked):
        problems.append(f"{len(leaked)} tweets in more than one split")
    if empty:
        problems.append(f"empty splits {empty}")
    examples = [
        {"tweet_id": t, "splits": sorted(df.loc[df["tweet_id"].astype(str) == t, "split"].astype(str).unique())}
        for t in leaked.index[:MAX_EXAMPLES]
    ]
    return _outcome(not problems, "; ".join(problems) or f"splits disjoint by tweet: {counts}",
                    split_counts=counts, leaked_tweets=len(leaked), unknown_splits=unknown, empty_splits=empty,
                    examples=examples)


def check_required_columns(df: pd.DataFrame, settings: Settings | None = None) -> CheckOutcome:
    """Required columns present; text ones non-null and non-blank; the others non-null; reply_id unique."""
    required = CURATED_REQUIRED_TEXT + CURATED_REQUIRED_OTHER
    if (m := _missing(df, required, "required columns")) is not None:
        return m
    problems: dict[str, int] = {}
    bad_rows = pd.Series(False, index=df.index)
    for c in CURATED_REQUIRED_TEXT:
        blank = df[c].isna() | (df[c].astype(str).str.strip() == "")
        if blank.any():
            problems[c] = int(blank.sum())
            bad_rows |= blank
    for c in CURATED_REQUIRED_OTHER:
        null = df[c].isna()
        if null.any():
            problems[c] = int(null.sum())
            bad_rows |= null
    if df["reply_id"].duplicated().any():
        problems["reply_id (duplicated)"] = int(df["reply_id"].duplicated().sum())
    return _outcome(not problems, "all required columns present and filled" if not problems
                    else f"blank/missing values: {problems}", empty_by_column=problems,
                    examples=_examples(df.loc[bad_rows], ["reply_id"] + CURATED_REQUIRED_TEXT[1:]))


def check_test_power(curated: pd.DataFrame, settings: Settings, collected: pd.DataFrame | None = None) -> CheckOutcome:
    """Whether the evaluation's test tweets can reach 80 % power (``stats.POWER_TARGET``) for a
    paired effect of ``evaluation.min_cohens_d`` at ``evaluation.alpha``, said before any training.

    The test tweets are the ones the evaluation will use (``core/eval_prompts.py``): every
    collected tweet (``collected``, deduped_pairs; the curated set when None) in the test split,
    at most ``evaluation.max_test_tweets``. When too few, the outcome says how many test tweets
    are needed and how many more tweets with pairs that means collecting, given the test share
    of the split fractions (or that ``evaluation.max_test_tweets`` caps it below the need)."""
    from replyassets.core.curate import split_fractions
    from replyassets.core.eval_prompts import evaluation_tweets
    from replyassets.core.stats import POWER_TARGET, paired_power, required_units

    cur = settings.curation
    d, alpha, cap = settings.evaluation.min_cohens_d, settings.evaluation.alpha, settings.evaluation.max_test_tweets
    source = curated if collected is None else collected
    n = len(evaluation_tweets(source, curated, cur, cap)) if len(source) else 0
    needed = required_units(d, POWER_TARGET, alpha)
    power = paired_power(d, n, alpha)
    test_share = split_fractions(cur)["test"]
    missing = max(0, needed - n)
    more = math.ceil(missing / test_share) if missing and test_share > 0 else (0 if not missing else None)
    effect = f"a paired d = {ref('evaluation.min_cohens_d', settings)} at {ref('evaluation.alpha', settings)}"
    if not missing:
        desc = f"{n} test tweets: power {power:.2f} for {effect} (>= {POWER_TARGET:.0%})"
    else:
        desc = (f"{n} test tweets: power {power:.2f} for {effect}; {POWER_TARGET:.0%} power needs {needed} test "
                f"tweets, {missing} more")
        if cap < needed:
            desc += f"; {ref('evaluation.max_test_tweets', settings)} caps the test tweets below that: raise it"
        if more is None:
            desc += f"; {ref('curation.split_test', settings)} puts no tweet in the test split"
        else:
            desc += (f"; collect about {more} more tweets with pairs ({test_share:.0%} of tweets go to the test split: "
                     f"{ref('curation.split_test', settings)}) before training")
    return _outcome(not missing, desc, test_tweets=n, power=round(power, 4), power_target=POWER_TARGET,
                    effect_size=d, tweets_needed=needed, more_test_tweets_needed=missing,
                    more_tweets_to_collect=more, test_share=round(test_share, 4))


def why_curated_empty(deduped: pd.DataFrame, settings: Settings) -> str:
    """Which rules removed the most pairs on their way to an empty curated set, with their
    settings (validation rules, semantic duplicates, review policy)."""
    from replyassets.core.rule_settings import rule_rows, top_rules_text

    if not len(deduped):
        return ("deduped_pairs is empty: no query partition has a pair; see each raw_tweets partition's "
                "non_empty check for the collection rules that removed the most items")
    counts: dict[tuple[str, str], int] = {}
    valid = deduped["valid"].fillna(False).astype(bool) if "valid" in deduped.columns else pd.Series(True, index=deduped.index)
    if "reasons" in deduped.columns:
        for reasons in deduped.loc[~valid, "reasons"].fillna("").astype(str):
            for code in dict.fromkeys(r for r in reasons.split(",") if r):
                counts[("validation", code)] = counts.get(("validation", code), 0) + 1
    if "kept" in deduped.columns:
        dup = valid & ~deduped["kept"].fillna(False).astype(bool)
        kinds = deduped.loc[dup, "dup_kind"].fillna("duplicate").astype(str) if "dup_kind" in deduped.columns \
            else pd.Series("duplicate", index=deduped.index[dup])
        for kind, k in kinds.value_counts().items():
            counts[("dedup", f"{kind}_duplicate")] = int(k)
    remaining = int((valid & deduped.get("kept", True)).sum())
    if remaining and settings.curation.review_policy == "reviewed_only":
        counts[("curation", "not_reviewed")] = remaining
    return f"{len(deduped)} pairs in deduped_pairs; the rules that removed the most: " + top_rules_text(
        rule_rows(counts, settings))


TEST_POWER_CHECK = CheckSpec(
    "test_power", check_test_power, False,
    "WARN: the test split can reach 80 % power for a paired d = evaluation.min_cohens_d (else: how many more "
    "tweets to collect)",
)


CURATED_CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in [
        CheckSpec("required_columns", check_required_columns, True, "required columns present and non-empty"),
        CheckSpec("size", check_size, True, "pair count within [min_pairs, max_pairs]"),
        CheckSpec("unique_tweets", check_unique_tweets, True, "at least min_unique_tweets source tweets"),
        CheckSpec("unique_authors", check_unique_authors, True, "at least min_unique_authors reply authors"),
        CheckSpec("replies_per_author", check_replies_per_author, True, "at most collection.max_replies_per_author per author"),
        CheckSpec("no_exact_duplicates", check_no_exact_duplicates, True, "no repeated reply id or reply text"),
        CheckSpec("no_semantic_duplicates", check_no_semantic_duplicates, True,
                  "no two replies with cosine >= the dedup threshold", needs_embeddings=True),
        CheckSpec("toxicity", check_toxicity, True, "toxicity below validation.max_toxicity"),
        CheckSpec("english_only", check_english, True, "English confidence above validation.min_lang_confidence"),
        CheckSpec("no_urls", check_no_urls, True, "no URLs in training replies"),
        CheckSpec("splits_disjoint", check_splits_disjoint, True, "train/eval/test present and disjoint by tweet"),
    ]
}


def run_curated_checks(
    df: pd.DataFrame,
    settings: Settings,
    embeddings: np.ndarray | None = None,
    embed: EmbedFn | None = None,
) -> dict[str, CheckOutcome]:
    """Run every :data:`CURATED_CHECKS` entry; a check that raises becomes a failed outcome."""
    results: dict[str, CheckOutcome] = {}
    for name, spec in CURATED_CHECKS.items():
        try:
            if spec.needs_embeddings:
                results[name] = spec.fn(df, settings, embeddings=embeddings, embed=embed)
            else:
                results[name] = spec.fn(df, settings)
        except Exception as exc:  # noqa: BLE001  (a check must report, never crash the asset)
            results[name] = CheckOutcome(False, f"check raised {type(exc).__name__}: {exc}", {"error": str(exc)[:500]})
    return results


__all__ = [
    "CURATED_CHECKS",
    "MAX_EXAMPLES",
    "CheckOutcome",
    "CheckSpec",
    "TEST_POWER_CHECK",
    "check_test_power",
    "why_curated_empty",
    "check_english",
    "check_no_exact_duplicates",
    "check_no_semantic_duplicates",
    "check_no_urls",
    "check_replies_per_author",
    "check_required_columns",
    "check_size",
    "check_splits_disjoint",
    "check_toxicity",
    "check_unique_authors",
    "check_unique_tweets",
    "non_empty",
    "rejection_rate",
    "run_curated_checks",
]
