"""A reward model learned from engagement: a Bradley-Terry model over preference pairs (no Dagster).

Readers of one tweet preferred the chosen reply of a pair to the rejected one (``core.preference``
builds the pairs from likes, with the exposure and noise rules). The model gives every
(tweet, reply) a reward ``r = w . f(tweet, reply)`` and says

    P(chosen preferred to rejected) = sigmoid(r(chosen) - r(rejected)),

the Bradley-Terry model. ``f`` is built from frozen sentence embeddings (all-MiniLM-L6-v2, the
vectors dedup already computes; L2-normalized) and a few surface features:

- ``embedding``: the reply's vector and its element-wise product with the tweet's vector (what
  the reply says, and what it says about this tweet);
- ``surface``: the tweet-reply cosine, log characters, log words, question marks, exclamation
  marks, mentions, links, digits, the share of upper-case letters.

Since a pair's tweet is shared, ``f(chosen) - f(rejected)`` cancels whatever depends on the tweet
alone. Fitting is an L2-penalised logistic regression without intercept on those differences,
each pair shown in both orders (labels 1 and 0), so the model has no position bias. Features are
standardised by the training replies' spread (``scale``) before the penalty applies.

Validation is on the test split's pairs only: a pair counts 1 when the model ranks the chosen
reply above the rejected one by more than ``tie_margin``, 0.5 for a tie, 0 otherwise; the
agreement is the mean over tweets of their pairs' mean, with a tweet-clustered percentile
bootstrap interval (``core.stats.cluster_bootstrap_ci``).

A model never judges a tweet it was trained on: it keeps the ids and the text hashes of its
training tweets, training refuses a test split that shares a tweet id with the train split and
leaves out the training pairs whose tweet has the text of a held-out tweet (a repost under
another id), and :meth:`RewardModel.refuse_trained` raises :class:`TrainedTweetError` for any of
them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from replyassets.core.frame_hash import frame_hash

Encode = Callable[[Sequence[str]], np.ndarray]

FEATURE_SETS = ("embedding+surface", "embedding", "surface")
SURFACE_FEATURES = ("cosine", "log_chars", "log_words", "questions", "exclamations", "mentions",
                    "links", "digits", "upper_share")
TRAINING_COLUMNS = ["pair_id", "tweet_id", "tweet", "chosen", "rejected"]
FORMAT = "replyassets-reward-model-v1"

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")


class RewardModelError(ValueError):
    """The reward model cannot be trained or loaded as asked."""


class TrainedTweetError(RewardModelError):
    """A tweet the reward model was trained on was given to it to judge."""


def tweet_key(text: str) -> str:
    """sha256 of a tweet's text with case and spacing ignored: how a judge that sees only text
    recognises a training tweet."""
    return hashlib.sha256(" ".join(str(text).casefold().split()).encode("utf-8", "surrogatepass")).hexdigest()


def surface_features(tweet: str, reply: str) -> np.ndarray:
    """The surface features of one reply (``SURFACE_FEATURES`` without the cosine, which needs
    the embeddings)."""
    text = str(reply)
    letters = [c for c in text if c.isalpha()]
    return np.array([
        math.log1p(len(text)),
        math.log1p(len(text.split())),
        float(text.count("?")),
        float(text.count("!")),
        float(len(_MENTION.findall(text))),
        float(len(_URL.findall(text))),
        float(sum(c.isdigit() for c in text)),
        (sum(c.isupper() for c in letters) / len(letters)) if letters else 0.0,
    ], dtype="float64")


def features(tweet_vecs: np.ndarray, reply_vecs: np.ndarray, tweets: Sequence[str], replies: Sequence[str],
             feature_set: str) -> np.ndarray:
    """``f(tweet, reply)`` for aligned rows (see the module docstring), unscaled."""
    if feature_set not in FEATURE_SETS:
        raise RewardModelError(f"reward_model.features must be one of {FEATURE_SETS}, got {feature_set!r}")
    t = np.asarray(tweet_vecs, dtype="float64")
    r = np.asarray(reply_vecs, dtype="float64")
    if t.shape != r.shape or len(t) != len(replies) or len(tweets) != len(replies):
        raise RewardModelError(f"misaligned features: tweets {t.shape}, replies {r.shape}, {len(replies)} texts")
    blocks = []
    if feature_set in ("embedding+surface", "embedding"):
        blocks += [r, t * r]
    if feature_set in ("embedding+surface", "surface"):
        cos = np.sum(t * r, axis=1, keepdims=True)
        surf = np.stack([surface_features(tw, rp) for tw, rp in zip(tweets, replies, strict=True)]) if len(replies) \
            else np.zeros((0, len(SURFACE_FEATURES) - 1))
        blocks += [cos, surf]
    return np.hstack(blocks) if len(replies) else np.zeros((0, sum(b.shape[1] for b in blocks)))


def training_set_hash(pairs: pd.DataFrame) -> str:
    """Content hash of the training pairs (ids and texts), recorded by every report that judges
    with the model."""
    return frame_hash(pairs[TRAINING_COLUMNS].astype(str), TRAINING_COLUMNS)


@dataclass(frozen=True)
class RewardModel:
    """A fitted Bradley-Terry reward model: small, plain, JSON-serialisable."""

    feature_set: str
    embedding_model: str
    weights: tuple[float, ...]
    scale: tuple[float, ...]
    regularization: float
    tie_margin: float
    training_set_hash: str
    training_pairs: int
    training_tweet_ids: tuple[str, ...]
    training_tweet_keys: tuple[str, ...]
    # the training replies' rewards (mean, standard deviation): a score's anchor
    reward_mean: float = 0.0
    reward_std: float = 1.0
    format: str = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ scoring

    def rewards(self, encode: Encode, tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        """``r(tweet, reply)`` per aligned row. Raises :class:`TrainedTweetError` for a tweet it
        was trained on."""
        tweets, replies = [str(t) for t in tweets], [str(r) for r in replies]
        self.refuse_trained(tweets=tweets)
        if not replies:
            return np.zeros(0)
        vecs = _encode_unique(encode, tweets + replies)
        f = features(vecs[: len(tweets)], vecs[len(tweets):], tweets, replies, self.feature_set)
        return (f / np.asarray(self.scale)) @ np.asarray(self.weights)

    def standardized(self, rewards: np.ndarray) -> np.ndarray:
        """Rewards in standard deviations of the training replies' rewards from their mean."""
        return (np.asarray(rewards, dtype="float64") - self.reward_mean) / self.reward_std

    def refuse_trained(self, *, tweet_ids: Iterable[str] = (), tweets: Iterable[str] = ()) -> None:
        """Raise :class:`TrainedTweetError` naming how many of ``tweet_ids`` / ``tweets`` (texts)
        the model was trained on."""
        ids = set(self.training_tweet_ids) & {str(t) for t in tweet_ids}
        keys = set(self.training_tweet_keys)
        texts = [t for t in tweets if tweet_key(t) in keys]
        if ids or texts:
            example = sorted(ids)[:3] or [texts[0][:60]]
            raise TrainedTweetError(
                f"the reward model (training set {self.training_set_hash[:12]}) was trained on "
                f"{len(ids) + len(texts)} of the tweets it was asked to judge (e.g. {example}): "
                "it judges held-out tweets only")

    # ------------------------------------------------------------------ artifact

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> RewardModel:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise RewardModelError(f"reward model artifact is not JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise RewardModelError(f"reward model artifact is not a {FORMAT} model")
        tuples = ("weights", "scale", "training_tweet_ids", "training_tweet_keys")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in raw.items()})


