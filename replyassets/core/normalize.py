"""One normalizer for every tweet export shape the project reads.

Supported shapes (see docs/design.md, "Scraper export shapes"):

* apidojo tweet-scraper: camelCase, nested ``author{userName, followers}``
* legacy apify/twitter-scraper: snake_case (``full_text``, ``favorite_count``), nested
  ``user{screen_name, followers_count}``, often no ``lang``
* twitterapi.io items: the apidojo shape plus ``quoted_tweet`` / ``retweeted_tweet``;
  webhook payloads wrap items as ``{"tweets": [...]}`` (see :func:`unwrap_items`)
* twscrape ``Tweet.json()``: ``id`` (int), ``id_str``, ``rawContent``, ``date``,
  ``user{username, followersCount}``, ``inReplyToTweetId``, ``links``, ``media{photos,...}``
* the project's own normalized pair rows (``PAIR_COLUMNS``): :func:`unwrap_items` splits
  each row into a tweet record and a reply record
* the tweet record itself (the output of :func:`normalize_item`), so normalizing is idempotent

:func:`normalize_item` never raises: whatever the input, it returns ``(record, [])`` or
``(None, reasons)`` with rule codes such as ``missing_id``, ``bad_created_at``,
``bad_like_count``, ``missing_text``, ``not_an_object``. An item with no text but media (an
image-only reply or tweet) is a record with ``text == ""`` and ``has_media`` (the collection
filters reject it as ``media_only``, keeping it a reply); no text and no media is ``empty_text``
or ``missing_text``. Input the source could not read
arrives as a :class:`DamagedInput` object (never as a dict key an item could also carry)
and is rejected with its own code (``truncated_json``, ``bad_json_line``).

The tweet record (:data:`RECORD_FIELDS`)::

    id, text, author, author_followers, likes, retweets, created_at (naive UTC datetime),
    conversation_id, in_reply_to_id, is_retweet, is_quote, is_reply, has_media, has_urls,
    lang, format

``has_urls``: URL entities or links in the item, or a URL in the text by
:func:`replyassets.core.urls.has_url` (the one detector validation and the curated checks
also use, so a reply the collection keeps never fails a later URL check on the same text).

Dates accepted: Twitter's ``Thu Oct 02 07:11:55 +0000 2025``, RFC 2822
(``Thu, 02 Oct 2025 07:11:55 +0000``), ISO 8601 with ``Z`` or an offset (with or without
fractions; a naive ISO string is taken as UTC), twscrape's ``2024-03-16 10:51:31+00:00``,
``datetime`` objects, and epoch seconds as int/float/numeric string (values above 1e11 are
taken as epoch milliseconds). Dates before 2006 or after 2100 are ``bad_created_at``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from replyassets.core.urls import has_url

RECORD_FIELDS: tuple[str, ...] = (
    "id", "text", "author", "author_followers", "likes", "retweets", "created_at",
    "conversation_id", "in_reply_to_id", "is_retweet", "is_quote", "is_reply",
    "has_media", "has_urls", "lang", "format",
)

MAX_TEXT_CHARS = 50_000
MAX_COUNT = 10**12
_MIN_DATE = datetime(2006, 1, 1)
_MAX_DATE = datetime(2100, 1, 1)
_EPOCH = datetime(1970, 1, 1)

_ID_RE = re.compile(r"^[A-Za-z0-9_:\-]{1,64}$")
_DIGITS_RE = re.compile(r"^\s*\+?\d{1,19}\s*$")
_NUMBER_RE = re.compile(r"^\s*\d{1,13}(?:\.\d+)?\s*$")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# Whitespace, controls and invisible format characters (zero-width, bidi marks, BOM) only.
_INVISIBLE_ONLY_RE = re.compile(r"^[\s\x00-\x1f\x7f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]*$")
_LANG_RE = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{2,8})?$")
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

# Field-name variants, in order of preference.
_ID_KEYS = ("id_str", "idStr", "rest_id", "id", "tweet_id", "tweetId")
_TEXT_KEYS = ("fullText", "full_text", "rawContent", "text", "content")
_DATE_KEYS = ("createdAt", "created_at", "date", "timestamp", "created")
_LIKE_KEYS = ("likeCount", "favorite_count", "favoriteCount", "likes", "like_count", "favorites")
_RT_KEYS = ("retweetCount", "retweet_count", "retweets")
_CONV_KEYS = ("conversationIdStr", "conversationId", "conversation_id_str", "conversation_id")
_REPLY_TO_KEYS = ("inReplyToTweetIdStr", "inReplyToTweetId", "inReplyToId", "inReplyToStatusId",
                  "in_reply_to_status_id_str", "in_reply_to_status_id", "in_reply_to_id")
_USER_KEYS = ("author", "user", "core_user")
_HANDLE_KEYS = ("userName", "username", "screen_name", "screenName", "handle", "name")
_FOLLOWER_KEYS = ("followers", "followersCount", "followers_count", "followerCount")
_TOP_HANDLE_KEYS = ("username", "screen_name", "userName", "author_username")
_TOP_FOLLOWER_KEYS = ("author_followers", "followers_count", "followersCount", "user_followers")

_PAIR_MARK = ("tweet_id", "reply_id")
_RT_FLAG_KEYS = ("isRetweet", "is_retweet", "retweeted")
_RT_OBJ_KEYS = ("retweeted_tweet", "retweetedTweet", "retweeted_status", "retweet")
_QT_FLAG_KEYS = ("isQuote", "is_quote", "is_quote_status")
_QT_OBJ_KEYS = ("quoted_tweet", "quotedTweet", "quoted_status", "quote")
_REPLY_FLAG_KEYS = ("isReply", "is_reply")
_ENTITY_KEYS = ("entities", "extendedEntities", "extended_entities")
_MEDIA_KEYS = ("media",) + _ENTITY_KEYS + ("photos", "videos", "animated")
_URL_KEYS = _ENTITY_KEYS + ("links", "urls")

# A "plan" says, for one set of item keys, which variant keys of each field are present.
# Exports repeat the same key set item after item, so plans are cached by the key tuple
# and each field costs one or two dict lookups instead of a scan over every variant.
_PLAN_FIELDS = (_ID_KEYS, _TEXT_KEYS, _DATE_KEYS, _LIKE_KEYS, _RT_KEYS, _CONV_KEYS, _REPLY_TO_KEYS,
                _RT_FLAG_KEYS, _RT_OBJ_KEYS, _QT_FLAG_KEYS, _QT_OBJ_KEYS, _REPLY_FLAG_KEYS, _MEDIA_KEYS, _URL_KEYS)
(P_ID, P_TEXT, P_DATE, P_LIKES, P_RTS, P_CONV, P_REPLY_TO, P_RT_FLAG, P_RT_OBJ, P_QT_FLAG, P_QT_OBJ,
 P_REPLY_FLAG, P_MEDIA, P_URLS) = range(len(_PLAN_FIELDS))
_PLAN_CACHE: dict[tuple, tuple] = {}
_PLAN_CACHE_MAX = 4096
_PLAN_MAX_KEYS = 256


def _plan(item: dict) -> tuple:
    if len(item) > _PLAN_MAX_KEYS:  # hostile: do not cache giant key sets
        return tuple(tuple(k for k in keys if k in item) for keys in _PLAN_FIELDS)
    sig = tuple(item)
    plan = _PLAN_CACHE.get(sig)
    if plan is None:
        plan = tuple(tuple(k for k in keys if k in item) for keys in _PLAN_FIELDS)
        if len(_PLAN_CACHE) >= _PLAN_CACHE_MAX:
            _PLAN_CACHE.clear()
        _PLAN_CACHE[sig] = plan
    return plan


def _get(item: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = item.get(k)
        if v is not None:
            return v
    return None


def parse_id(value: Any) -> str | None:
    """An id as a string, or None when it is not a plausible id (bools/floats rejected:
    a float cannot hold a tweet id exactly)."""
    if isinstance(value, str):
        v = value.strip()
        return v if _ID_RE.match(v) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if value >= 0 else None
    return None


def parse_count(value: Any) -> int | None:
    """A non-negative integer count (ints, integral floats, numeric strings); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_COUNT else None
    if isinstance(value, float):
        if value.is_integer() and 0 <= value <= MAX_COUNT:
            return int(value)
        return None
    if isinstance(value, str) and len(value) <= 24:
        v = value.strip().replace(",", "").replace("_", "")
        if v.isdigit() and v.isascii():
            n = int(v)
            return n if n <= MAX_COUNT else None
    return None


