"""Collection filters (thresholds: settings.CollectionSettings, listed in docs/design.md, "Defaults").

Every check returns *all* the rule codes an item breaks, never just the first, so a
rejected row stays queryable with every reason. Inputs are tweet records from
``replyassets.core.normalize.normalize_item``.

Tweet codes: ``likes_below_min``, ``likes_above_max``, ``retweets_below_min``,
``retweets_above_max``, ``is_retweet``, ``is_quote``, ``is_reply``, ``not_english``,
``lang_undetermined``, ``media_only`` (no text: nothing to reply to in words).

Reply codes: ``not_a_reply``, ``not_direct_reply``, ``is_retweet``, ``likes_below_min``,
``likes_above_max``, ``missing_author``, ``missing_followers``, ``followers_below_min``,
``followers_above_max``, ``too_early``, ``too_late``, ``has_media``, ``has_urls``,
``too_short``, ``too_long``, ``not_english``, ``media_only`` (an image-only reply: no text,
media only; normalized with empty text, so it is a reply rejected with its reasons, never a
tweet), ``self_reply`` (the tweet's own author answering their tweet: a thread, not a reply;
``settings.allow_self_replies`` allows it); after those, ``author_cap`` (see
:func:`apply_author_cap`).

The settings key each code applies is listed in ``core/rule_settings.py`` (messages name it).

Pairing codes (``core/collect.py``, stage ``pairing``): a reply no kept tweet claimed is
``orphan_reply`` (its tweet is not in the export), ``reply_to_reply`` (it answers a reply)
or ``parent_filtered`` (its tweet was rejected); ``not_direct_reply`` above is a reply to a
reply inside a kept tweet's conversation.

Language, deliberately:

* tweet: ``lang`` equal to ``settings.tweet_lang`` (or a regional variant such as
  ``en-gb``) passes; a missing ``lang`` passes (the legacy scraper exports none and the
  search itself asks for English); Twitter's "no linguistic content" codes
  (:data:`UNDETERMINED_LANGS`: ``qme`` emoji/media only, ``und``, ``zxx``, ``qam``,
  ``qct``, ``qht``, ``qst``) are ``lang_undetermined`` (nothing to reply to in words);
  any other language is ``not_english``.
* reply: an explicit other language is ``not_english``; a missing or undetermined tag
  passes, because Twitter's tag on short replies is unreliable: the validation stage
  measures language with lingua. ``settings.reply_lang = ""`` turns the reply check off.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from replyassets.settings import CollectionSettings, ValidationSettings

UNDETERMINED_LANGS = frozenset({"qme", "und", "zxx", "qam", "qct", "qht", "qst", "qmt"})


def _lang_matches(lang: str, want: str) -> bool:
    return lang == want or lang.startswith((want + "-", want + "_"))


def tweet_reasons(tweet: dict[str, Any], settings: CollectionSettings) -> list[str]:
    """All reasons a normalized tweet is not a usable source tweet ([] = keep)."""
    reasons: list[str] = []
    likes = tweet["likes"]
    if likes < settings.tweet_min_likes:
        reasons.append("likes_below_min")
    elif likes > settings.tweet_max_likes:
        reasons.append("likes_above_max")
    rts = tweet["retweets"]
    if rts < settings.tweet_min_retweets:
        reasons.append("retweets_below_min")
    elif rts > settings.tweet_max_retweets:
        reasons.append("retweets_above_max")
    if tweet["is_retweet"]:
        reasons.append("is_retweet")
    if tweet["is_quote"]:
        reasons.append("is_quote")
    if tweet["is_reply"]:
        reasons.append("is_reply")
    if not tweet["text"].strip():
        reasons.append("media_only")
    lang = tweet["lang"]
    if lang is not None and settings.tweet_lang:
        if lang in UNDETERMINED_LANGS:
            reasons.append("lang_undetermined")
        elif not _lang_matches(lang, settings.tweet_lang):
            reasons.append("not_english")
    return reasons


def _same_author(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and a.strip().lower() == b.strip().lower()


def reply_reasons(reply: dict[str, Any], tweet: dict[str, Any], settings: CollectionSettings,
                  lengths: tuple[int, int] | None = None) -> list[str]:
    """All reasons a normalized reply cannot pair with ``tweet`` ([] = keep, before the author cap)."""
    reasons: list[str] = []
    tid = tweet["id"]
    if reply["id"] == tid or not reply["is_reply"]:
        reasons.append("not_a_reply")
    elif reply["in_reply_to_id"] is not None and reply["in_reply_to_id"] != tid:
        reasons.append("not_direct_reply")  # a reply to another reply in the conversation
    if reply["is_retweet"]:
        reasons.append("is_retweet")
    if not settings.allow_self_replies and _same_author(reply["author"], tweet["author"]):
        reasons.append("self_reply")
    likes = reply["likes"]
    if likes < settings.reply_min_likes:
        reasons.append("likes_below_min")
    elif likes > settings.reply_max_likes:
        reasons.append("likes_above_max")
    if not reply["author"]:
        reasons.append("missing_author")
    followers = reply["author_followers"]
    if followers is None:
        reasons.append("missing_followers")
    elif followers < settings.reply_min_followers:
        reasons.append("followers_below_min")
    elif followers > settings.reply_max_followers:
        reasons.append("followers_above_max")
    delay = (reply["created_at"] - tweet["created_at"]).total_seconds()
    if delay < settings.reply_min_delay_s:
        reasons.append("too_early")
    elif delay > settings.reply_max_delay_s:
        reasons.append("too_late")
    if reply["has_media"]:
        reasons.append("has_media")
        if not reply["text"].strip():
            reasons.append("media_only")
    if reply["has_urls"]:
        reasons.append("has_urls")
    # The reply length limits are validation's (one definition: ``validation.min_chars`` and
    # ``max_chars``, passed as ``lengths``): collection applies them to the raw text already.
    min_chars, max_chars = lengths or (ValidationSettings().min_chars, ValidationSettings().max_chars)
    n = len(reply["text"].strip())
    if n < min_chars:
        reasons.append("too_short")
    elif n > max_chars:
        reasons.append("too_long")
    lang = reply["lang"]
    want = settings.reply_lang
    if want and lang is not None and lang not in UNDETERMINED_LANGS and not _lang_matches(lang, want):
        reasons.append("not_english")
    return reasons


def author_cap_key(reply: dict[str, Any]) -> tuple:
    """Order inside one author's replies: most likes first, then earliest, then lowest id."""
    rid = reply["id"]
    return (-reply["likes"], reply["created_at"], len(rid), rid)


def apply_author_cap(replies: Iterable[dict[str, Any]], max_per_author: int) -> tuple[list[dict], list[dict]]:
    """Keep at most ``max_per_author`` replies per author (case-insensitive handle), the
    highest-liked ones; deterministic whatever the input order. Returns (kept, capped),
    both in the input order."""
    replies = list(replies)
    by_author: dict[str, list[dict]] = {}
    for r in replies:
        by_author.setdefault((r["author"] or "").lower(), []).append(r)
    dropped: set[int] = set()
    for group in by_author.values():
        if len(group) > max_per_author:
            group.sort(key=author_cap_key)
            dropped.update(id(r) for r in group[max_per_author:])
    kept = [r for r in replies if id(r) not in dropped]
    capped = [r for r in replies if id(r) in dropped]
    return kept, capped
