"""The validation rule engine for normalized pairs (pure pandas, no Dagster).

``validate_pairs`` keeps every input row and records each rule's verdict, so rejected rows
stay queryable with all their reasons. Rule codes (``rule_<code>`` columns, True = passed,
and the comma-separated ``reasons``, in this order):

- ``missing_fields``  reply_id, reply, tweet and reply_likes are present (not null/empty)
- ``length``          min_chars <= len(reply_clean) <= max_chars (Unicode code points)
- ``url``             no URL in the raw or the cleaned reply and ``has_urls`` is not True
                      (core/urls.py, the detector normalization and the curated checks use)
- ``engagement``      reply_likes >= min_likes
- ``language``        lang_confidence > min_lang_confidence (scorers/language.py)
- ``toxicity``        toxicity < max_toxicity (the toxicity scorer given)
- ``spam``            no spam/crypto keyword (SPAM_KEYWORDS + settings.extra_spam_keywords),
                      matched case-insensitively as whole words/phrases on the cleaned reply:
                      "gm" trips, "algorithm", "gmail", "series", "serious" never do
- ``meaningful_words`` at least min_meaningful_words unique words that are not stop words
                      (scikit-learn's English list + informal fillers), 2+ letters,
                      placeholders (@user, [email], [phone]) excluded
- ``generic``         generic_ratio < max_generic_ratio, where generic_ratio = words inside
                      generic phrases (GENERIC_PHRASES + extra) / all words of reply_clean
- ``personal_data``   no e-mail address or phone number in the raw reply; fails only when
                      contact_policy == "reject" (with "mask" the masked text is kept)

Decisions: lingua and the toxicity model score every row (unique cleaned replies only), so
every row stores both scores and the distributions cover the whole partition. The
prototype's single keyword "revolution" (docs/design.md, "Baselines") is replaced by the phrase "revolution is the power of
change" (the bot text it came from): "the AI revolution" is ordinary tech talk. "100x" and
"1000x" trip only when not followed by a comparison ("100x faster" is ordinary tech talk).

Speed. The engine works on whole columns: each distinct text is cleaned once
(clean.clean_texts returns a text that no cleaning step can change as it is, found for all
rows with RE2 and numpy); every pattern runs first as an RE2 superset over the column
(pyarrow, C++, 20-30x faster than ``re`` here) and then in Python on the candidate rows
only, except on pure-ASCII rows where the RE2 pattern is the Python one exactly (phrase
tries, URLs); meaningful words and word counts are counted with numpy over the code points
and pyarrow hashing. Every verdict and score equals the per-row definitions
(replyassets_tests/validate/test_batch_paths.py, hypothesis). Measured with
benchmarks/validate.py and an A/B of the previous commit on the same rows (shared 2-core
machine, load average about 2, best of 3): the rule engine without inference 61,000 rows/s
on 100,000 rows (previous code 19,000; naive per-row loop 1,300-1,900); the full local
validation 4,300-4,900 rows/s on 10,000 unique replies (previous 1,900-3,500). At load
average 2.6-2.8 the same benchmark gave 42,000 and 1,400 rows/s: the figures track the share
of the two cores the other processes leave (see the benchmark's per-CPU-second column).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd

from replyassets.core import clean as _clean
from replyassets.core import urls as _urls
from replyassets.core.columns import PAIR_COLUMNS

RULES: tuple[str, ...] = (
    "missing_fields", "length", "url", "engagement", "language", "toxicity", "spam",
    "meaningful_words", "generic", "personal_data",
)

# Columns validate_pairs adds after PAIR_COLUMNS, with their dtypes.
VALIDATION_COLUMNS: dict[str, str] = {
    "tweet_clean": "string",
    "reply_clean": "string",
    "reply_chars": "int64",
    "lang_confidence": "float64",
    "toxicity": "float64",
    "meaningful_words": "int64",
    "generic_ratio": "float64",
    **{f"rule_{code}": "bool" for code in RULES},
    "valid": "bool",
    "reasons": "string",
}

SPAM_KEYWORDS: tuple[str, ...] = (
    # the prototype's list (crypto engagement farming; docs/design.md, "Baselines")
    "gm", "gn", "ser", "fren", "frens", "wagmi", "ngmi", "gmi", "degen", "degens", "wen", "anon",
    "stay locked in", "onchain", "on-chain", "revolution is the power of change",
    # crypto / pump
    "lfg", "hodl", "airdrop", "airdrops", "presale", "pre-sale", "whitelist spot", "mint now",
    "to the moon", "wen moon", "wen lambo", "pump it", "next gem", "100x gem", "memecoin",
    "memecoins", "shitcoin", "shitcoins", "bullish af", "not financial advice", "nfa", "dyor",
    "crypto signals", "trading signals",
    # engagement farming / solicitation
    "giveaway", "giveaways", "dm me", "dm for", "check my bio", "link in bio", "check my profile",
    "follow back", "follow for follow", "f4f", "follow me for more", "like and retweet", "rt and follow",
    "join my telegram", "telegram group", "whatsapp me", "passive income", "make money online",
    "earn daily", "send me a dm",
)
# "100x"/"1000x" as hype, not as a measured comparison ("100x faster").
_HYPE_MULTIPLIER = (
    r"\b(?:100|1000|10000)x\b(?!\s+(?:faster|slower|better|worse|cheaper|more|less|bigger|"
    r"smaller|larger|speed|speedup|improvement|fewer|higher|lower|quicker|easier|harder))"
)

GENERIC_PHRASES: tuple[str, ...] = (
    "congratulations", "congrats", "love this", "love it", "love that", "loved this",
    "thanks for sharing", "thank you for sharing", "thanks for this", "thank you for this",
    "great post", "great thread", "great read", "great point", "great job", "great work",
    "great stuff", "great insight", "great insights", "nice post", "nice thread", "nice one",
    "so true", "this is so true", "this is amazing", "this is awesome", "this is great",
    "this is gold", "this is fire", "this is the way", "amazing", "awesome", "well said",
    "well done", "well put", "spot on", "nailed it", "couldn't agree more", "could not agree more",
    "totally agree", "i agree", "agreed", "absolutely", "exactly", "facts", "100%", "so good",
    "keep it up", "keep up the great work", "keep up the good work", "good luck", "needed this",
    "needed to hear this", "mind blown", "game changer", "interesting", "wow", "nice", "cool",
    "incredible", "fantastic", "brilliant", "impressive", "inspiring", "thank you", "thanks",
)

_INFORMAL_STOP = frozenset(
    ["im", "ive", "id", "ill", "youre", "youve", "youll", "hes", "shes", "theyre", "weve", "dont", "doesnt", "didnt", "cant", "couldnt", "wont", "wouldnt", "shouldnt", "isnt", "arent", "wasnt", "werent", "its", "thats", "theres", "whats", "lets", "u", "ur", "ya", "yeah", "yes", "yep", "ok", "okay", "lol", "lmao", "haha", "just", "like", "really", "gonna", "wanna", "gotta", "got", "get", "gets", "also", "oh", "hey", "hi", "pls", "please", "tbh", "imo", "ngl", "idk", "bc", "cuz", "thing", "things", "lot", "way"]
)


# scikit-learn's list holds content words that matter in tech replies: not stop words here.
_CONTENT_WORDS = frozenset(
    ["system", "computer", "serious", "fire", "bill", "interest", "find", "thick", "thin", "cry", "call", "describe", "detail", "empty", "fill", "front", "full", "give", "mill", "move", "name", "part", "put", "show", "side", "top", "found", "amount", "bottom", "sincere", "hundred", "keep", "made", "see", "con", "de"]
)


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words less content words, plus informal ones (loaded on first use:
    importing scikit-learn costs about 2 s in every process that loads the definitions)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return (frozenset(ENGLISH_STOP_WORDS) - _CONTENT_WORDS) | _INFORMAL_STOP



def _phrase_pattern(phrases: Iterable[str], re2: bool = False) -> str | None:
    """One regex for many whole-word phrases, as a character trie.

    Python's ``re`` tries the alternatives of a plain ``a|b|c`` one by one at every position
    (about 300 us per reply for 70 phrases); the trie branches on the first character and
    only starts at word boundaries, which makes the match about 50x cheaper. Spaces in a
    phrase match any run of whitespace; a phrase that starts/ends with a word character only
    matches as a whole word.

    ``re2=True`` gives the RE2 prefilter for the same phrases (case-insensitive): ``\b``
    (ASCII) in place of the Unicode lookarounds and a class of every Python whitespace
    character, so it matches wherever the Python pattern does (rows holding a character
    that Python folds onto an ASCII letter, ``clean.PY_FOLD_SPECIAL_RE2``, are checked
    anyway). None when a phrase holds a non-ASCII character (no prefilter then).
    """
    cleaned = {re.sub(r"\s+", " ", p.strip().lower()) for p in phrases if p and p.strip()}
    if re2 and not all(p.isascii() for p in cleaned):
        return None
    space = ("[" + _clean.PY_SPACE_RE2 + "]+") if re2 else r"\s+"
    trie: dict = {}
    for p in cleaned:
        node = trie
        for ch in p:
            node = node.setdefault(ch, {})
        node[""] = True

    def emit(node: dict, last: str) -> str:
        alts = []
        for ch in sorted(k for k in node if k):
            piece = space if ch == " " else re.escape(ch)
            alts.append(piece + emit(node[ch], ch))
        if "" in node:
            word_end = last.isalnum() or last == "_"
            alts.append((r"\b" if re2 else r"(?!\w)") if word_end else "")
        if len(alts) == 1:
            return alts[0]
        return "(?:" + "|".join(alts) + ")"

    word_start = {k: v for k, v in trie.items() if k.isalnum() or k == "_"}
    other_start = {k: v for k, v in trie.items() if k not in word_start}
    parts = []
    if word_start:
        parts.append((r"\b" if re2 else r"(?<!\w)") + emit(word_start, ""))
    if other_start:
        parts.append(emit(other_start, ""))
    if not parts:
        return None if re2 else r"(?!x)x"
    return ("(?i)" if re2 else "") + "|".join(parts)


HYPE_RE = re.compile(_HYPE_MULTIPLIER, re.IGNORECASE)


@lru_cache(maxsize=32)
def _compiled(phrases: tuple[str, ...]) -> tuple[re.Pattern, str | None]:
    return re.compile(_phrase_pattern(phrases), re.IGNORECASE), _phrase_pattern(phrases, re2=True)


def spam_regex(extra: Iterable[str] = ()) -> re.Pattern:
    """The keyword/phrase trie (``HYPE_RE`` covers "100x"-style hype separately)."""
    return _compiled((*SPAM_KEYWORDS, *extra))[0]


def generic_regex(extra: Iterable[str] = ()) -> re.Pattern:
    return _compiled((*GENERIC_PHRASES, *extra))[0]


_WORD_RE = re.compile(r"\w+(?:['’-]\w+)*")   # words for counting (generic ratio)
_TOKEN_RE = re.compile(r"[^\W\d_][^\W_]+")  # 2+ chars, starting with a letter (apostrophes removed first)
_PLACEHOLDERS_RE = re.compile(r"\[(?:email|phone)\]")


def _token_text(text: str, ph: str) -> str:
    """Lower-cased text with the handle placeholder ``ph`` (lower-cased) and the contact masks
    blanked and apostrophes dropped: what the meaningful-word tokens are read from."""
    low = text.lower()
    if ph and ph in low:
        low = low.replace(ph, " ")
    if "[" in low:
        low = _PLACEHOLDERS_RE.sub(" ", low)
    if "'" in low or "’" in low:
        low = low.replace("'", "").replace("’", "")
    return low


def _meaningful_count_reference(texts, placeholder: str) -> np.ndarray:
    """The rule's definition, one text at a time (``_meaningful_count`` computes the same)."""
    stop = stop_words()
    out = np.zeros(len(texts), dtype=np.int64)
    ph = placeholder.lower()
    findall = _TOKEN_RE.findall
    for i, text in enumerate(texts):
        if not text:
            continue
        out[i] = len(set(findall(_token_text(text, ph))) - stop)
    return out


