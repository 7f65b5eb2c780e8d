"""English confidence of reply texts with lingua, defined so that informal English is kept.

Why not lingua's absolute confidence: ``compute_language_confidence(text, ENGLISH)`` spreads
probability over every language whose n-gram model overlaps English (Tagalog above all,
since Taglish tweets are full of English; then Dutch, German, the Scandinavian languages).
On our labelled set of 118 informal English replies (replyassets_tests/validate/
lang_samples.py: slang, typos, emoji, @handles, hashtags, 40+ characters) it is <= 0.8 for
74 % of them with all languages loaded and for 52 % with the 32 languages below.

The stored confidence. Text is first stripped of URLs, @handles, e-mails, digits, emoji
and punctuation (hashtags keep their word). lingua then scores a fixed set of 32
languages that cover what appears on Twitter (LANGUAGES; Latin-script competitors plus
the major other scripts, so Russian or Japanese replies are recognised rather than forced
onto a Latin language). With ``p_en`` English's value and ``p_top`` the best non-English
value, and ``prior`` the prior probability that a reply collected under an English tweet
is English (``ValidationSettings.english_prior``, 0.9)::

    confidence = prior * p_en / (prior * p_en + (1 - prior) * p_top)

i.e. the posterior of English against its strongest competitor. lingua's values are a
softmax of n-gram log-likelihoods, so this is a sigmoid of the log-likelihood margin
shifted by the prior log-odds; with the 0.8 threshold a reply passes when English is at
least 4/9 as likely as the best other language. The margins are well separated: the
lowest English margin on our set is +0.43, the highest non-English one -2.42.

Measured on the labelled sets (threshold 0.8, this module's settings):

    definition                              FRR English (118)   FAR non-English (96)
    lingua absolute, all languages          73.7 %              0.0 %
    lingua absolute, the 32 languages       51.7 %              0.0 %
    English vs top competitor, no prior      4.2 %              0.0 %
    this module (prior 0.9, two-pass)        0.0 %              0.0 %

(non-English: es, de, fr, pt, it, nl 12 each, id 5, tr 4, pl 4, sv 4, tl 3, ru 2, ja 2).
The tests re-measure this and assert FRR < 5 % and FAR <= 10 %.

Short and emoji-heavy text, on purpose: when fewer than ``min_letters`` (10) letters
remain after stripping, no detector can tell the language (lingua puts "lol" in German);
the confidence is then 0.0 and the row fails ``language`` as "not verifiably English".
Such replies are under the 30-character and 8-meaningful-word minimums anyway.

Speed (two passes): lingua's low-accuracy mode (trigrams only) runs about 4x faster. A text
whose low-accuracy confidence is >= ``fast_accept`` (0.99) keeps that score; every other
text (possible non-English, borderline, short) is re-scored in high-accuracy mode, so a
rejection is always decided by the accurate model; on the labelled sets both variants give
the same verdict for every text. Only unique texts are scored, unique as lingua sees
them (``detection_text``: texts differing only in digits, URLs, handles or emoji are
scored once). Both detectors are built
once per process and cached: low-accuracy about 1 s and 70 MB, high-accuracy about 7 s of
CPU (18-22 s wall on the shared 2-core machine) and about 690 MB for the 32 languages
(all 75 languages: about 1.3 GB).

Throughput measured here (2 cores shared, load average 3): low-accuracy pass about 4,000
texts/s, high-accuracy about 1,000 texts/s; 87 % of the benchmark's replies are settled by
the fast pass. Under load average 8 both drop about 4x (see benchmarks/validate.py). lingua
is about 85 % of the full local validation's CPU time: the high-accuracy re-scoring of 13 %
of the texts costs about as much as the fast pass over all of them, and skipping it for
"clearly non-English" fast scores would change verdicts (on the benchmark's mixed replies a
fast posterior of 0.001 still has an accurate one above 0.8), so every rejection stays with
the accurate model. lingua's own values vary by about 1e-14 between calls.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from lingua import Language, LanguageDetector, LanguageDetectorBuilder

LANGUAGES: tuple[str, ...] = (
    "ENGLISH", "SPANISH", "PORTUGUESE", "FRENCH", "GERMAN", "ITALIAN", "DUTCH",
    "INDONESIAN", "MALAY", "TAGALOG", "TURKISH", "POLISH", "SWEDISH", "DANISH", "BOKMAL",
    "FINNISH", "CATALAN", "ROMANIAN", "CZECH", "RUSSIAN", "UKRAINIAN", "ARABIC", "PERSIAN",
    "URDU", "HINDI", "JAPANESE", "CHINESE", "KOREAN", "THAI", "VIETNAMESE", "HEBREW", "GREEK",
)

_STRIP_RE = re.compile(
    r"https?://\S+|www\.\S+|\S+@\S+\.\w+|(?<!\w)@\w+|\d+|_|[^\w\s'’]",
    re.UNICODE,
)
_SPACE_RE = re.compile(r"\s+")
_LOCK = threading.Lock()


def detection_text(text: str) -> str:
    """The text lingua sees: no URLs, @handles, e-mails, digits, emoji or punctuation."""
    if not isinstance(text, str):
        return ""
    return _SPACE_RE.sub(" ", _STRIP_RE.sub(" ", text.replace("#", " "))).strip()


def letter_count(text: str) -> int:
    return sum(map(str.isalpha, text))


@lru_cache(maxsize=8)
def _detector(languages: tuple[str, ...], low_accuracy: bool) -> LanguageDetector:
    try:
        langs = [getattr(Language, name) for name in languages]
    except AttributeError as exc:
        raise ValueError(f"unknown lingua language in {languages}: {exc}") from None
    if "ENGLISH" not in languages or len(langs) < 2:
        raise ValueError("the language set must contain ENGLISH and at least one other language")
    builder = LanguageDetectorBuilder.from_languages(*langs).with_preloaded_language_models()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    return builder.build()


class LanguageScorer:
    """Batch English confidence in [0, 1] (see the module docstring for the definition)."""

    name = "lingua"

    def __init__(
        self,
        languages: Sequence[str] = LANGUAGES,
        english_prior: float = 0.9,
        min_letters: int = 10,
        fast_accept: float | None = 0.99,
    ) -> None:
        if not 0.0 < english_prior < 1.0:
            raise ValueError(f"english_prior must be in (0, 1), got {english_prior}")
        self.languages = tuple(languages)
        self.english_prior = float(english_prior)
        self.min_letters = int(min_letters)
        self.fast_accept = fast_accept
        with _LOCK:
            self._accurate = _detector(self.languages, False)
            self._fast = _detector(self.languages, True) if fast_accept is not None else None

    @classmethod
    def from_settings(cls, settings) -> LanguageScorer:
        """``settings``: a ValidationSettings."""
        return cls(english_prior=settings.english_prior, min_letters=settings.min_lang_letters)

    def _posterior(self, detector: LanguageDetector, texts: list[str]) -> np.ndarray:
        out = np.zeros(len(texts), dtype=np.float64)
        if not texts:
            return out
        prior = self.english_prior
        english = Language.ENGLISH
        for i, values in enumerate(detector.compute_language_confidence_values_in_parallel(texts)):
            p_en = 0.0
            p_top = -1.0
            for cv in values:  # sorted by value, highest first: the first other language is the top one
                if cv.language == english:
                    p_en = cv.value
                    if p_top >= 0.0:
                        break
                elif p_top < 0.0:
                    p_top = cv.value
                    if p_en > 0.0:
                        break
            p_top = max(p_top, 0.0)
            den = prior * p_en + (1.0 - prior) * p_top
            out[i] = prior * p_en / den if den > 0.0 else 0.0
        return out

    def english_confidence(self, texts: Sequence[str]) -> np.ndarray:
        """One float per text; 0.0 for text with too few letters to judge (and for non-strings).

        lingua sees ``detection_text(text)``, so texts that differ only in what it strips
        (digits, URLs, handles, punctuation, emoji) are scored once."""
        texts = list(texts)
        result = np.zeros(len(texts), dtype=np.float64)
        if not texts:
            return result
        unique: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            unique.setdefault(detection_text(t) if isinstance(t, str) else "", []).append(i)
        prepared = list(unique)
        scores = np.zeros(len(prepared), dtype=np.float64)
        judged = [j for j, p in enumerate(prepared) if letter_count(p) >= self.min_letters]
        todo = judged
        if self._fast is not None and judged:
            fast = self._posterior(self._fast, [prepared[j] for j in judged])
            todo = []
            for j, s in zip(judged, fast):
                if s >= self.fast_accept:
                    scores[j] = s
                else:
                    todo.append(j)
        if todo:
            scores[todo] = self._posterior(self._accurate, [prepared[j] for j in todo])
        for key, score in zip(prepared, scores):
            result[unique[key]] = score
        return np.clip(result, 0.0, 1.0)
