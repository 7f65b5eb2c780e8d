"""frame_hash, the data version of the tables: the same content gives the same hash in any process
and any row or column order; any real change gives another hash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replyassets.core.frame_hash import frame_hash


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "reply_id": ["r1", "r2", "r3"],
        "text": ["first reply", "second reply", None],
        "likes": pd.array([10, 20, 30], dtype="int64"),
        "score": [0.123456789012345, 0.5, float("nan")],
        "kept": [True, False, True],
    })


def test_floats_beyond_ten_significant_digits_do_not_count(frame):
    noisy = frame.copy()
    noisy["score"] = [0.123456789031, 0.5000000000004, float("nan")]   # equal to 10 significant digits
    assert frame_hash(noisy) == frame_hash(frame)
    neg_zero, zero = frame.copy(), frame.copy()
    neg_zero.loc[1, "score"], zero.loc[1, "score"] = -0.0, 0.0
    assert frame_hash(neg_zero) == frame_hash(zero)


@pytest.mark.parametrize("change", [
    lambda f: f.assign(score=[0.1234567891, 0.5, float("nan")]),            # the 10th significant digit
    lambda f: f.assign(score=[0.123456789012345, 0.5, 0.0]),                # NaN -> a number
    lambda f: f.assign(text=["first reply", "second reply!", None]),
    lambda f: f.assign(text=["first reply", "second reply", ""]),           # None -> an empty string
    lambda f: f.assign(likes=[10, 20, 31]),
    lambda f: f.assign(kept=[True, True, True]),
    lambda f: f.iloc[:2],                                                   # a row less
    lambda f: pd.concat([f, f.iloc[[0]]]),                                  # a row twice: a multiset
    lambda f: f.drop(columns=["kept"]),                                     # a column less
    lambda f: f.rename(columns={"likes": "like_count"}),
    lambda f: f.assign(text=["first reply", "second reply", None], reply_id=["r2", "r1", "r3"]),  # values moved between rows
], ids=["10th-digit", "nan", "text", "none-vs-empty", "int", "bool", "row-less", "row-twice", "column-less",
        "column-renamed", "values-between-rows"])
def test_a_real_change_changes_the_hash(frame, change):
    assert frame_hash(change(frame.copy())) != frame_hash(frame)


def test_row_order_column_order_and_index_do_not_count(frame):
    shuffled = frame.sample(frac=1, random_state=3)
    assert list(shuffled["reply_id"]) != list(frame["reply_id"])
    assert frame_hash(shuffled) == frame_hash(frame)
    assert frame_hash(frame[list(reversed(frame.columns))]) == frame_hash(frame)
    assert frame_hash(frame.set_axis([7, 8, 9])) == frame_hash(frame)


def test_named_columns_only_and_empty_frames(frame):
    cols = ["reply_id", "text"]
    assert frame_hash(frame.assign(likes=[1, 2, 3]), cols) == frame_hash(frame, cols)
    assert frame_hash(frame, cols) != frame_hash(frame)
    assert frame_hash(frame, ["text", "reply_id"]) == frame_hash(frame, cols)
    empty = frame.iloc[:0]
    assert frame_hash(empty) == frame_hash(empty[list(reversed(frame.columns))])     # the columns only
    assert frame_hash(empty) != frame_hash(empty.drop(columns=["kept"])) != frame_hash(frame)
    assert frame_hash(frame.astype({"score": np.float32}).astype({"score": np.float64})) != frame_hash(frame)  # float32 loses digits