def _check_range(dt: datetime) -> datetime | None:
    return dt if _MIN_DATE <= dt < _MAX_DATE else None


def _from_epoch(x: float) -> datetime | None:
    if math.isnan(x) or x < 0:
        return None
    if x > 1e11:  # epoch milliseconds
        x = x / 1000.0
    if x > 4.2e9:
        return None
    return _check_range(_EPOCH + timedelta(seconds=x))


def _aware_to_naive(dt: datetime) -> datetime:
    off = dt.utcoffset()
    if off is None:
        return dt
    return (dt - off).replace(tzinfo=None)


def parse_datetime(value: Any) -> datetime | None:
    """A naive UTC datetime from any supported representation, or None."""
    try:
        if isinstance(value, datetime):
            return _check_range(_aware_to_naive(value))
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return _from_epoch(float(value))
        if not isinstance(value, str) or len(value) > 64:
            return None
        s = value.strip()
        if not s:
            return None
        c = s[0]
        if c.isdigit():
            if len(s) >= 10 and s[4] == "-":
                # ISO 8601 / twscrape. Python 3.11 fromisoformat handles Z, offsets, fractions.
                return _check_range(_aware_to_naive(datetime.fromisoformat(s)))
            if _NUMBER_RE.match(s):
                return _from_epoch(float(s))
            return None
        # Twitter's "Thu Oct 02 07:11:55 +0000 2025": parsed by hand (strptime is slow).
        parts = s.split(" ")
        if len(parts) == 6 and len(parts[4]) == 5 and parts[4][0] in "+-":
            month = _MONTHS.get(parts[1])
            hms = parts[3].split(":")
            if month is not None and len(hms) == 3:
                off = parts[4]
                sign = 1 if off[0] == "+" else -1
                minutes = sign * (int(off[1:3]) * 60 + int(off[3:5]))
                dt = datetime(int(parts[5]), month, int(parts[2]), int(hms[0]), int(hms[1]), int(hms[2]))
                return _check_range(dt - timedelta(minutes=minutes))
        # Real RFC 2822 ("Thu, 02 Oct 2025 07:11:55 +0000").
        dt = parsedate_to_datetime(s)
        return _check_range(_aware_to_naive(dt)) if dt is not None else None
    except (ValueError, TypeError, OverflowError, IndexError):
        return None