def _meaningful_count(texts: list[str], placeholder: str, ascii_rows: np.ndarray | None = None) -> np.ndarray:
    r"""Unique non-stop ``_TOKEN_RE`` tokens per text (as ``_meaningful_count_reference``),
    for all texts at once.

    Pure-ASCII texts and the others are done as two groups (an ASCII group is one byte per
    character all the way). A group's texts are joined with NULs, lower-cased, and
    placeholders and apostrophes removed, one pass each. Tokens are found with numpy over
    the code points (``re``'s own classes, clean.char_classes): in each run of word
    characters other than ``_``, the token runs from the first non-digit to the end of the
    run when that is 2+ characters, which is what ``findall`` of ``[^\W\d_][^\W_]+``
    returns. pyarrow then hashes the token strings (no Python object per token) and numpy
    counts the distinct non-stop tokens per row.
    """
    n = len(texts)
    texts = [t if isinstance(t, str) else "" for t in texts]
    if n == 0 or _clean.SEP in placeholder:
        return _meaningful_count_reference(texts, placeholder)
    if ascii_rows is None:
        ascii_rows = np.fromiter(map(str.isascii, texts), dtype=bool, count=n)
    counts = np.zeros(n, dtype=np.int64)
    for rows in (np.flatnonzero(ascii_rows), np.flatnonzero(~ascii_rows)):
        if len(rows):
            group = [texts[i] for i in rows]
            found = _meaningful_count_group(group, placeholder, ascii=bool(ascii_rows[rows[0]]))
            counts[rows] = found if found is not None else _meaningful_count_reference(group, placeholder)
    return counts


