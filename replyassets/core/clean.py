"""Cleaning of tweet and reply text into training text (pure functions, no Dagster).

``clean_text(text, settings)`` applies, in order:

1. HTML entities decoded (the X API sends ``&amp;``), Unicode NFC.
2. Invisible characters removed: zero-width space/non-joiner, word joiner, BOM, soft
   hyphen; a zero-width joiner is kept only between two non-ASCII characters (it glues
   emoji sequences such as 👨‍💻).
3. Contact data masked: e-mail addresses become ``[email]``, phone numbers ``[phone]``
   (whether the row is then rejected is ``contact_policy``, decided in core/validate.py;
   the cleaned text never carries a contact). A phone number is 10-15 digits, written with
   a leading ``+``, parentheses or separators (``+1 (555) 123-4567``, ``555-123-4567``,
   ``+44 20 7946 0958``); years, versions, "100x" and bare digit runs are not phones.
4. The leading reply-prefix of mentions (``@alice @bob ...``, added by the platform) is
   dropped; every other @handle becomes ``settings.handle_placeholder`` (default ``@user``).
5. Hashtags become words: ``#MachineLearning`` -> ``Machine Learning``, ``#AI`` -> ``AI``,
   ``#100DaysOfCode`` -> ``100 Days Of Code``, ``#machine_learning`` -> ``machine learning``,
   ``#ChatGPT`` -> ``Chat GPT``; ``#iPhone`` stays ``iPhone`` (one leading lowercase letter is
   not a word); an all-lowercase tag such as ``#web3dev`` can't be segmented without a
   dictionary and stays ``web3dev``. A ``#`` not followed by a letter (``#1``) is kept.
6. Elongations collapsed. Only a run of 3+ identical letters is a candidate, since English
   has (almost) no word with a letter tripled: "too", "cool", "coffee", "bookkeeper",
   "committee" are never touched. For a word with such runs, each run is shortened to 2
   then 1 letters (2 preferred, runs left to right) and the first form that is a known word
   wins (known = Webster's 2nd + GCIDE from ``english-words`` plus a small list of informal
   words: "hmm", "lol", "omg" ...): "sooo" -> "so", "tooo" -> "too", "yesssss" -> "yes",
   "cooool" -> "cool", "reallllly" -> "really", "hmmmm" -> "hmm". A word that is itself
   known stays ("www", "aaa", "zzz", "xxx", "iii"), a word of one repeated letter becomes
   three of it ("zzzzz" -> "zzz"), and when no form is known every run becomes one letter
   ("omgggg" -> "omg"). Case is kept ("SOOO" -> "SO"). Runs of 4+ "!", "?" or "." become 3.
7. Whitespace: every Unicode space becomes a plain space and runs collapse to one; line
   breaks are kept (CRLF -> LF, at most one blank line in a row, no spaces around them);
   leading/trailing whitespace stripped. Emoji are kept untouched.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from functools import lru_cache

import numpy as np

# ----------------------------------------------------------------------------- patterns

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# Candidates; _is_phone() checks the digit count and the writing.
PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,5}){1,4}(?![\w])"
    r"|(?<![\w+])\+\d{9,15}(?!\w)"
    r"|(?<![\w+])(?:\+\d{1,3}[\s.-]?)?\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?!\w)"
)
# Cheap tests that must hit whenever the full pattern can (used to skip the full pattern).
PHONE_HINT_RE = re.compile(r"\d(?:[\s().-]{0,3}\d){9}")
LEADING_MENTIONS_RE = re.compile(r"^(?:\s*[.]?@\w{1,15}\b[:,]?)+\s*")
MENTION_RE = re.compile(r"(?<![\w@/.])@(\w{1,15})\b")
HASHTAG_RE = re.compile(r"(?<![\w&/#])#(\w*[^\W\d_]\w*)")
_INVISIBLE_RE = re.compile(r"[\u200b\u200c\u2060\ufeff\u00ad\u180e]")
_ZWJ_RE = re.compile(r"(?<![^\x00-\x7f])\u200d|\u200d(?![^\x00-\x7f])")
_TRIPLE_RE = re.compile(r"(\w)\1\1")  # prefilter; _ELONGATED_WORD_RE checks for letters
# Starts only where a run of letters starts (a match always spans the whole run; without the
# lookbehind re retries every position inside each word, quadratic in the word's length).
_ELONGATED_WORD_RE = re.compile(r"(?<![^\W\d_])[^\W\d_]*([^\W\d_])\1\1[^\W\d_]*", re.UNICODE)
_LETTER_TRIPLE_RE = re.compile(r"([^\W\d_])\1\1")
_LETTERS_RE = re.compile(r"[^\W\d_]+")
_RUN_RE = re.compile(r"([^\W\d_])\1*", re.UNICODE)
_PUNCT_RUN_RE = re.compile(r"([!?.])\1{3,}")
_HSPACE_RE = re.compile(r"[^\S\n]+")
_NL_SPACES_RE = re.compile(r" *\n *")
_MANY_NL_RE = re.compile(r"\n{3,}")

_CAMEL_RES = (
    (re.compile(r"_+"), " "),
    (re.compile(r"(?<=[a-z])(?=[A-Z])"), " "),             # MachineLearning, ChatGPT, DaysOf
    (re.compile(r"(?<=[A-Z])(?=[A-Z][a-z]{2})"), " "),     # AIAgents -> AI Agents
    (re.compile(r"(?<=\d)(?=[A-Z][a-z])"), " "),           # 100DaysOfCode
    (re.compile(r"(?<=[a-z]{2})(?=\d{3,})"), " "),         # Summer2024 -> Summer 2024
)

_LEADING_LOWER_RE = re.compile(r"^[a-z][A-Z][a-z]")

INFORMAL_WORDS = frozenset(
    ["hmm", "hm", "shh", "brr", "grr", "mmm", "ahh", "ohh", "uhh", "umm", "hmmm", "ugh", "argh", "aww", "oof", "yay", "yep", "nope", "wow", "lol", "lmao", "omg", "pls", "plz", "haha", "hehe", "yikes", "ok", "okay", "bruh", "tbh", "imo", "ngl", "idk", "www", "xxx", "zzz", "aaa", "iii", "vvv", "yeah", "nah", "meh", "huh", "whoa", "woo", "woohoo"]
)

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Lower-case English words: Webster's 2nd + GCIDE (english-words) + INFORMAL_WORDS."""
    from english_words import get_english_words_set

    words = get_english_words_set(["web2", "gcide"], lower=True, alpha=True)
    return frozenset(words) | INFORMAL_WORDS


