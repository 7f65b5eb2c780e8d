"""RewardModelJudge: the judge learned from engagement (``core.reward_model``), behind the judge
interface. No LLM, no network: the sentence embeddings and a logistic head.

- ``compare``: the reply with the higher reward wins; a reward difference of at most the model's
  ``tie_margin`` is a tie. It reads content only, so swapping A and B swaps the answer.
- ``score``: ``1 + 9 * sigmoid(z)``, in [1, 10], where ``z`` is the reward in standard deviations
  of the training replies' rewards from their mean.
- ``reference`` is ignored (the model learned from likes, not from a reference reply).

It refuses a tweet it was trained on: :class:`~replyassets.core.reward_model.TrainedTweetError`
(a ``JudgeError``: the evaluation fails loudly rather than judge what the model learned from).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from replyassets.core.reward_model import Encode, RewardModel, TrainedTweetError
from replyassets.judges.base import JudgeError, Score, Verdict


class RewardModelTrainedTweet(JudgeError):
    """The judge was asked about a tweet its reward model trained on."""


class RewardModelJudge:
    offline = True  # calls no LLM

    def __init__(self, model: RewardModel, encode: Encode) -> None:
        self.model = model
        self._encode = encode
        self._memo: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.name = "reward-model"
        self.model_id = f"reward-model:{model.sha256[:16]}"
        self.prompt_version = f"bt-v1:{model.feature_set}:tie={model.tie_margin}:train={model.training_set_hash[:16]}"

    def prepare(self, texts: Iterable[str]) -> None:
        """Embed ``texts`` in one batch ahead of the calls (each call then only looks them up)."""
        self._vectors([str(t) for t in texts])

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
            if todo:
                for t, v in zip(todo, np.asarray(self._encode(todo)), strict=True):
                    self._memo[t] = v
            return np.stack([self._memo[t] for t in texts]) if texts else np.zeros((0, 0))

    def _reward(self, tweet: str, replies: list[str]) -> list[float]:
        try:
            return [float(r) for r in self.model.rewards(self._vectors, [tweet] * len(replies), replies)]
        except TrainedTweetError as exc:
            raise RewardModelTrainedTweet(str(exc)) from exc

    def compare(self, tweet: str, reply_a: str, reply_b: str, reference: str | None = None) -> Verdict:
        ra, rb = self._reward(tweet, [reply_a or "", reply_b or ""])
        diff = ra - rb
        margin = self.model.tie_margin
        winner = "tie" if abs(diff) <= margin else ("A" if diff > 0 else "B")
        return Verdict(winner=winner, reason=f"reward model: A {ra:.4f} vs B {rb:.4f}; tie margin {margin}")

    def score(self, tweet: str, reply: str, reference: str | None = None) -> Score:
        (r,) = self._reward(tweet, [reply or ""])
        z = float(self.model.standardized(np.array([r]))[0])
        value = round(1.0 + 9.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), 2)
        return Score(value=value, reason=f"reward model: reward {r:.4f} ({z:+.2f} sd)")
