"""The one URL detector: normalization (the ``has_urls`` flag), validation (the ``url``
rule) and the blocking ``no_urls`` check on ``curated_set`` all ask :func:`has_url` (or
its column form :func:`url_mask`, which gives the same verdicts faster), so a reply can
never pass one stage and fail the next on a different idea of what a link is.

What counts as a URL (case-insensitive):

* a scheme: ``http://``, ``https://``, ``ftp://``, ``ftps://`` followed by a non-space
  character, anywhere in the text;
* ``www.`` + a label + ``.`` + a letter (``www.example.org``), starting a word;
* a bare domain: labels of letters, digits and hyphens joined by dots and ending in a
  known top-level domain from :data:`TLDS`, starting a word and ending at a word boundary
  (``stanford.edu``, ``alice.me``, ``example.com/x``, ``bit.ly/x1``, ``t.co``).

A domain only starts a word: not after a letter, digit, ``_``, ``.``, ``@``, ``/`` or
``-``. So the domain of an e-mail address (``a@example.com``) and the tail of a longer
token are not URLs; e-mail addresses are contact data, decided by the ``personal_data``
rule. Moreover, when the text holds an ``@``, e-mail addresses (``clean.EMAIL_RE``) are
blanked before the search, so ``me.com@gmail.com`` is an address, not a link.

The common-word TLD problem, decided deliberately: a dot followed by letters is very often
not a domain (``node.js``, ``app.py``, ``README.md``, ``main.rs``, ``e.g.``, ``i.e.``,
``U.S.``, ``a.m.``, ``3.14``), so a bare domain needs a TLD from the short list below,
never a pattern such as "2+ letters". The list holds the generic TLDs people actually
link to and a few country codes, and leaves out every TLD that is also a common file
extension or an English word that a missing space after a full stop would glue onto the
previous word: ``js`` (not a TLD anyway), ``py``, ``rs``, ``md``, ``sh``, ``pl``, ``cc``,
``go``, ``ts``, ``in``, ``it``, ``is``, ``at``, ``to``, ``be``, ``do``, ``no``, ``so``,
``us``, ``my``, ``am``, ``pm``. One word-like TLD is kept on purpose: ``.me`` (personal
sites such as ``alice.me`` are common in replies that advertise). Single-letter endings
(``e.g.``) can never be a TLD. Verdicts:

=====================  =======  =========================================
text                   URL?     why
=====================  =======  =========================================
``stanford.edu``       yes      ``edu`` is in TLDS
``alice.me``           yes      ``me`` is in TLDS (kept deliberately)
``example.com/x``      yes      ``com`` is in TLDS
``e.g.``               no       ``g`` is one letter, never a TLD
``node.js``            no       ``js`` is a file extension, not in TLDS
``a@example.com``      no       an e-mail address (contact data)
=====================  =======  =========================================

Speed. :func:`url_mask` decides a whole column: an RE2 superset (:data:`URL_HINT_RE2`,
pyarrow, C++) finds the candidate rows; on pure-ASCII rows (where Python's ``\\w``,
``\\b``, ``\\s`` and case folding are ASCII ones) the RE2 form of the pattern
(:data:`URL_ASCII_RE2`) decides alone, every other candidate row runs :func:`has_url`.
The equivalence is tested (replyassets_tests/validate/test_batch_paths.py).
"""

from __future__ import annotations

import re

import numpy as np

from replyassets.core.clean import (
    EMAIL_RE,
    PY_FOLD_SPECIAL_RE2,
    PY_SPACE_RE2,
    arrow_strings,
    re2_mask,
)

TLDS: tuple[str, ...] = (
    # generic
    "com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "xyz", "app", "dev", "io", "ai",
    "co", "me", "ly", "gg", "tv", "fm", "link", "site", "online", "tech", "blog", "news", "store",
    "shop", "cloud", "page", "live", "club", "space", "website",
    # country codes that are neither file extensions nor English words
    "uk", "ca", "au", "de", "eu", "fr", "jp", "nl",
)
_TLD_ALT = "|".join(sorted(TLDS, key=lambda t: (-len(t), t)))
_SCHEME = r"(?:https?|ftps?)://"

URL_RE = re.compile(
    r"(?i)" + _SCHEME + r"\S"
    r"|(?<![\w.@/-])www\.[a-z0-9-]+\.[a-z]"
    r"|(?<![\w.@/-])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:" + _TLD_ALT + r")\b"
)

# Cheap Python tests, one of which hits whenever URL_RE can (skips URL_RE on most texts):
# "://", "www." (no character folds onto "w") or a dot before a TLD.
_DOT_TLD_RE = re.compile(r"\.(?i:" + _TLD_ALT + r")")

# RE2 superset of URL_RE: every match of URL_RE holds one of these (case-insensitively;
# rows with a character Python folds onto an ASCII letter are added by url_mask).
URL_HINT_RE2 = r"(?i)://|www\.|\.(?:" + _TLD_ALT + r")"
# URL_RE itself in RE2, exact on pure-ASCII text: the lookbehind becomes "start or a
# character outside the class" (same existence of a match), \S Python's non-space.
URL_ASCII_RE2 = (
    r"(?i)" + _SCHEME + r"[^" + PY_SPACE_RE2 + r"]"
    r"|(?:^|[^\w.@/\-])www\.[a-z0-9\-]+\.[a-z]"
    r"|(?:^|[^\w.@/\-])[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\.(?:" + _TLD_ALT + r")\b"
)


def _search(text: str) -> bool:
    if "@" in text:
        text = EMAIL_RE.sub(" ", text)
    return URL_RE.search(text) is not None


def has_url(text: object) -> bool:
    """Whether ``text`` holds a URL (see the module docstring for the rule)."""
    if not isinstance(text, str):
        return False
    if "://" in text or _DOT_TLD_RE.search(text) is not None or "www." in text.lower():
        return _search(text)
    return False


def url_mask(texts: list, arr=None) -> np.ndarray:
    """``[has_url(t) for t in texts]`` as a bool array, computed with RE2 over the column.

    ``arr``: the column as a ``clean.arrow_strings`` array when the caller has it (None:
    built here; when it cannot be built, every row is decided in Python).
    """
    n = len(texts)
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    strs = [t if isinstance(t, str) else "" for t in texts]
    if arr is None:
        arr = arrow_strings(strs)
    if arr is None:  # lone surrogates: no arrow array, Python decides every row
        return np.fromiter(map(has_url, strs), dtype=bool, count=n)
    maybe = re2_mask(arr, URL_HINT_RE2 + "|" + PY_FOLD_SPECIAL_RE2, n)
    ascii_rows = np.fromiter(map(str.isascii, strs), dtype=bool, count=n)
    for i in np.flatnonzero(maybe & ~ascii_rows):
        out[i] = has_url(strs[i])
    exact = np.flatnonzero(maybe & ascii_rows)
    if len(exact):
        out[exact] = re2_mask(arr.take(exact), URL_ASCII_RE2, len(exact))
        for i in exact[out[exact]]:  # "me.com@gmail.com" is an address: blank addresses, look again
            if "@" in strs[i]:
                out[i] = has_url(strs[i])
    return out


__all__ = ["TLDS", "URL_ASCII_RE2", "URL_HINT_RE2", "URL_RE", "has_url", "url_mask"]