# ----------------------------------------------------------------------------- pieces


def _is_phone(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if not 10 <= digits <= 15:
        return False
    if candidate.startswith("+") or "(" in candidate:
        return True
    groups = re.split(r"[\s.-]", candidate)
    # 555-123-4567 / 555.123.4567 / 020 7946 0958: 2-4 groups of 2-5 digits, consistent separators
    return 2 <= len(groups) <= 4 and all(2 <= len(g) <= 5 for g in groups)


def mask_phones(text: str) -> tuple[str, bool]:
    found = False

    def repl(m: re.Match) -> str:
        nonlocal found
        if _is_phone(m.group(0)):
            found = True
            return PHONE_MASK
        return m.group(0)

    return PHONE_RE.sub(repl, text), found


def has_email(text: str) -> bool:
    return bool(EMAIL_RE.search(text or ""))


def has_phone(text: str) -> bool:
    return bool(text) and PHONE_HINT_RE.search(text) is not None and mask_phones(text)[1]


@lru_cache(maxsize=1 << 16)
def split_hashtag(tag: str) -> str:
    """``MachineLearning`` -> ``Machine Learning`` (the tag without its ``#``)."""
    head, tag = (tag[:2], tag[2:]) if _LEADING_LOWER_RE.match(tag) else ("", tag)  # iPhone, eBay
    out = head + tag
    for pattern, repl in _CAMEL_RES:
        out = pattern.sub(repl, out) if not head else head + pattern.sub(repl, out[len(head):])
    return re.sub(" +", " ", out).strip()


@lru_cache(maxsize=1 << 16)
def collapse_word(word: str) -> str:
    """Collapse elongated letters in one word (see the module docstring, step 6)."""
    lower = word.lower()
    known = known_words()
    if lower in known or not _TRIPLE_RE.search(word):
        return word
    runs = [(m.start(), m.end()) for m in _RUN_RE.finditer(word)]
    if len(runs) == 1 and runs[0] == (0, len(word)):
        return word[:3]  # "zzzzz" -> "zzz"
    long_runs = [i for i, (s, e) in enumerate(runs) if e - s >= 3]
    if len(long_runs) > 6:  # keep the search small; fall back to single letters
        choices_iter = [tuple(1 for _ in long_runs)]
    else:
        choices_iter = itertools.product((2, 1), repeat=len(long_runs))

    def build(choice: tuple[int, ...]) -> str:
        keep = dict(zip(long_runs, choice))
        return "".join(word[s : s + keep.get(i, e - s)] for i, (s, e) in enumerate(runs))

    candidates = [build(choice) for choice in choices_iter]
    # Informal words first ("lolll" -> "lol", not the dictionary's "loll"), then the dictionary.
    for vocabulary in (INFORMAL_WORDS, known):
        for candidate in candidates:
            if candidate.lower() in vocabulary:
                return candidate
    return build(tuple(1 for _ in long_runs))


def _is_letter(ch: str) -> bool:  # re's [^\W\d_]
    return ch.isalnum() and not ch.isdecimal()


def collapse_elongations(text: str) -> str:
    # Same result as _ELONGATED_WORD_RE.sub(collapse_word), which re runs slowly (a class
    # test and a lookbehind at every position): find each tripled letter, widen it to its
    # run of letters, collapse that run, go on after it.
    m = _LETTER_TRIPLE_RE.search(text)
    if m is not None:
        pieces = []
        done = 0
        while m is not None:
            start = m.start()
            while start > done and _is_letter(text[start - 1]):
                start -= 1
            end = _LETTERS_RE.match(text, m.start()).end()
            pieces.append(text[done:start])
            pieces.append(collapse_word(text[start:end]))
            done = end
            m = _LETTER_TRIPLE_RE.search(text, end)
        pieces.append(text[done:])
        text = "".join(pieces)
    if "!!!!" in text or "????" in text or "...." in text:
        text = _PUNCT_RUN_RE.sub(r"\1\1\1", text)
    return text


def normalize_whitespace(text: str) -> str:
    if "\n" not in text and "\r" not in text:
        return " ".join(text.split())
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HSPACE_RE.sub(" ", text)
    text = _NL_SPACES_RE.sub("\n", text)
    text = _MANY_NL_RE.sub("\n\n", text)
    return text.strip()


# ----------------------------------------------------------------------------- main




# ----------------------------------------------------------------------------- batch

# Python's whitespace (``str.isspace``, ``re``'s ``\s``, what ``str.split()`` splits on) as
# an RE2 character-class body, with and without the plain space (a test checks both).
PY_SPACE_RE2 = (
    r"\x{9}-\x{d}\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}"
)
PY_SPACE_NO_BLANK_RE2 = PY_SPACE_RE2.replace(r"\x{1c}-\x{20}", r"\x{1c}-\x{1f}")
# Non-ASCII characters that Python's re.IGNORECASE matches against an ASCII letter
# (İ ı ſ K); RE2 does not fold all of them, so a row holding one is always checked in Python.
PY_FOLD_SPECIAL_RE2 = r"(?-i:[\x{130}\x{131}\x{17f}\x{212a}])"  # case-sensitive inside (?i) patterns

# Superset of "clean_text could change this text" (RE2 syntax), see clean_texts().
_NEEDS_CLEAN_RE2 = (
    r"[&@#\x{200b}\x{200c}\x{200d}\x{2060}\x{feff}\x{ad}\x{180e}" + PY_SPACE_NO_BLANK_RE2 + r"]"
    r"|!!!!|\?\?\?\?|\.\.\.\.|  |^ | $"
    r"|\p{Nd}(?:[" + PY_SPACE_RE2 + r"().\-]{0,3}\p{Nd}){9}"
)


def arrow_strings(texts: list):
    """A pyarrow string array of ``texts`` (all ``str``), or None when it can't be built
    (lone surrogates are not UTF-8): callers then treat every row as a candidate."""
    import pyarrow as pa

    try:
        return pa.array(texts, type=pa.large_string())
    except (pa.ArrowException, UnicodeEncodeError, TypeError):
        return None


def re2_mask(arr, pattern: str, n: int) -> np.ndarray:
    """Rows of an ``arrow_strings`` array matching an RE2 ``pattern`` (all True without one).

    RE2 scans linearly in C++ (20-30x faster here than ``re`` over the same rows); the
    patterns used are supersets of the Python patterns they stand for, which then run in
    Python on the matching rows only, so every verdict is Python's.
    """
    if arr is None:
        return np.ones(n, dtype=bool)
    import pyarrow.compute as pc

    return np.asarray(pc.match_substring_regex(arr, pattern=pattern).to_numpy(zero_copy_only=False), dtype=bool)


# char_classes() values
OTHER, LETTER, DIGIT, UNDERSCORE = 0, 1, 2, 3


@lru_cache(maxsize=1)
def char_classes() -> np.ndarray:
    r"""A uint8 table over every code point, as ``re`` sees it for str patterns: DIGIT
    (``\d``), UNDERSCORE, LETTER (any other ``\w``: letters, other numerals) or OTHER
    (``\W``). Built with ``re`` itself, so it agrees by construction."""
    every = "".join(map(chr, range(0x110000)))
    table = np.zeros(0x110000, dtype=np.uint8)
    for m in re.finditer(r"\w+", every):
        table[m.start() : m.end()] = LETTER
    for m in re.finditer(r"\d+", every):
        table[m.start() : m.end()] = DIGIT
    table[ord("_")] = UNDERSCORE
    return table


SEP = "\x00"


def codepoints(texts: list[str], joined: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(cp, seps)``: the code points of ``SEP.join(texts)`` (uint32; ``joined`` when the
    caller already has that string, transformed row by row) and the positions of the
    separators, so the row of position ``p`` is ``np.searchsorted(seps, p)``. None when a
    text holds a NUL or a lone surrogate (callers then go row by row)."""
    if joined is None:
        joined = SEP.join(texts)
    try:
        cp = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    except UnicodeEncodeError:
        return None
    seps = np.flatnonzero(cp == 0)
    if len(seps) != max(len(texts) - 1, 0):
        return None
    return cp, seps


def clean_texts(texts, settings=None) -> list[str]:
    """``[clean_text(t, settings) for t in texts]``, computed faster: a text that no step
    of clean_text can change (no ``&``, ``@``, ``#``, invisible character, phone-like digit
    run, letter tripled, punctuation run, non-NFC character or irregular whitespace; found
    for all rows at once with RE2 and numpy) is returned as is, every other text goes
    through clean_text itself."""
    out = [t if isinstance(t, str) else "" for t in texts]
    n = len(out)
    if n == 0:
        return out
    needs = re2_mask(arrow_strings(out), _NEEDS_CLEAN_RE2, n)
    points = codepoints(out)
    if points is None:
        needs[:] = True
    else:
        cp, seps = points
        same = np.flatnonzero((cp[:-2] == cp[1:-1]) & (cp[1:-1] == cp[2:]))
        triple = same[char_classes()[cp[same]] != OTHER]  # re's (\w)\1\1
        needs[np.searchsorted(seps, triple)] = True
        for i in np.unique(np.searchsorted(seps, np.flatnonzero(cp >= 0x80))):
            if not needs[i] and not unicodedata.is_normalized("NFC", out[i]):
                needs[i] = True
    for i in np.flatnonzero(needs):
        out[i] = clean_text(texts[i], settings)
    return out


def clean_text(text: str | None, settings=None) -> str:
    """Training text for one tweet or reply (``settings``: a ValidationSettings or None)."""
    if not isinstance(text, str) or not text:
        return ""
    placeholder = getattr(settings, "handle_placeholder", "@user") if settings is not None else "@user"
    if "&" in text:
        text = html.unescape(text)
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE_RE.sub("", text)
    if "\u200d" in text:
        text = _ZWJ_RE.sub("", text)
    if "@" in text:
        text = EMAIL_RE.sub(EMAIL_MASK, text)
        text = LEADING_MENTIONS_RE.sub("", text)
        text = MENTION_RE.sub(lambda m: placeholder, text)
    if PHONE_HINT_RE.search(text):
        text, _ = mask_phones(text)
    if "#" in text:
        text = HASHTAG_RE.sub(lambda m: split_hashtag(m.group(1)), text)
    text = collapse_elongations(text)
    return normalize_whitespace(text)
