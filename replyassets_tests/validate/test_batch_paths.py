"""The column-at-once code paths give exactly what the one-text-at-a-time definitions give.

clean_texts, the RE2 prefilters in apply_rules and the numpy word/token counts exist only for
speed (benchmarks/validate.py); each is checked here against the plain per-text definition on
crafted texts and on hypothesis-generated ones built from the characters that matter
(Unicode spaces and digits, letters Python folds onto ASCII, invisible characters, tripled
letters, NULs and lone surrogates, which send the batch code to its row-by-row fallback).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from replyassets.core import clean as C
from replyassets.core import urls as U
from replyassets.core import validate as V
from replyassets.settings import ValidationSettings
from replyassets_tests.hypothesis_profiles import examples
from replyassets_tests.validate.conftest import GOOD_REPLY, make_pairs
from replyassets_tests.validate.lang_samples import ENGLISH, NON_ENGLISH, SHORT_ENGLISH

PIECES = [
    "a", "e", "s", "k", "i", "o", "x", "A", "S", "K", "I", "aaa", "sooo", "Heyyy", "ooo", "zzzz",
    "é", "e\u0301", "İ", "ı", "ſ", "\u212a", "Σ", "ß", "²", "Ⅻ", "٣", "7", "0x", "100x", "555",
    "-", "'", "’", "_", ".", "....", "!!!!", "?", "#", "#AI", "#MachineLearning", "@", "@bob",
    "@user", "&amp;", "&#97;", "&", "[email]", "[phone]", "[", " ", "  ", "\t", "\n", "\r",
    "\u00a0", "\u3000", "\u2028", "\x1c", "\x85", "\u200b", "\u200d", "\ufeff", "\u00ad",
    "🔥", "👨\u200d💻", "😂", "\x00", "\ud800", "gm", "ser", "wagmi", "stay locked in",
    "to the moon", "giveaway", "love this", "thanks for sharing", "so true", "couldn't agree more",
    "100%", "congrats", "https://t.co/x", "www.example.org", "github.com/a", "a.b@example.com",
    "dev@example.co.uk", "+1 (555) 123-4567", "555-123-4567", "020 7946 0958", "algorithm",
    "series", "serious", "gmail", "the", "and", "debugging", "latency", "don't", "x-ray",
    "wagmı", "ſer", "gıveaway", "LİNK", "bit.lin\u212a", "r", "m", "g", "123", "4567",
]
texts_strategy = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)
batches = st.lists(texts_strategy, min_size=1, max_size=25)
SETTINGS = ValidationSettings()


def _crafted() -> list[str]:
    return [
        *ENGLISH, *(t for _, t in NON_ENGLISH), *SHORT_ENGLISH, GOOD_REPLY, "", " ", "x",
        "sooo true, me tooo!!!!!!", "wait.......what??????", "aaa battery from www dot com",
        "@alice @bob_99 great point, @carol agrees", "Tom &amp; Jerry &gt; cats",
        "a\u200bb  c\u00a0\u00a0d\t\te", "  line one  \r\n\r\n\r\n\r\n  line two  ",
        "mail john.doe+x@example.co.uk or call +1 (555) 123-4567", "dev 👨\u200d💻 life",
        "big news #100DaysOfCode today", "café café cafe\u0301", "İstanbul ΣΟΦΟΣ word's",
        "it's a NUL\x00inside", "lone \ud800 surrogate", "12abc a_b_c __init__ x1 ²³ 7a 9bc_def",
        "wagmı frens", "ſer, this is the way", "gıveaway time", "site.lın\u212a here",
        "not a link: @github.com/x or x@y", "call 555\u00a0123\u00a04567 now", "call \u0665\u0665\u0665-\u0661\u0662\u0663-\u0664\u0665\u0666\u0667",
    ]


def _reference_rules(raw: str, text: str, settings: ValidationSettings) -> dict:
    """Each text rule decided on its own with the plain Python patterns."""
    gre = V.generic_regex(settings.extra_generic_phrases)
    total = len(V._WORD_RE.findall(text))
    rest = len(V._WORD_RE.findall(gre.sub(" ", text))) if gre.search(text) else total
    email = C.has_email(raw)
    url = U.has_url(raw) or U.has_url(text)  # the raw reply and the cleaned one (core/urls.py)
    return {
        "email": email, "url": url, "phone": C.has_phone(raw),
        "spam": bool(V.spam_regex(settings.extra_spam_keywords).search(text) or V.HYPE_RE.search(text)),
        "ratio": max(total - rest, 0) / total if total else 0.0,
        "meaningful": int(V._meaningful_count_reference([text], settings.handle_placeholder)[0]),
        "blank": not raw.strip(),
    }


def _check_rules(replies: list[str], settings: ValidationSettings = SETTINGS) -> None:
    replies = [V._SURROGATE_RE.sub("\ufffd", r) for r in replies]  # as coerce_pairs stores them
    frame = V.clean_pairs(make_pairs(replies), settings)
    n = len(frame)
    out = V.apply_rules(frame, settings, np.full(n, 0.99), np.full(n, 0.01))
    for i, raw in enumerate(replies):
        ref = _reference_rules(raw, out["reply_clean"].iat[i], settings)
        row = out.iloc[i]
        assert bool(row["rule_spam"]) == (not ref["spam"]), raw
        assert bool(row["rule_url"]) == (not ref["url"]), raw
        assert bool(row["rule_personal_data"]) == (not (ref["email"] or ref["phone"])), raw
        assert row["generic_ratio"] == ref["ratio"], raw
        assert row["meaningful_words"] == ref["meaningful"], raw
        assert bool(row["rule_missing_fields"]) == (not ref["blank"]), raw


def test_re2_whitespace_class_is_pythons_whitespace():
    import pyarrow as pa
    import pyarrow.compute as pc

    chars = [chr(i) for i in range(0x110000) if not 0xD800 <= i < 0xE000]
    arr = pa.array(chars)
    space = pc.match_substring_regex(arr, "^[" + C.PY_SPACE_RE2 + "]$").to_numpy(zero_copy_only=False)
    assert [c for c, m in zip(chars, space) if m] == [c for c in chars if c.isspace()]
    no_blank = pc.match_substring_regex(arr, "^[" + C.PY_SPACE_NO_BLANK_RE2 + "]$").to_numpy(zero_copy_only=False)
    assert [c for c, m in zip(chars, no_blank) if m] == [c for c in chars if c.isspace() and c != " "]
    # the non-ASCII characters Python's IGNORECASE matches against ASCII letters
    folded = re.findall(r"(?i)[a-z]", "".join(c for c in chars if not c.isascii()))
    special = pc.match_substring_regex(pa.array(folded + ["k", "S"]), "^" + C.PY_FOLD_SPECIAL_RE2 + "$")
    assert special.to_pylist() == [True] * len(folded) + [False, False]


def test_char_classes_agree_with_re():
    table = C.char_classes()
    rng = np.random.default_rng(0)
    points = np.concatenate([np.arange(0x3000), rng.integers(0, 0x110000, 20_000)])
    for p in points:
        ch = chr(int(p))
        expected = (C.DIGIT if re.match(r"\d", ch) else C.UNDERSCORE if ch == "_"
                    else C.LETTER if re.match(r"\w", ch) else C.OTHER)
        assert table[p] == expected, hex(p)


def test_clean_texts_equals_clean_text_on_crafted_texts():
    texts = _crafted() + [None, 3]
    assert C.clean_texts(texts, SETTINGS) == [C.clean_text(t, SETTINGS) for t in texts]
    custom = ValidationSettings(handle_placeholder="<user>")
    assert C.clean_texts(texts, custom) == [C.clean_text(t, custom) for t in texts]
    assert C.clean_texts([], SETTINGS) == []


@hsettings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_clean_texts_equals_clean_text(texts):
    assert C.clean_texts(texts, SETTINGS) == [C.clean_text(t, SETTINGS) for t in texts]


_ORIGINAL_ELONGATED = re.compile(r"[^\W\d_]*([^\W\d_])\1\1[^\W\d_]*")


@hsettings(max_examples=examples(200), deadline=None)
@given(texts_strategy)
def test_collapse_elongations_equals_the_regex_definition(text):
    expected = text
    if C._TRIPLE_RE.search(expected):
        expected = _ORIGINAL_ELONGATED.sub(lambda m: C.collapse_word(m.group(0)), expected)
    expected = C._PUNCT_RUN_RE.sub(r"\1\1\1", expected)
    assert C.collapse_elongations(text) == expected


@hsettings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.sampled_from(["@user", "<user>", "", "[user]"]))
def test_token_and_word_counts_equal_the_per_text_definitions(texts, placeholder):
    assert V._meaningful_count(texts, placeholder).tolist() == V._meaningful_count_reference(texts, placeholder).tolist()
    assert V._word_counts(texts).tolist() == [len(V._WORD_RE.findall(t)) for t in texts]


def test_counts_on_crafted_texts_including_the_fallbacks():
    texts = _crafted()
    assert V._meaningful_count(texts, "@user").tolist() == V._meaningful_count_reference(texts, "@user").tolist()
    assert V._word_counts(texts).tolist() == [len(V._WORD_RE.findall(t)) for t in texts]
    assert V._meaningful_count([], "@user").tolist() == []


def test_rule_prefilters_miss_nothing_on_crafted_replies():
    _check_rules(_crafted())
    _check_rules(_crafted(), ValidationSettings(extra_spam_keywords=("pump", "café crème"),
                                                extra_generic_phrases=("ok cool", "très bien")))


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@hsettings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_rule_prefilters_miss_nothing(replies):
    _check_rules(replies)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_coerce_keeps_strings_and_repairs_surrogates():
    pairs = make_pairs(["plain", "lone \ud800 surrogate", "emoji 🔥"])
    pairs.loc[1, "tweet"] = 12345
    pairs.loc[2, "tweet"] = None
    out = V.coerce_pairs(pairs)
    assert out["reply"].tolist() == ["plain", "lone \ufffd surrogate", "emoji 🔥"]
    assert out["tweet"].tolist()[1:] == ["12345", pd.NA] and str(out["reply"].dtype) == "string"


def test_language_scorer_scores_each_detection_text_once(language_scorer):
    from replyassets.scorers.language import detection_text

    a, b = ENGLISH[0] + " 123", ENGLISH[0] + " 456 https://t.co/x"
    assert detection_text(a) == detection_text(b)
    scores = language_scorer.english_confidence([a, b, ENGLISH[1]])
    assert scores[0] == scores[1] and scores[0] > 0.8


def test_posterior_stops_early_without_changing_the_value(language_scorer):
    """lingua sorts the values (highest first), so the first other language is the top one;
    lingua's own sums differ by ~1e-14 between calls, hence the tolerance."""
    from lingua import Language

    from replyassets.scorers.language import detection_text

    texts = [detection_text(t) for t in ENGLISH[:40] + [t for _, t in NON_ENGLISH[:40]]]
    for detector in (language_scorer._fast, language_scorer._accurate):
        fast = language_scorer._posterior(detector, texts)
        full = []
        for values in detector.compute_language_confidence_values_in_parallel(texts):
            assert [v.value for v in values] == sorted((v.value for v in values), reverse=True)
            p_en = next(v.value for v in values if v.language == Language.ENGLISH)
            p_top = max(v.value for v in values if v.language != Language.ENGLISH)
            prior = language_scorer.english_prior
            den = prior * p_en + (1 - prior) * p_top
            full.append(prior * p_en / den if den > 0 else 0.0)
        np.testing.assert_allclose(fast, full, rtol=0, atol=1e-12)


@pytest.mark.parametrize("text", ["x" * 5, "e\u0301" * 3, "Ⅻ²", "\x00\x00"])
def test_nfc_and_odd_texts_round_trip(text):
    assert C.clean_texts([text], SETTINGS) == [C.clean_text(text, SETTINGS)]
