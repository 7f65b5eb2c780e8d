"""Which setting each rule code applies, and where that setting's value comes from (no Dagster).

A message about a threshold names the settings key, its current value and the file to change
it in, e.g. ``collection.tweet_max_likes = 2000 (default in replyassets/settings.py)`` or
``curation.min_pairs = 300 (config/profiles/local.yaml)``. :func:`setting_source` follows the
resolution order of ``replyassets.settings.load_settings`` (later wins): the default in
``replyassets/settings.py``, the profile file, the ``REPLYASSETS_SETTINGS`` file; a query's
``overrides`` in the queries file win for that query's collection settings.

Rule codes are shared between stages (``likes_below_min`` is a tweet rule at ``tweet_filter``
and a reply rule at ``reply_filter``), so :data:`COLLECTION_RULE_SETTINGS` is keyed by
``(stage, code)``; :data:`VALIDATION_RULE_SETTINGS` by the validation rule (core/validate.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from replyassets.settings import PROJECT_ROOT, QuerySpec, current_profile

DEFAULTS_FILE = "replyassets/settings.py"

COLLECTION_RULE_SETTINGS: dict[tuple[str, str], tuple[str, ...]] = {
    ("tweet_filter", "likes_below_min"): ("collection.tweet_min_likes",),
    ("tweet_filter", "likes_above_max"): ("collection.tweet_max_likes",),
    ("tweet_filter", "retweets_below_min"): ("collection.tweet_min_retweets",),
    ("tweet_filter", "retweets_above_max"): ("collection.tweet_max_retweets",),
    ("tweet_filter", "not_english"): ("collection.tweet_lang",),
    ("tweet_filter", "lang_undetermined"): ("collection.tweet_lang",),
    ("tweet_filter", "over_tweet_budget"): ("collection.max_tweets_per_query",),
    ("reply_filter", "likes_below_min"): ("collection.reply_min_likes",),
    ("reply_filter", "likes_above_max"): ("collection.reply_max_likes",),
    ("reply_filter", "followers_below_min"): ("collection.reply_min_followers",),
    ("reply_filter", "followers_above_max"): ("collection.reply_max_followers",),
    ("reply_filter", "too_early"): ("collection.reply_min_delay_s",),
    ("reply_filter", "too_late"): ("collection.reply_max_delay_s",),
    ("reply_filter", "too_short"): ("validation.min_chars",),
    ("reply_filter", "too_long"): ("validation.max_chars",),
    ("reply_filter", "not_english"): ("collection.reply_lang",),
    ("reply_filter", "self_reply"): ("collection.allow_self_replies",),
    ("reply_filter", "author_cap"): ("collection.max_replies_per_author",),
}

VALIDATION_RULE_SETTINGS: dict[str, tuple[str, ...]] = {
    "length": ("validation.min_chars", "validation.max_chars"),
    "engagement": ("validation.min_likes",),
    "language": ("validation.min_lang_confidence",),
    "toxicity": ("validation.max_toxicity",),
    "meaningful_words": ("validation.min_meaningful_words",),
    "generic": ("validation.max_generic_ratio",),
    "personal_data": ("validation.contact_policy",),
}

# Later stages: what removes a valid pair before or inside curation.
OTHER_RULE_SETTINGS: dict[tuple[str, str], tuple[str, ...]] = {
    ("dedup", "semantic_duplicate"): ("dedup.similarity_threshold",),
    ("curation", "not_reviewed"): ("curation.review_policy",),
    ("curation", "author_cap"): ("collection.max_replies_per_author",),
    ("curation", "over_target"): ("curation.target_pairs", "curation.max_pairs"),
}

_MISSING = object()


def _dig(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        if not isinstance(doc, Mapping) or p not in doc:
            return _MISSING
        doc = doc[p]
    return doc


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def setting_source(key: str, query: QuerySpec | None = None) -> str:
    """Where the value of ``key`` (``section.field``, e.g. ``collection.tweet_max_likes``) comes
    from now: ``config/queries.yaml query 'q' overrides`` (collection keys a query overrides),
    the ``REPLYASSETS_SETTINGS`` file, the profile file, or ``default in replyassets/settings.py``."""
    parts = key.split(".")
    if query is not None and parts[0] == "collection" and len(parts) == 2 and parts[1] in query.overrides:
        return f"query {query.name!r} overrides in the queries file"
    extra = os.environ.get("REPLYASSETS_SETTINGS")
    if extra and _dig(_yaml(Path(extra)), parts) is not _MISSING:
        return _display(Path(extra))
    profile_file = PROJECT_ROOT / "config" / "profiles" / f"{current_profile()}.yaml"
    if profile_file.exists() and _dig(_yaml(profile_file), parts) is not _MISSING:
        return _display(profile_file)
    return f"default in {DEFAULTS_FILE}"


def setting_value(settings: BaseModel, key: str) -> Any:
    """The value of ``key`` in ``settings``: the whole ``Settings`` or one section of it
    (``CollectionSettings`` for ``collection.*``)."""
    parts = key.split(".")
    for path in (parts, parts[1:]):
        obj: Any = settings
        for p in path:
            obj = getattr(obj, p, _MISSING)
            if obj is _MISSING:
                break
        if obj is not _MISSING:
            return obj
    raise KeyError(f"settings key {key!r} not found on {type(settings).__name__}")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def setting_ref(key: str, settings: BaseModel, query: QuerySpec | None = None) -> str:
    """``key = value (source)``: ``collection.tweet_max_likes = 2000 (default in replyassets/settings.py)``."""
    return f"{key} = {_fmt(setting_value(settings, key))} ({setting_source(key, query)})"


def rule_settings(stage: str, code: str) -> tuple[str, ...]:
    """The settings keys behind a rule code at a stage (collection stages or ``validation``)."""
    if stage == "validation":
        return VALIDATION_RULE_SETTINGS.get(code, ())
    return COLLECTION_RULE_SETTINGS.get((stage, code)) or OTHER_RULE_SETTINGS.get((stage, code), ())


def rule_rows(counts: Mapping[tuple[str, str], int], settings: BaseModel,
              query: QuerySpec | None = None) -> list[dict[str, Any]]:
    """Items removed per ``(stage, code)``, most first (ties by stage, code), each with the
    settings the rule applies: ``{"stage", "code", "items", "setting"}``, ``setting`` as
    :func:`setting_ref` writes it (``"; "``-joined; ``""`` for a rule no setting governs)."""
    ranked = sorted(((k, int(n)) for k, n in counts.items() if n), key=lambda kv: (-kv[1], kv[0]))
    return [{"stage": stage, "code": code, "items": n,
             "setting": "; ".join(setting_ref(k, settings, query) for k in rule_settings(stage, code))}
            for (stage, code), n in ranked]


def rule_text(row: Mapping[str, Any]) -> str:
    """``likes_above_max [tweet_filter]: collection.tweet_max_likes = 2000 (...)`` for one rule row."""
    return f"{row['code']} [{row['stage']}]" + (f": {row['setting']}" if row.get("setting") else "")


def top_rules_text(rows: Iterable[Mapping[str, Any]], limit: int = 3) -> str:
    """The first ``limit`` rule rows (:func:`rule_rows`) as one sentence: which rules removed
    the most items, with their settings."""
    rows = list(rows)[:limit]
    if not rows:
        return "no rule removed any item"
    return "; ".join(f"{rule_text(r)} removed {r['items']} items" for r in rows)