def _encode_unique(encode: Encode, texts: list[str]) -> np.ndarray:
    """Encode each distinct text once."""
    uniq = list(dict.fromkeys(texts))
    vecs = np.asarray(encode(uniq), dtype="float64")
    if vecs.shape[0] != len(uniq):
        raise RewardModelError(f"the encoder returned {vecs.shape[0]} vectors for {len(uniq)} texts")
    index = {t: i for i, t in enumerate(uniq)}
    return vecs[[index[t] for t in texts]]


def _pair_features(encode: Encode, pairs: pd.DataFrame, feature_set: str) -> tuple[np.ndarray, np.ndarray]:
    tweets = pairs["tweet"].astype(str).tolist()
    chosen, rejected = pairs["chosen"].astype(str).tolist(), pairs["rejected"].astype(str).tolist()
    vecs = _encode_unique(encode, tweets + chosen + rejected)
    n = len(tweets)
    t, c, r = vecs[:n], vecs[n: 2 * n], vecs[2 * n:]
    return features(t, c, tweets, chosen, feature_set), features(t, r, tweets, rejected, feature_set)


def fit(pairs: pd.DataFrame, encode: Encode, *, embedding_model: str, feature_set: str = "embedding+surface",
        regularization: float = 1.0, tie_margin: float = 0.0, held_out: pd.DataFrame | None = None,
        held_out_tweets: Iterable[str] = ()) -> RewardModel:
    """Fit the Bradley-Terry model on ``pairs`` (the train split of ``preference_pairs``).

    ``held_out``: the pairs it will be validated on; a tweet id in both raises
    :class:`RewardModelError` (the model must never be checked on, or judge, what it learned from).
    ``held_out_tweets``: texts of the tweets it may judge (the test split); a training pair whose
    tweet has the same text as one of them or of ``held_out`` (another id, the same words: a
    repost) is left out of training and counted in ``extra["left_out_shared_text"]``.
    """
    from sklearn.linear_model import LogisticRegression

    missing = [c for c in TRAINING_COLUMNS if c not in pairs.columns]
    if missing:
        raise RewardModelError(f"reward model training pairs need columns {missing}")
    if len(pairs) < 2:
        raise RewardModelError(f"reward model: {len(pairs)} training pair(s); at least 2 are needed")
    if not regularization > 0:
        raise RewardModelError(f"reward_model.regularization must be > 0, got {regularization}")
    train_ids = set(pairs["tweet_id"].astype(str))
    if held_out is not None and len(held_out):
        shared = train_ids & set(held_out["tweet_id"].astype(str))
        if shared:
            raise RewardModelError(f"{len(shared)} tweet(s) are in both the training and the held-out pairs "
                                   f"(e.g. {sorted(shared)[:3]}): splits must hold whole tweets")
    judged = {tweet_key(t) for t in held_out_tweets}
    if held_out is not None and len(held_out):
        judged |= {tweet_key(t) for t in held_out["tweet"].astype(str)}
    shared = pairs["tweet"].astype(str).map(tweet_key).isin(judged)
    pairs = pairs[~shared]
    if len(pairs) < 2:
        raise RewardModelError(f"reward model: {len(pairs)} training pair(s) once {int(shared.sum())} whose tweet "
                               "text is also a held-out tweet's are left out; at least 2 are needed")
    train_ids = set(pairs["tweet_id"].astype(str))
    fc, fr = _pair_features(encode, pairs, feature_set)
    spread = np.vstack([fc, fr]).std(axis=0)
    scale = np.where(spread > 1e-9, spread, 1.0)
    d = (fc - fr) / scale
    x = np.vstack([d, -d])
    y = np.r_[np.ones(len(d)), np.zeros(len(d))]
    clf = LogisticRegression(C=float(regularization), fit_intercept=False, max_iter=5000)
    clf.fit(x, y)
    train_rewards = (np.vstack([fc, fr]) / scale) @ clf.coef_[0]
    return RewardModel(
        feature_set=feature_set, embedding_model=str(embedding_model),
        weights=tuple(float(w) for w in clf.coef_[0]), scale=tuple(float(s) for s in scale),
        regularization=float(regularization), tie_margin=float(tie_margin),
        training_set_hash=training_set_hash(pairs), training_pairs=int(len(pairs)),
        training_tweet_ids=tuple(sorted(train_ids)),
        training_tweet_keys=tuple(sorted({tweet_key(t) for t in pairs["tweet"].astype(str)})),
        reward_mean=float(train_rewards.mean()), reward_std=float(train_rewards.std()) or 1.0,
        extra={"left_out_shared_text": int(shared.sum())},
    )


