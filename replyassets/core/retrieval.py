"""The retrieval baseline: answer a test tweet with the real reply of its nearest training tweet.

A fine-tuned adapter is only worth serving if it writes better replies than copying the reply
to the most similar tweet it was trained on (``promotion_gate`` in core/stats.py requires it).
:func:`nearest_replies` is that baseline, given tweet embeddings (e.g. the packaged
all-MiniLM-L6-v2 of ``scorers/embeddings.py``): cosine similarity, the highest wins, ties go to
the lowest training index. Pure numpy, no model and no Dagster here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Similarities this close to the best count as a tie (rounding in the normalization must not
# decide between two training tweets that point the same way).
TIE_TOLERANCE = 1e-12
# Queries compared at once (bounds the similarity matrix to CHUNK x n_train floats).
CHUNK = 1024


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; a zero row stays zero (similarity 0 with everything)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _matrix(x: object, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-d array (one row per tweet), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return arr


def nearest_replies(query_vecs: np.ndarray, train_vecs: np.ndarray,
                    train_replies: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """For each query (test tweet) vector: the reply of the training tweet with the highest cosine
    similarity, and that similarity.

    ``query_vecs``: (n_query, dim); ``train_vecs``: (n_train, dim), aligned with ``train_replies``.
    Vectors need not be normalized. Ties (within ``TIE_TOLERANCE``) go to the lowest training
    index; a zero vector has similarity 0 with everything. Returns ``(replies, similarities)``,
    ``similarities`` a float64 array of shape (n_query,). Raises ``ValueError`` on an empty
    training set, misaligned replies, mismatched dimensions or non-finite values.
    """
    train = _matrix(train_vecs, "train_vecs")
    replies = list(train_replies)
    if train.shape[0] == 0 or not replies:
        raise ValueError("the retrieval baseline needs at least one training tweet: the training set is empty")
    if len(replies) != train.shape[0]:
        raise ValueError(f"train_vecs has {train.shape[0]} rows but train_replies has {len(replies)} replies")
    query = _matrix(query_vecs, "query_vecs")
    if query.shape[1] != train.shape[1]:
        raise ValueError(f"query vectors have dimension {query.shape[1]}, training vectors {train.shape[1]}")
    train_unit = _unit_rows(train)
    best_idx = np.empty(query.shape[0], dtype=np.int64)
    best_sim = np.empty(query.shape[0], dtype=np.float64)
    for start in range(0, query.shape[0], CHUNK):
        sims = _unit_rows(query[start:start + CHUNK]) @ train_unit.T
        top = sims.max(axis=1, keepdims=True)
        # the first index within the tolerance of the best: ties -> lowest training index
        idx = np.argmax(sims >= top - TIE_TOLERANCE, axis=1)
        best_idx[start:start + CHUNK] = idx
        best_sim[start:start + CHUNK] = sims[np.arange(sims.shape[0]), idx]
    return [replies[i] for i in best_idx], np.clip(best_sim, -1.0, 1.0)


__all__ = ["nearest_replies"]