def _meaningful_count_group(texts: list[str], placeholder: str, ascii: bool) -> np.ndarray | None:
    n = len(texts)
    joined = _clean.SEP.join(texts)
    if joined.count(_clean.SEP) != n - 1:
        return None  # a text holds a NUL
    # per character; a NUL is uncased, so no row sees its neighbours
    low = _token_text(joined, placeholder.lower())
    if ascii and low.isascii():
        data = low.encode("ascii")
        cls = np.frombuffer(data.translate(_ascii_classes()), dtype=np.uint8)
    else:
        ascii = False
        try:
            cp = np.frombuffer(low.encode("utf-32-le"), dtype=np.uint32)
            data = low.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            return None
        cls = _clean.char_classes()[cp]
        cls[cp == 0] = _SEP_CLASS
    word = (cls - np.uint8(_clean.LETTER)) < 2  # LETTER or DIGIT (uint8 wraps OTHER round)
    bounds = np.flatnonzero(np.diff(word.view(np.int8), prepend=np.int8(0), append=np.int8(0)))
    run_start, run_end = bounds[0::2], bounds[1::2]
    tok_start = run_start.copy()
    # a run that starts with digits: its token starts at the first letter, if any
    pending = np.flatnonzero(cls[run_start] == _clean.DIGIT)
    while len(pending):
        tok_start[pending] += 1
        pending = pending[tok_start[pending] < run_end[pending]]
        pending = pending[cls[tok_start[pending]] == _clean.DIGIT]
    keep = run_end - tok_start >= 2
    tok_start, tok_end = tok_start[keep], run_end[keep]
    counts = np.zeros(n, dtype=np.int64)
    if not len(tok_start):
        return counts
    import pyarrow as pa

    offsets = np.zeros(2 * len(tok_start) + 1, dtype=np.int64)  # gap, token, gap, token, ...
    if ascii:
        offsets[1::2], offsets[2::2] = tok_start, tok_end
    else:  # UTF-8 byte offsets: the position plus the extra bytes of the wide characters before it
        wide = np.flatnonzero(cp >= 0x80)
        extra = np.zeros(len(wide) + 1, dtype=np.int64)
        np.cumsum(1 + (cp[wide] >= 0x800) + (cp[wide] >= 0x10000), out=extra[1:])
        offsets[1::2] = tok_start + extra[np.searchsorted(wide, tok_start)]
        offsets[2::2] = tok_end + extra[np.searchsorted(wide, tok_end)]
    pieces = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    tokens = pieces.take(pa.array(np.arange(1, len(offsets) - 1, 2))).dictionary_encode()
    vocabulary = tokens.dictionary.to_pylist()
    codes = tokens.indices.to_numpy().astype(np.int64)
    stop = stop_words()
    content = np.fromiter((w not in stop for w in vocabulary), dtype=bool, count=len(vocabulary))
    mask = content[codes]
    row_at = np.cumsum(cls == _SEP_CLASS, dtype=np.int32)  # separators up to each position
    keys = row_at[tok_start[mask]].astype(np.int64) * len(vocabulary) + codes[mask]
    keys.sort()
    distinct = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    return np.bincount(distinct // len(vocabulary), minlength=n).astype(np.int64)


_SEP_CLASS = 4  # the NUL separator's class in the tables used by _meaningful_count_group


@lru_cache(maxsize=1)
def _ascii_classes() -> bytes:
    """``bytes.translate`` table: each ASCII byte to its clean.char_classes() class, NUL to
    _SEP_CLASS (all of them unlike LETTER and DIGIT)."""
    table = bytearray(_clean.char_classes()[:256].tobytes())
    table[0] = _SEP_CLASS
    return bytes(table)


def _word_counts(texts: list[str]) -> np.ndarray:
    """``len(_WORD_RE.findall(t))`` per text, for all texts at once: runs of word
    characters, minus the apostrophes/hyphens joining two of them."""
    n = len(texts)
    points = _clean.codepoints(texts)
    if points is None:
        return np.array([len(_WORD_RE.findall(t)) for t in texts], dtype=np.int64)
    cp, seps = points
    if not len(cp):
        return np.zeros(n, dtype=np.int64)
    w = _clean.char_classes()[cp] != _clean.OTHER  # the NUL separators are not
    edges = np.diff(w.view(np.int8), prepend=np.int8(0))
    runs = np.bincount(np.searchsorted(seps, np.flatnonzero(edges == 1)), minlength=n)
    joiner = (cp[1:-1] == 0x27) | (cp[1:-1] == 0x2019) | (cp[1:-1] == 0x2D)
    joins = np.flatnonzero(joiner & w[:-2] & w[2:]) + 1
    return (runs - np.bincount(np.searchsorted(seps, joins), minlength=n)).astype(np.int64)


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _bool_or_none(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        return v.strip().lower() in ("true", "1", "yes")
    return None


def _nonblank(values: list[str]) -> np.ndarray:
    """``bool(v.strip())`` per string."""
    n = len(values)
    return np.fromiter(map(len, values), dtype=np.int64, count=n).astype(bool) & ~np.fromiter(
        map(str.isspace, values), dtype=bool, count=n)


def _search(texts: list[str], pattern: re.Pattern, candidates: np.ndarray) -> np.ndarray:
    """``pattern.search(t) is not None`` per text, run only on the ``candidates`` rows."""
    out = np.zeros(len(texts), dtype=bool)
    search = pattern.search
    for i in np.flatnonzero(candidates):
        out[i] = search(texts[i]) is not None
    return out


# RE2 supersets of clean.EMAIL_RE (every match holds one of these) and of
# clean.PHONE_HINT_RE (Python's \d and \s are Unicode: \p{Nd} and every Python space).
_EMAIL_HINT_RE2 = r"[A-Za-z0-9._%+\-]@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z][A-Za-z]"
_PHONE_HINT_RE2 = r"\p{Nd}(?:[" + _clean.PY_SPACE_RE2 + r"().\-]{0,3}\p{Nd}){9}"


def _coerce_strings(s: pd.Series) -> pd.Series:
    """str values kept, other values ``str()``-ed, nulls None, lone surrogates U+FFFD
    (storable UTF-8); a column already all ``str`` without surrogates is checked in C."""
    s = s.astype(object).where(s.notna(), None)
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        joined = "".join(s[s.notna()].tolist())
        try:
            if not joined.isascii():  # only non-ASCII text can hold a surrogate
                joined.encode("utf-8")
            return s.astype("string")
        except UnicodeEncodeError:
            pass
    s = s.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return s.map(lambda v: v if v is None else _SURROGATE_RE.sub("\ufffd", v)).astype("string")


def coerce_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Every PAIR_COLUMN present, in order, with the contract's dtype (missing -> null).

    Integer columns holding nulls become nullable ``Int64``; such rows fail
    ``missing_fields`` when the field is required.
    """
    out = pd.DataFrame(index=pairs.index)
    for col, dtype in PAIR_COLUMNS.items():
        if col in pairs.columns:
            s = pairs[col]
        else:
            s = pd.Series([None] * len(pairs), index=pairs.index, dtype=object)
        if dtype == "string":
            s = _coerce_strings(s)
        elif dtype in ("int64", "Int64"):
            s = pd.to_numeric(s, errors="coerce")
            if s.dtype.kind in "fuO":  # 3.5, inf, 1e30, 2**63: not a count -> null (reliability suite)
                f = s.astype("float64")
                s = f.where(np.isfinite(f) & (f == np.floor(f)) & (f.abs() < 2.0**63))
            s = s.astype("Int64") if s.isna().any() or dtype == "Int64" else s.astype("int64")
        elif dtype == "bool":
            if s.dtype != bool:
                s = s.astype(object).map(_bool_or_none)  # "yes"/1/True; anything else -> null
            s = s.astype("boolean") if s.isna().any() else s.astype(bool)
        elif dtype.startswith("datetime64"):
            if not pd.api.types.is_datetime64_any_dtype(s):
                s = s.astype(object).map(lambda v: None if isinstance(v, (list, dict, set, tuple, bytes)) else v)
                s = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            s = s.astype("datetime64[ns]")
        out[col] = s
    return out


def clean_pairs(pairs: pd.DataFrame, settings) -> pd.DataFrame:
    """``coerce_pairs`` plus ``tweet_clean`` and ``reply_clean`` (core/clean.py)."""
    frame = coerce_pairs(pairs)
    frame["tweet_clean"] = _clean_unique(frame["tweet"], settings)
    frame["reply_clean"] = _clean_unique(frame["reply"], settings)
    return frame


def _clean_unique(texts: pd.Series, settings) -> pd.Series:
    """clean_text once per distinct text (a tweet repeats once per reply)."""
    codes, uniques = pd.factorize(texts.astype(object), use_na_sentinel=True)
    cleaned = np.array(_clean.clean_texts(list(uniques), settings) + [""], dtype=object)
    return pd.Series(cleaned[codes], index=texts.index, dtype="string")  # code -1 (null) -> ""


def apply_rules(
    frame: pd.DataFrame,
    settings,
    lang_confidence: np.ndarray | pd.Series,
    toxicity: np.ndarray | pd.Series,
) -> pd.DataFrame:
    """Rule verdicts for a frame from ``clean_pairs`` given the model scores (no inference)."""
    n = len(frame)
    out = frame.copy(deep=False)  # new columns only; the selection at the end copies
    out["lang_confidence"] = np.asarray(lang_confidence, dtype=np.float64).reshape(n)
    out["toxicity"] = np.asarray(toxicity, dtype=np.float64).reshape(n)
    raw_list = out["reply"].fillna("").astype(str).tolist()
    text_list = out["reply_clean"].fillna("").astype(str).tolist()
    chars = np.fromiter(map(len, text_list), dtype=np.int64, count=n)
    out["reply_chars"] = chars

    likes = pd.to_numeric(out["reply_likes"], errors="coerce")
    required_ok = (
        _nonblank(out["reply_id"].fillna("").astype(str).tolist()) & _nonblank(raw_list)
        & out["tweet"].notna().to_numpy(dtype=bool) & likes.notna().to_numpy(dtype=bool)
    )  # a null reply_id/reply became "" above

    # RE2 prefilters over whole columns (supersets of the Python patterns), then the
    # Python pattern itself on the candidate rows only.
    raw_arr = _clean.arrow_strings(raw_list)
    text_arr = _clean.arrow_strings(text_list)
    fold = "|" + _clean.PY_FOLD_SPECIAL_RE2

    has_urls = out["has_urls"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    # RE2 decides alone on pure-ASCII rows where its pattern is exact (none without arrays)
    text_ascii = np.fromiter(map(str.isascii, text_list), dtype=bool, count=n) & (text_arr is not None)
    # The one URL detector (core/urls.py), on the raw reply and on the cleaned one (what the
    # curated set trains on: its blocking no_urls check asks the same detector).
    url_found = _urls.url_mask(raw_list, raw_arr) | _urls.url_mask(text_list, text_arr)
    url_ok = ~(has_urls | url_found)
    personal_ok = ~_contact_mask(raw_list, raw_arr) if settings.contact_policy == "reject" else np.ones(n, dtype=bool)
    spam_ok = ~_spam_mask(text_list, text_arr, text_ascii, settings, fold)
    ratio = _generic_ratio(text_list, text_arr, text_ascii, settings, fold)
    out["generic_ratio"] = ratio
    meaningful = _meaningful_count(text_list, settings.handle_placeholder)
    out["meaningful_words"] = meaningful

    verdicts = {
        "missing_fields": required_ok,
        "length": (chars >= settings.min_chars) & (chars <= settings.max_chars),
        "url": url_ok,
        "engagement": (likes >= settings.min_likes).fillna(False).to_numpy(dtype=bool),
        "language": np.nan_to_num(out["lang_confidence"].to_numpy(), nan=0.0) > settings.min_lang_confidence,
        "toxicity": np.nan_to_num(out["toxicity"].to_numpy(), nan=1.0) < settings.max_toxicity,
        "spam": spam_ok,
        "meaningful_words": meaningful >= settings.min_meaningful_words,
        "generic": ratio < settings.max_generic_ratio,
        "personal_data": personal_ok,
    }
    _record_verdicts(out, verdicts)
    return out[list(PAIR_COLUMNS) + list(VALIDATION_COLUMNS)]


def _contact_mask(raw_list: list[str], raw_arr) -> np.ndarray:
    """Rows whose raw reply holds an e-mail address or a phone number (RE2 prefilters first)."""
    n = len(raw_list)
    email = _search(raw_list, _clean.EMAIL_RE, _clean.re2_mask(raw_arr, _EMAIL_HINT_RE2, n))
    phone = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(_clean.re2_mask(raw_arr, _PHONE_HINT_RE2, n)):
        phone[i] = _clean.has_phone(raw_list[i])
    return email | phone


def _spam_mask(text_list: list[str], text_arr, text_ascii: np.ndarray, settings, fold: str) -> np.ndarray:
    """Rows whose cleaned reply holds a spam keyword or a hype pattern."""
    n = len(text_list)
    spam_re, spam_re2 = _compiled((*SPAM_KEYWORDS, *settings.extra_spam_keywords))
    spam_maybe = _clean.re2_mask(text_arr, spam_re2 + fold, n) if spam_re2 else np.ones(n, dtype=bool)
    spam = _search(text_list, spam_re, spam_maybe & ~text_ascii)
    if spam_re2:  # on pure-ASCII text the RE2 trie is the Python one exactly (as for generic below)
        spam |= spam_maybe & text_ascii
    spam |= _search(text_list, HYPE_RE, _clean.re2_mask(text_arr, "0[xX]", n))
    return spam


def _generic_ratio(text_list: list[str], text_arr, text_ascii: np.ndarray, settings, fold: str) -> np.ndarray:
    """Per row, the share of the cleaned reply's words that belong to generic phrases (0 without one)."""
    n = len(text_list)
    gre, gre2 = _compiled((*GENERIC_PHRASES, *settings.extra_generic_phrases))
    generic_maybe = _clean.re2_mask(text_arr, gre2 + fold, n) if gre2 else np.ones(n, dtype=bool)
    has_generic, rest_texts = [], []
    candidates = np.flatnonzero(generic_maybe)
    if gre2 and len(candidates):
        # On pure-ASCII text the RE2 trie is the Python one exactly (\b is the lookarounds,
        # the space class is \s, same leftmost-first alternation), so RE2 also does the sub.
        ascii_rows = text_ascii[candidates]
        done = candidates[ascii_rows]
        if len(done):
            import pyarrow.compute as pc

            has_generic = done.tolist()
            rest_texts = pc.replace_substring_regex(text_arr.take(done), pattern=gre2, replacement=" ").to_pylist()
        candidates = candidates[~ascii_rows]
    for i in candidates:
        rest_text, found = gre.subn(" ", text_list[i])
        if found:
            has_generic.append(i)
            rest_texts.append(rest_text)
    ratio = np.zeros(n, dtype=np.float64)
    if has_generic:  # only rows holding a generic phrase need counting
        total = _word_counts([text_list[i] for i in has_generic])
        rest = _word_counts(rest_texts)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[has_generic] = np.where(total > 0, np.maximum(total - rest, 0) / np.maximum(total, 1), 0.0)
    return ratio


def _record_verdicts(out: pd.DataFrame, verdicts: dict[str, np.ndarray]) -> None:
    """One ``rule_<code>`` column per rule, ``valid`` (every rule passes) and ``reasons`` (the
    failed rules' codes, comma-separated), written into ``out``."""
    n = len(out)
    valid = np.ones(n, dtype=bool)
    failed = np.zeros(n, dtype=np.int64)  # bit i set: RULES[i] failed
    for bit, code in enumerate(RULES):
        ok = np.asarray(verdicts[code], dtype=bool)
        out[f"rule_{code}"] = ok
        valid &= ok
        failed |= (~ok).astype(np.int64) << bit
    out["valid"] = valid
    combos, inverse = np.unique(failed, return_inverse=True)  # few distinct combinations
    texts = np.array([",".join(c for b, c in enumerate(RULES) if combo >> b & 1) for combo in combos], dtype=object)
    out["reasons"] = pd.Series(texts[inverse.reshape(-1)] if n else [], index=out.index, dtype="string")


def score_unique(texts: pd.Series, fn) -> np.ndarray:
    """Call ``fn`` once per unique text and map the scores back to every row."""
    values = texts.fillna("").astype(str)
    codes, uniques = pd.factorize(values, sort=False)
    if len(uniques) == 0:
        return np.zeros(len(values), dtype=np.float64)
    scores = np.asarray(fn(list(uniques)), dtype=np.float64)
    if scores.shape != (len(uniques),):
        raise ValueError(f"scorer returned shape {scores.shape} for {len(uniques)} texts")
    return scores[codes]


def validate_pairs(pairs: pd.DataFrame, settings, language, toxicity) -> pd.DataFrame:
    """All input rows: PAIR_COLUMNS + VALIDATION_COLUMNS (see the module docstring).

    ``settings``: ValidationSettings; ``language``: a LanguageScorer (``english_confidence``);
    ``toxicity``: a ToxicityScorer (``score``). Both score the cleaned reply.
    """
    if not isinstance(pairs, pd.DataFrame):
        raise TypeError(f"validate_pairs expects a pandas DataFrame, got {type(pairs).__name__}")
    frame = clean_pairs(pairs.reset_index(drop=True), settings)
    lang = score_unique(frame["reply_clean"], language.english_confidence)
    tox = score_unique(frame["reply_clean"], toxicity.score)
    return apply_rules(frame, settings, lang, tox)


# ----------------------------------------------------------------------------- reporting


def _funnel_of(df: pd.DataFrame) -> dict:
    n = len(df)
    valid = int(df["valid"].sum()) if n else 0
    by_rule = {code: int((~df[f"rule_{code}"]).sum()) for code in RULES}
    fails = np.column_stack([~df[f"rule_{c}"].to_numpy(dtype=bool) for c in RULES]) if n else np.zeros((0, len(RULES)), bool)
    only = fails.sum(axis=1) == 1 if n else np.zeros(0, bool)
    only_by_rule = {code: int((fails[:, i] & only).sum()) for i, code in enumerate(RULES)}
    return {
        "rows_in": n,
        "valid": valid,
        "rejected": n - valid,
        "pass_rate": round(valid / n, 4) if n else 0.0,
        "rejected_by_rule": by_rule,
        "rejected_only_by_rule": only_by_rule,
    }


def validation_funnel(df: pd.DataFrame) -> dict:
    """Rows in, valid, rejected (per rule: every failure, and rows failing that rule alone),
    overall and per ``query`` partition; plain JSON-able numbers."""
    result = _funnel_of(df)
    per_query = {}
    if len(df):
        for q, part in df.groupby(df["query"].fillna("<none>").astype(str), sort=True):
            per_query[q] = _funnel_of(part)
    result["by_query"] = per_query
    return result


def validation_funnel_rows(df: pd.DataFrame) -> tuple[list[dict], dict[str, int]]:
    """The ``validated_pairs`` funnel table and the failures per rule.

    Returns ``(rows, reason_counts)``: rows ``{"stage", "count"}`` for ``pairs in``,
    ``valid`` and ``rejected: <rule>`` per failing rule; ``reason_counts`` maps each rule
    that failed at least once to its rows (a row failing two rules counts under both), most
    frequent first, ties in RULES order. Empty frame: two zero rows and ``{}``.
    """
    n = len(df)
    valid = int(df["valid"].sum()) if n else 0
    counts = {code: int((~df[f"rule_{code}"].astype(bool)).sum()) for code in RULES} if n else {}
    order = {code: i for i, code in enumerate(RULES)}
    reason_counts = dict(sorted(((c, k) for c, k in counts.items() if k), key=lambda kv: (-kv[1], order[kv[0]])))
    rows = [{"stage": "pairs in", "count": n}, {"stage": "valid", "count": valid}]
    rows += [{"stage": f"rejected: {code}", "count": k} for code, k in reason_counts.items()]
    return rows, reason_counts


def _hist(values: np.ndarray, edges: np.ndarray) -> dict:
    values = values[~np.isnan(values)]
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    summary = {}
    if len(values):
        q = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
        summary = {"mean": float(values.mean()), "p05": float(q[0]), "p25": float(q[1]),
                   "median": float(q[2]), "p75": float(q[3]), "p95": float(q[4])}
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts],
            "n": len(values), **summary}


def distributions(df: pd.DataFrame) -> dict:
    """Histograms (bin edges + counts + quantiles) of reply length (characters of the
    cleaned reply, 10-char bins to 300, longer clipped into the last bin), toxicity and
    language confidence (0.05 bins on [0, 1]), over all rows and over valid rows."""
    chars = df["reply_chars"].to_numpy(dtype=np.float64) if len(df) else np.zeros(0)
    tox = df["toxicity"].to_numpy(dtype=np.float64) if len(df) else np.zeros(0)
    lang = df["lang_confidence"].to_numpy(dtype=np.float64) if len(df) else np.zeros(0)
    valid = df["valid"].to_numpy(dtype=bool) if len(df) else np.zeros(0, bool)
    len_edges = np.arange(0, 310, 10, dtype=np.float64)
    unit = np.linspace(0.0, 1.0, 21)
    return {
        "length": _hist(chars, len_edges),
        "toxicity": _hist(tox, unit),
        "lang_confidence": _hist(lang, unit),
        "valid_length": _hist(chars[valid], len_edges),
        "valid_toxicity": _hist(tox[valid], unit),
        "valid_lang_confidence": _hist(lang[valid], unit),
    }
