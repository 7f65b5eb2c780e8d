"""The judge interface shared by the offline and the Anthropic judges (no Dagster).

A judge answers two questions about replies to a tweet:

- ``compare(tweet, reply_a, reply_b, reference=None) -> Verdict``: which of two replies is
  better (``"A"``, ``"B"`` or ``"tie"``). Callers ask both orders to cancel position bias
  (see ``replyassets.core.judging``).
- ``score(tweet, reply, reference=None) -> Score``: the reply alone on a 1-10 scale
  (G-Eval style), so per-item score distributions exist for the paired statistics.

A verdict or score the judge could not produce in a valid form is returned with
``valid=False`` and an ``error`` code (never raised): statistics exclude it and count it.
``reference`` is the real high-engagement reply; the offline judge uses it, the Anthropic
judge ignores it (it would otherwise reward copying the reference).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal, Protocol, runtime_checkable

Winner = Literal["A", "B", "tie"]
WINNERS: tuple[str, ...] = ("A", "B", "tie")
SCORE_MIN, SCORE_MAX = 1.0, 10.0


class JudgeError(RuntimeError):
    """A judge cannot work at all (bad credentials, bad request, unknown model): fail loudly."""


@dataclass(frozen=True)
class Verdict:
    winner: Winner | None
    reason: str = ""
    raw: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    valid: bool = True
    error: str = ""
    cost_usd: float = 0.0
    cached: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, s: str) -> Verdict:
        return cls(**json.loads(s))


@dataclass(frozen=True)
class Score:
    value: float | None
    reason: str = ""
    raw: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    valid: bool = True
    error: str = ""
    cost_usd: float = 0.0
    cached: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, s: str) -> Score:
        return cls(**json.loads(s))


@runtime_checkable
class Judge(Protocol):
    """What ``judge_pairs`` needs from a judge."""

    name: str            # e.g. "offline-reference-v1" or "anthropic"
    model_id: str        # the model behind it ("offline" for the offline judge)
    prompt_version: str  # bump when the rubric/prompt changes: it keys the cache
    offline: bool        # True for a judge that calls no LLM (labelled so in reports)

    def compare(self, tweet: str, reply_a: str, reply_b: str, reference: str | None = None) -> Verdict: ...

    def score(self, tweet: str, reply: str, reference: str | None = None) -> Score: ...


def cache_key(judge: Judge, kind: str, *texts: str | None) -> str:
    """sha256 over the judge identity, the call kind and the exact texts in order."""
    payload = json.dumps(
        [judge.name, judge.model_id, judge.prompt_version, kind, *[t if t is not None else None for t in texts]],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