def _flag(value: Any) -> bool | None:
    """True/False for bool-like values, None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "1", "yes"):
            return True
        if v in ("false", "0", "no", ""):
            return False
    return None


def _nonempty(value: Any) -> bool:
    """A list/dict/str that holds something (media entries, url entities, links)."""
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    if isinstance(value, dict):
        return any(_nonempty(v) for v in value.values()) if value else False
    if isinstance(value, str):
        return bool(value.strip())
    return False


def _has_media(item: dict, present: tuple[str, ...] = _MEDIA_KEYS) -> bool:
    for key in present:
        v = item.get(key)
        if key in _ENTITY_KEYS:
            if isinstance(v, dict) and _nonempty(v.get("media")):
                return True
        elif _nonempty(v):
            return True
    return False


def _has_url_entities(item: dict, present: tuple[str, ...] = _URL_KEYS) -> bool:
    for key in present:
        v = item.get(key)
        if key in _ENTITY_KEYS:
            if isinstance(v, dict) and _nonempty(v.get("urls")):
                return True
        elif _nonempty(v):
            return True
    return False


def _clean_text(value: Any) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason)."""
    if value is None:
        return None, "missing_text"
    if not isinstance(value, str):
        return None, "bad_text"
    if len(value) > MAX_TEXT_CHARS:
        return None, "text_too_long"
    if not value.isascii() and _SURROGATE_RE.search(value):
        return None, "bad_text"  # lone surrogates cannot be stored as UTF-8
    if "\x00" in value:
        value = value.replace("\x00", "")
    if "&" in value:
        value = html.unescape(value)  # Twitter APIs return &amp; &lt; &gt;
    if not value.strip() or _INVISIBLE_ONLY_RE.match(value):
        return None, "empty_text"
    return value, None


