"""OfflineJudge: a deterministic, reference-based judge for the ``local`` profile (no LLM, no network).

It is NOT a judge of quality in the LLM sense; it measures how close a reply comes to the real
high-engagement reply, and it is labelled "offline" wherever it appears (name, model id, reports).

How it scores one reply (all deterministic, pure Python):

1. ``sim(x, y)`` is a lexical cosine similarity: the mean of the cosine over word unigrams +
   bigrams and the cosine over character 3-grams (lowercased, whitespace normalised), in [0, 1].
2. ``relevance = 0.7 * sim(reply, reference) + 0.3 * sim(reply, tweet)``; without a reference,
   ``sim(reply, tweet)`` alone.
3. Penalties multiply it: length (``n < min_chars`` -> ``n / min_chars``; ``n > max_chars`` ->
   ``max_chars / n``; the limits are ``validation.min_chars`` / ``validation.max_chars``), repetition
   (``sqrt(distinct words / words)``), and parroting (a reply whose similarity to the tweet is
   above 0.9 is halved). An empty reply scores 0.
4. ``quality`` in [0, 1]; ``score = 1 + 9 * min(1, quality / full_marks)`` (``full_marks`` 0.6),
   rounded to 2 decimals, so a score is in [1, 10].
5. ``compare``: the higher quality wins; a difference of at most ``tie_margin``
   (``evaluation.offline_tie_margin``) is a tie.
   The judge looks at content only, so it has no position bias: swapping A and B swaps the answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from itertools import pairwise

from replyassets.judges.base import Score, Verdict

_WORD_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def _words(text: str) -> list[str]:
    return [w for w in _WORD_RE.findall(text.lower()) if w.strip()]


def _features(text: str) -> tuple[Counter, Counter]:
    words = _words(text)
    word_feats = Counter(words)
    word_feats.update(" ".join(p) for p in pairwise(words))
    norm = " ".join(text.lower().split())
    chars = Counter(norm[i : i + 3] for i in range(max(0, len(norm) - 2))) if len(norm) >= 3 else Counter([norm] if norm else [])
    return word_feats, chars


def _cos(a: Counter, b: Counter) -> float:
    if not a or not b:
        return 0.0
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return float(dot / (na * nb)) if na and nb else 0.0


def lexical_similarity(x: str, y: str) -> float:
    """Mean of word(1-2 gram) cosine and char-3-gram cosine, in [0, 1]."""
    wx, cx = _features(x or "")
    wy, cy = _features(y or "")
    return round(0.5 * _cos(wx, wy) + 0.5 * _cos(cx, cy), 6)


class OfflineJudge:
    """Deterministic reference-based judge. See the module docstring for the exact formula."""

    offline = True

    def __init__(
        self,
        *,
        tie_margin: float,
        min_chars: int,
        max_chars: int,
        full_marks: float = 0.6,
        reference_weight: float = 0.7,
    ) -> None:
        if not 0 <= reference_weight <= 1:
            raise ValueError("reference_weight must be in [0, 1]")
        if not 0 < min_chars <= max_chars:
            raise ValueError(f"offline judge: reply length limits {min_chars}-{max_chars} need "
                             "0 < validation.min_chars <= validation.max_chars")
        self.tie_margin = tie_margin
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.full_marks = full_marks
        self.reference_weight = reference_weight
        self.name = "offline-reference-judge"
        self.model_id = "offline-lexical"
        self.prompt_version = (
            f"offline-v1:tie={tie_margin}:len={min_chars}-{max_chars}:full={full_marks}:w={reference_weight}"
        )

    def quality(self, tweet: str, reply: str, reference: str | None = None) -> tuple[float, dict[str, float]]:
        reply = (reply or "").strip()
        if not reply:
            return 0.0, {"ref": 0.0, "tweet": 0.0, "len": 0.0, "rep": 0.0}
        s_tweet = lexical_similarity(reply, tweet or "")
        if reference and reference.strip():
            s_ref = lexical_similarity(reply, reference)
            rel = self.reference_weight * s_ref + (1 - self.reference_weight) * s_tweet
        else:
            s_ref = float("nan")
            rel = s_tweet
        n = len(reply)
        length = min(1.0, n / self.min_chars) * min(1.0, self.max_chars / n)
        words = _words(reply)
        rep = math.sqrt(len(set(words)) / len(words)) if words else 0.0
        parrot = 0.5 if s_tweet > 0.9 else 1.0
        q = max(0.0, min(1.0, rel * length * rep * parrot))
        return q, {"ref": s_ref, "tweet": s_tweet, "len": length, "rep": rep}

    def score(self, tweet: str, reply: str, reference: str | None = None) -> Score:
        q, parts = self.quality(tweet, reply, reference)
        value = round(1.0 + 9.0 * min(1.0, q / self.full_marks), 2)
        return Score(value=value, reason=f"offline quality={q:.4f} " + _fmt(parts), raw="")

    def compare(self, tweet: str, reply_a: str, reply_b: str, reference: str | None = None) -> Verdict:
        qa, pa = self.quality(tweet, reply_a, reference)
        qb, pb = self.quality(tweet, reply_b, reference)
        diff = qa - qb
        winner = "tie" if abs(diff) <= self.tie_margin else ("A" if diff > 0 else "B")
        reason = f"offline: A q={qa:.4f} ({_fmt(pa)}) vs B q={qb:.4f} ({_fmt(pb)}); margin {self.tie_margin}"
        return Verdict(winner=winner, reason=reason, raw="")


def _fmt(parts: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in parts.items())
