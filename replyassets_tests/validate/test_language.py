"""The language scorer measured on hand-labelled replies (lang_samples.py)."""

from __future__ import annotations

import numpy as np

from replyassets_tests.validate.lang_samples import ENGLISH, NON_ENGLISH, SHORT_ENGLISH

THRESHOLD = 0.8


def test_labelled_sets_are_what_they_claim():
    assert len(ENGLISH) >= 100 and all(len(t) >= 40 for t in ENGLISH)
    assert len(NON_ENGLISH) >= 90 and len({code for code, _ in NON_ENGLISH}) >= 10


def test_false_rejection_and_false_acceptance_rates(language_scorer):
    en = language_scorer.english_confidence(ENGLISH)
    other = language_scorer.english_confidence([t for _, t in NON_ENGLISH])
    frr = float(np.mean(en <= THRESHOLD))
    caught = float(np.mean(other <= THRESHOLD))
    print(f"FRR English {frr:.3f}  non-English caught {caught:.3f}")
    assert frr < 0.05, [t for t, s in zip(ENGLISH, en) if s <= THRESHOLD]
    assert caught >= 0.90, [t for (_, t), s in zip(NON_ENGLISH, other) if s > THRESHOLD]
    for code in ("es", "de", "fr", "pt", "it", "nl"):
        scores = language_scorer.english_confidence([t for c, t in NON_ENGLISH if c == code])
        assert (scores <= THRESHOLD).all(), code


def test_the_absolute_lingua_confidence_would_reject_informal_english(language_scorer):
    """Why the module defines its own confidence: lingua's absolute value fails most replies."""
    from lingua import Language

    from replyassets.scorers.language import detection_text

    detector = language_scorer._accurate
    absolute = np.array([detector.compute_language_confidence(detection_text(t), Language.ENGLISH)
                         for t in ENGLISH])
    assert np.mean(absolute <= THRESHOLD) > 0.3


def test_short_and_emoji_only_text_scores_zero(language_scorer):
    scores = language_scorer.english_confidence(["🔥🔥🔥", "lol", "@user https://t.co/x", "", "12345 !!!"])
    assert (scores == 0.0).all()
    long_enough = language_scorer.english_confidence(["this is the way 🙌 honestly the best approach"])
    assert long_enough[0] > THRESHOLD
    assert language_scorer.english_confidence(SHORT_ENGLISH).shape == (len(SHORT_ENGLISH),)


def test_batch_contract_duplicates_and_non_strings(language_scorer):
    texts = [ENGLISH[0], NON_ENGLISH[0][1], ENGLISH[0], None]
    scores = language_scorer.english_confidence(texts)
    assert scores.shape == (4,) and scores.dtype == np.float64
    assert scores[0] == scores[2] and scores[3] == 0.0
    assert ((scores >= 0) & (scores <= 1)).all()
    assert language_scorer.english_confidence([]).shape == (0,)


def test_fast_path_agrees_with_the_accurate_model(language_scorer):
    from replyassets.scorers.language import LanguageScorer

    accurate_only = LanguageScorer(fast_accept=None)
    texts = ENGLISH + [t for _, t in NON_ENGLISH]
    a = accurate_only.english_confidence(texts) > THRESHOLD
    b = language_scorer.english_confidence(texts) > THRESHOLD
    assert (a == b).all()