def _user_fields(item: dict) -> tuple[Any, Any]:
    """(handle, followers) raw values from a nested user object or top-level fields."""
    for key in _USER_KEYS:
        user = item.get(key)
        if isinstance(user, dict):
            legacy = user.get("legacy")  # GraphQL-style {"legacy": {...}}
            if isinstance(legacy, dict) and not any(k in user for k in _HANDLE_KEYS):
                user = legacy
            return _get(user, _HANDLE_KEYS), _get(user, _FOLLOWER_KEYS)
        if isinstance(user, str) and key == "author":  # the record shape: author is the handle
            return user, _get(item, _TOP_FOLLOWER_KEYS)
    return _get(item, _TOP_HANDLE_KEYS), _get(item, _TOP_FOLLOWER_KEYS)


_FORMATS = ("apidojo", "legacy", "twitterapi", "twscrape", "record")


def _is_record(item: dict) -> bool:
    return "has_media" in item and "has_urls" in item and "is_reply" in item


def _detect_format(item: dict) -> str:
    if _is_record(item):
        fmt = item.get("format")
        return fmt if fmt in _FORMATS else "record"
    if "rawContent" in item or ("date" in item and isinstance(item.get("user"), dict)):
        return "twscrape"
    if "full_text" in item or "favorite_count" in item or "created_at" in item:
        return "legacy"
    author = item.get("author")
    if "quoted_tweet" in item or "retweeted_tweet" in item or (isinstance(author, dict) and "profile_bio" in author):
        return "twitterapi"
    return "apidojo"


_CODE_RE = re.compile(r"[a-z0-9_]{1,64}")


@dataclass(frozen=True)
class DamagedInput:
    """What a source puts in the item stream where it could not read input: a JSONL line
    that is not JSON, the cut end of a truncated JSON array (sources/replay.py).

    Only code builds one; it never comes out of parsing an item. :func:`normalize_item`
    recognizes it by its type and rejects it with ``code``, so no key or value of an input
    item can pose as such a marker: an export item ``{"_replay_error": "A"}`` is an ordinary
    (and here unusable: ``missing_id``...) item.
    """

    code: str                  # a rule code (core/columns.py): truncated_json, bad_json_line
    file: str                  # the file as the source names it
    line: int | None = None    # 1-based line (JSONL), when there is one
    text: str = ""             # a snippet of what could not be read

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE_RE.fullmatch(self.code):
            raise ValueError(f"DamagedInput code {self.code!r} is not a rule code")

    def as_dict(self) -> dict[str, Any]:
        """The marker as JSON (rejection detail, checkpoints); :meth:`from_dict` reverses it."""
        return {"damaged_input": self.code, "file": self.file, "line": self.line, "text": self.text}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DamagedInput:
        return cls(code=d["damaged_input"], file=str(d.get("file", "")), line=d.get("line"),
                   text=str(d.get("text", "")))


def normalize_item(item: Any, *, source: str = "") -> tuple[dict[str, Any] | None, list[str]]:
    """Normalize one raw item into a tweet record. Never raises.

    Returns ``(record, [])`` or ``(None, reasons)``; ``source`` is only used for the
    record's provenance and may be empty.
    """
    try:
        return _normalize(item)
    except RecursionError:
        return None, ["malformed_item"]
    except Exception:  # noqa: BLE001 - the contract: hostile input never escapes as an exception
        return None, ["malformed_item"]