def pair_credit(margin: np.ndarray, tie_margin: float) -> np.ndarray:
    """1 when the chosen reply's reward exceeds the rejected one's by more than ``tie_margin``,
    0.5 within it, 0 otherwise."""
    margin = np.asarray(margin, dtype="float64")
    return np.where(margin > tie_margin, 1.0, np.where(margin < -tie_margin, 0.0, 0.5))


def validate(model: RewardModel, pairs: pd.DataFrame, encode: Encode, *, resamples: int, seed: int,
             confidence: float = 0.95) -> dict[str, Any]:
    """Agreement with likes on held-out ``pairs`` (the test split): the mean over tweets of the
    per-pair credit, with a tweet-clustered bootstrap interval. Refuses training tweets."""
    from replyassets.core.stats import cluster_bootstrap_ci

    out: dict[str, Any] = {"agreement": None, "ci_low": None, "ci_high": None, "pairs": int(len(pairs)),
                           "tweets": int(pairs["tweet_id"].nunique()) if len(pairs) else 0,
                           "agree": 0, "ties": 0, "disagree": 0, "confidence": confidence}
    if pairs.empty:
        return out
    model.refuse_trained(tweet_ids=pairs["tweet_id"].astype(str))
    margin = (model.rewards(encode, pairs["tweet"].tolist(), pairs["chosen"].tolist())
              - model.rewards(encode, pairs["tweet"].tolist(), pairs["rejected"].tolist()))
    credit = pair_credit(margin, model.tie_margin)
    tweet_ids = pairs["tweet_id"].astype(str).to_numpy()
    per_tweet = pd.Series(credit).groupby(tweet_ids, sort=False).mean()
    lo, hi = cluster_bootstrap_ci(credit, tweet_ids, resamples=resamples, seed=seed, confidence=confidence)
    out.update(agreement=float(per_tweet.mean()), ci_low=lo, ci_high=hi,
               agree=int((credit == 1).sum()), ties=int((credit == 0.5).sum()), disagree=int((credit == 0).sum()))
    return out


def select_judge(judges: Sequence[str], validation: dict[str, Any] | None, min_low: float) -> tuple[str, str]:
    """The judge that decides, and why: the first of ``judges`` (``evaluation.judges``, in order
    of preference) that qualifies. ``reward_model`` qualifies when the lower end of its held-out
    interval is above ``min_low``; the others always do."""
    reasons = []
    for name in judges:
        if name != "reward_model":
            why = f"{name}: first qualifying judge of evaluation.judges {list(judges)}"
            return name, "; ".join([*reasons, why])
        v = validation or {}
        low = v.get("ci_low")
        desc = (f"held-out agreement with likes {_fmt(v.get('agreement'))} [{_fmt(low)}, {_fmt(v.get('ci_high'))}] "
                f"on {v.get('tweets', 0)} test tweets / {v.get('pairs', 0)} pairs")
        if low is not None and low > min_low:
            return name, "; ".join([*reasons, f"reward_model: {desc}, lower end above {min_low}"])
        reasons.append(f"reward_model not used: {desc}, lower end not above {min_low} "
                       "(reward_model.min_agreement_low)")
    raise RewardModelError(f"evaluation.judges {list(judges)}: no judge qualifies ({'; '.join(reasons)})")


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.3f}"
