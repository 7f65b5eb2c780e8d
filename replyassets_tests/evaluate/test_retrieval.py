"""The retrieval baseline picks the nearest training tweet's reply."""

from __future__ import annotations

import math

import numpy as np
import pytest

from replyassets.core.retrieval import CHUNK, nearest_replies

TRAIN = np.array([
    [1.0, 0.0, 0.0],   # 0: "x"
    [0.0, 2.0, 0.0],   # 1: "y" (unnormalized)
    [0.0, 0.0, 5.0],   # 2: "z"
    [3.0, 3.0, 0.0],   # 3: between x and y
])
REPLIES = ["reply x", "reply y", "reply z", "reply xy"]


def test_picks_the_nearest_training_tweet():
    queries = np.array([
        [10.0, 0.5, 0.0],   # nearly x: cos with x = 10/sqrt(100.25), with xy = 10.5/(sqrt(100.25) sqrt(2))
        [0.0, 0.1, 0.0],    # y direction, tiny norm: cosine ignores length
        [1.0, 1.2, 0.0],    # near the diagonal, a bit more y: xy wins
        [0.0, -1.0, 0.1],   # opposite of y, a little z: z is the best (cos 0.0995), not y (-0.995)
    ])
    replies, sims = nearest_replies(queries, TRAIN, REPLIES)
    assert replies == ["reply x", "reply y", "reply xy", "reply z"]
    assert sims[0] == pytest.approx(10 / math.sqrt(100.25))
    assert sims[1] == pytest.approx(1.0)
    assert sims[2] == pytest.approx(2.2 / (math.sqrt(2.44) * math.sqrt(2)))
    assert sims[3] == pytest.approx(0.1 / math.sqrt(1.01))
    assert sims.dtype == np.float64 and sims.shape == (4,)


def test_ties_go_to_the_lowest_index():
    train = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [1.0, 0.0]])  # 1, 2, 3 point the same way
    replies, sims = nearest_replies(np.array([[5.0, 0.0]]), train, ["a", "b", "c", "d"])
    assert replies == ["b"] and sims[0] == pytest.approx(1.0)
    # equidistant from two different directions: the lower index wins, whatever the order
    replies, _ = nearest_replies(np.array([[1.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), ["first", "second"])
    assert replies == ["first"]
    replies, _ = nearest_replies(np.array([[1.0, 1.0]]), np.array([[0.0, 3.0], [7.0, 0.0]]), ["first", "second"])
    assert replies == ["first"]


def test_matches_brute_force_on_random_vectors():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 8))
    query = rng.normal(size=(CHUNK + 7, 8)) * rng.uniform(0.1, 10, (CHUNK + 7, 1))  # more than a chunk
    replies, sims = nearest_replies(query, train, [f"r{i}" for i in range(50)])
    cos = (query / np.linalg.norm(query, axis=1, keepdims=True)) @ (train / np.linalg.norm(train, axis=1, keepdims=True)).T
    assert replies == [f"r{i}" for i in cos.argmax(axis=1)]
    assert np.allclose(sims, cos.max(axis=1))


def test_edge_cases_and_errors():
    replies, sims = nearest_replies(np.zeros((0, 3)), TRAIN, REPLIES)
    assert replies == [] and sims.shape == (0,)
    # a zero query vector is similar to nothing: similarity 0, first training tweet
    replies, sims = nearest_replies(np.zeros((1, 3)), TRAIN, REPLIES)
    assert replies == ["reply x"] and sims[0] == 0.0
    with pytest.raises(ValueError, match="training set is empty"):
        nearest_replies(np.ones((2, 3)), np.zeros((0, 3)), [])
    with pytest.raises(ValueError, match="rows but train_replies"):
        nearest_replies(np.ones((1, 3)), TRAIN, REPLIES[:2])
    with pytest.raises(ValueError, match="dimension"):
        nearest_replies(np.ones((1, 4)), TRAIN, REPLIES)
    with pytest.raises(ValueError, match="2-d"):
        nearest_replies(np.ones(3), TRAIN, REPLIES)
    with pytest.raises(ValueError, match="NaN"):
        nearest_replies(np.array([[np.nan, 0.0, 0.0]]), TRAIN, REPLIES)