def _normalize(item: Any) -> tuple[dict[str, Any] | None, list[str]]:
    if isinstance(item, DamagedInput):  # by type: no key or value of an item can pose as one
        return None, [item.code]
    if not isinstance(item, dict):
        return None, ["not_an_object"]
    reasons: list[str] = []
    P = _plan(item)
    fields = _core_fields(item, P, reasons)
    fields.update(_author_fields(item, reasons))
    fields.update(_thread_fields(item, P, reasons))
    fields["lang"] = _lang_field(item, reasons)
    if reasons:
        return None, reasons
    record = {**fields, **_shape_flags(item, P, fields)}
    return {k: record[k] for k in RECORD_FIELDS}, []


def _core_fields(item: dict, P: tuple, reasons: list[str]) -> dict[str, Any]:
    """id, text, created_at, likes, retweets (appending the reason for each unusable one).
    An item with no text but media (an image-only tweet or reply) gets the text ``""``: it
    is what it is (a reply stays a reply) and the filters reject it as ``media_only``."""
    raw_id = _get(item, P[P_ID])
    tid = parse_id(raw_id)
    if tid is None:
        reasons.append("missing_id" if raw_id is None else "bad_id")
    text, why = _clean_text(_get(item, P[P_TEXT]))
    if why in ("missing_text", "empty_text") and _media_of(item, P):
        text, why = "", None
    if why:
        reasons.append(why)
    raw_date = _get(item, P[P_DATE])
    created = parse_datetime(raw_date) if raw_date is not None else None
    if created is None:
        reasons.append("missing_created_at" if raw_date is None else "bad_created_at")
    raw_likes = _get(item, P[P_LIKES])
    likes = parse_count(raw_likes)
    if likes is None:
        reasons.append("missing_like_count" if raw_likes is None else "bad_like_count")
    raw_rts = _get(item, P[P_RTS])
    retweets = parse_count(raw_rts)
    if retweets is None:
        reasons.append("missing_retweet_count" if raw_rts is None else "bad_retweet_count")
    return {"id": tid, "text": text, "created_at": created, "likes": likes, "retweets": retweets}


def _author_fields(item: dict, reasons: list[str]) -> dict[str, Any]:
    raw_handle, raw_followers = _user_fields(item)
    author = None
    if raw_handle is not None:
        if isinstance(raw_handle, str) and 0 < len(raw_handle.strip()) <= 64 and not _SURROGATE_RE.search(raw_handle):
            author = raw_handle.strip().lstrip("@")
        else:
            reasons.append("bad_author")
    followers = None
    if raw_followers is not None:
        followers = parse_count(raw_followers)
        if followers is None:
            reasons.append("bad_followers")
    return {"author": author, "author_followers": followers}


def _thread_fields(item: dict, P: tuple, reasons: list[str]) -> dict[str, Any]:
    conv = None
    raw_conv = _get(item, P[P_CONV])
    if raw_conv is not None:
        conv = parse_id(raw_conv)
        if conv is None:
            reasons.append("bad_conversation_id")
    reply_to = None
    raw_reply_to = _get(item, P[P_REPLY_TO])
    if raw_reply_to is not None and raw_reply_to != "":
        reply_to = parse_id(raw_reply_to)
        if reply_to is None:
            reasons.append("bad_in_reply_to_id")
    return {"conversation_id": conv, "in_reply_to_id": reply_to}


def _lang_field(item: dict, reasons: list[str]) -> str | None:
    raw_lang = item.get("lang")
    if raw_lang is None or raw_lang == "":
        return None
    if isinstance(raw_lang, str) and _LANG_RE.match(raw_lang.strip().lower()):
        return raw_lang.strip().lower()
    reasons.append("bad_lang")
    return None


def _media_of(item: dict, P: tuple) -> bool:
    return bool(_flag(item.get("has_media"))) if _is_record(item) else _has_media(item, P[P_MEDIA])


def _shape_flags(item: dict, P: tuple, f: dict[str, Any]) -> dict[str, Any]:
    """is_retweet, is_quote, is_reply, has_media, has_urls, format of a valid item."""
    text, tid, reply_to = f["text"], f["id"], f["in_reply_to_id"]
    is_retweet = bool(
        _flag(_get(item, P[P_RT_FLAG]))
        or _nonempty(_get(item, P[P_RT_OBJ]))
        or text.startswith("RT @")
    )
    is_quote = bool(_flag(_get(item, P[P_QT_FLAG])) or _nonempty(_get(item, P[P_QT_OBJ])))
    is_reply = bool(_flag(_get(item, P[P_REPLY_FLAG]))) or (reply_to is not None and reply_to != tid)
    if _is_record(item):
        has_urls = bool(_flag(item.get("has_urls"))) or has_url(text)
    else:
        has_urls = _has_url_entities(item, P[P_URLS]) or has_url(text)
    return {
        "is_retweet": is_retweet, "is_quote": is_quote, "is_reply": is_reply,
        "has_media": _media_of(item, P), "has_urls": has_urls, "format": _detect_format(item),
    }


# --------------------------------------------------------------------------- containers


def is_pair_row(item: Any) -> bool:
    return isinstance(item, dict) and all(k in item for k in _PAIR_MARK)


def split_pair_row(row: dict) -> tuple[dict, dict]:
    """A normalized pair row (PAIR_COLUMNS) as (tweet record input, reply record input)."""
    tweet = {
        "format": "record",
        "id": row.get("tweet_id"),
        "text": row.get("tweet"),
        "author": row.get("tweet_author"),
        "author_followers": row.get("tweet_author_followers"),
        "likes": row.get("tweet_likes"),
        "retweets": row.get("tweet_retweets"),
        "created_at": row.get("tweet_created_at"),
        "conversation_id": row.get("tweet_id"),
        "is_reply": False,
        # A pair row does not say whether the tweet had media/urls; tweets are not filtered on them.
        "has_media": False,
        "has_urls": False,
    }
    reply = {
        "format": "record",
        "id": row.get("reply_id"),
        "text": row.get("reply"),
        "author": row.get("reply_author"),
        "author_followers": row.get("reply_author_followers"),
        "likes": row.get("reply_likes"),
        "retweets": row.get("reply_retweets"),
        "created_at": row.get("reply_created_at"),
        "conversation_id": row.get("tweet_id"),
        "in_reply_to_id": row.get("tweet_id"),
        "is_reply": True,
        "has_media": row.get("has_media"),
        "has_urls": row.get("has_urls"),
        "lang": row.get("lang"),
    }
    return tweet, reply


_WRAPPER_KEYS = ("tweets", "items", "data", "results")


def unwrap_items(doc: Any) -> Iterator[Any]:
    """Yield raw items from a parsed document: a list, a webhook wrapper
    ``{"tweets": [...]}`` (also ``items``/``data``/``results``), or a single item.
    Pair rows are split into a tweet item and a reply item. Non-dict entries are yielded
    as they are (the normalizer rejects them with ``not_an_object``)."""
    if isinstance(doc, list):
        for entry in doc:
            yield from _unwrap_one(entry, depth=1)
    else:
        yield from _unwrap_one(doc, depth=0)


def _unwrap_one(entry: Any, depth: int) -> Iterator[Any]:
    if isinstance(entry, dict):
        if is_pair_row(entry):
            yield from split_pair_row(entry)
            return
        if depth < 2:
            for key in _WRAPPER_KEYS:
                inner = entry.get(key)
                if isinstance(inner, list) and not _looks_like_tweet(entry):
                    for sub in inner:
                        yield from _unwrap_one(sub, depth + 1)
                    return
    yield entry


def _looks_like_tweet(d: dict) -> bool:
    return any(k in d for k in _TEXT_KEYS) and any(k in d for k in _ID_KEYS)
