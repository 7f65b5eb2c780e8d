"""Pairwise judging with position swap, single-reply scores, bounded concurrency and a verdict cache.

``judge_pairs`` asks the judge, for every item:

- ``compare(tweet, adapter, base)`` (the adapter as A) -> ``verdict_ab``;
- ``compare(tweet, base, adapter)`` (the adapter as B) -> ``verdict_ba``;
- ``score(tweet, base)`` and ``score(tweet, adapter)`` (1-10, G-Eval style).

Outcome for the adapter: each order gives win/tie/loss from the adapter's side; when both orders
agree that is the outcome, otherwise (a split verdict, e.g. win + loss or win + tie) it is a
``tie``. ``position_flip`` is True when the two orders disagree. If either order is invalid the
outcome is ``invalid`` (excluded from the statistics and counted).

"base" and "adapter" are just the two candidates: to compare two adapters, pass the older one's
replies as ``base_reply``.

Cache: ``DuckDBVerdictCache`` keys each call by sha256(judge name, model id, prompt version, call
kind, tweet, the texts in the order sent, reference): a re-run never pays twice. Only valid
answers are cached (an API failure is retried next time). Hits are read in one query before
judging; each item's new answers are written in one transaction when the item is done.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from replyassets.core import db
from replyassets.judges.base import Judge, JudgeError, Score, Verdict, cache_key

CACHE_TABLE = "judge_cache"

ITEM_COLUMNS = [
    "item_id", "tweet", "base_reply", "adapter_reply", "reference",
    "verdict_ab", "verdict_ba", "outcome", "position_flip",
    "base_score", "adapter_score", "base_len", "adapter_len",
    "reason_ab", "reason_ba", "valid", "error",
    "input_tokens", "output_tokens", "tokens", "cost_usd", "cached_calls", "api_calls",
    "judge_name", "judge_model", "prompt_version", "judge_offline",
]


class JudgingFailed(RuntimeError):
    """Too many items could not be judged (e.g. the API stayed down): the result would mislead."""


class DuckDBVerdictCache:
    """Verdict/score cache in the table ``judge_cache`` of the project's storage (a DuckDB file
    or the DuckLake, ``replyassets/core/db.py``). Short-lived connections, parameterized SQL.

    Connections are opened per call and closed at once (never across a call to the judge), so
    the Dagster IO manager and other processes use the storage between calls; a write replaces
    its keys' rows in one transaction.
    """

    def __init__(self, database_path: db.Storage | str | Path | None = None, *,
                 lock_timeout_s: float | None = None) -> None:
        self.storage = db.as_storage(database_path)
        self.database_path = str(self.storage.database) if self.storage.database else self.storage.describe()
        self.lock_timeout_s = lock_timeout_s
        db.transaction(
            lambda c: c.execute(db.create_table_sql(
                self.storage, CACHE_TABLE,
                ["key VARCHAR NOT NULL", "kind VARCHAR", "judge_name VARCHAR", "judge_model VARCHAR",
                 "prompt_version VARCHAR", "payload VARCHAR", "created_at TIMESTAMP"],
                primary_key=("key",),
            )),
            self.storage, timeout_s=lock_timeout_s, purpose="judge cache",
        )

    def _with_conn(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        with db.connect(self.storage, timeout_s=self.lock_timeout_s, purpose="judge cache") as con:
            return fn(con)

    def get(self, key: str) -> str | None:
        row = self._with_conn(lambda c: c.execute(f"SELECT any_value(payload) FROM {CACHE_TABLE} WHERE key = ?", [key]).fetchone())
        return row[0] if row else None

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """All cached payloads among ``keys``, in one connection (a re-run's prefetch)."""
        if not keys:
            return {}
        rows = self._with_conn(
            lambda c: c.execute(f"SELECT key, payload FROM {CACHE_TABLE} WHERE list_contains(?, key)", [list(keys)]).fetchall()
        )
        return dict(rows)

    def put(self, key: str, kind: str, judge: Judge, payload: str) -> None:
        self.put_many([(key, kind, payload)], judge)

    def put_many(self, entries: list[tuple[str, str, str]], judge: Judge) -> None:
        """Insert (key, kind, payload) rows in one connection and one transaction."""
        if not entries:
            return
        # one row per key (the last wins): an item may ask the same question twice
        rows = list({k: [k, kind, judge.name, judge.model_id, judge.prompt_version, payload]
                     for k, kind, payload in entries}.values())

        def write(c: duckdb.DuckDBPyConnection) -> None:
            c.execute(f"DELETE FROM {CACHE_TABLE} WHERE list_contains(?, key)", [[r[0] for r in rows]])
            c.executemany(f"INSERT INTO {CACHE_TABLE} VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP)", rows)

        db.transaction(write, self.storage, timeout_s=self.lock_timeout_s, purpose="judge cache")

    def count(self) -> int:
        return int(self._with_conn(lambda c: c.execute(f"SELECT count(DISTINCT key) FROM {CACHE_TABLE}").fetchone()[0]))


def _cached_compare(judge: Judge, cache: DuckDBVerdictCache | None, tweet: str, a: str, b: str,
                    ref: str | None, pre: dict[str, str] | None = None,
                    pending: list[tuple[str, str, str]] | None = None) -> Verdict:
    key = cache_key(judge, "compare", tweet, a, b, ref)
    if cache is not None:
        hit = pre[key] if pre is not None and key in pre else (None if pre is not None else cache.get(key))
        if hit is not None:
            v = Verdict.from_json(hit)
            return Verdict(**{**v.__dict__, "cached": True})
    v = judge.compare(tweet, a, b, reference=ref)
    if cache is not None and v.valid:
        if pending is not None:
            pending.append((key, "compare", v.to_json()))
        else:
            cache.put(key, "compare", judge, v.to_json())
    return v


def _cached_score(judge: Judge, cache: DuckDBVerdictCache | None, tweet: str, reply: str, ref: str | None,
                  pre: dict[str, str] | None = None, pending: list[tuple[str, str, str]] | None = None) -> Score:
    key = cache_key(judge, "score", tweet, reply, ref)
    if cache is not None:
        hit = pre[key] if pre is not None and key in pre else (None if pre is not None else cache.get(key))
        if hit is not None:
            s = Score.from_json(hit)
            return Score(**{**s.__dict__, "cached": True})
    s = judge.score(tweet, reply, reference=ref)
    if cache is not None and s.valid:
        if pending is not None:
            pending.append((key, "score", s.to_json()))
        else:
            cache.put(key, "score", judge, s.to_json())
    return s


_SIDE = {("ab", "A"): "win", ("ab", "B"): "loss", ("ba", "B"): "win", ("ba", "A"): "loss"}


def adapter_side(order: str, winner: str | None) -> str | None:
    """win/tie/loss for the adapter given the order ('ab' = adapter shown as A) and the winner letter."""
    if winner is None:
        return None
    if winner == "tie":
        return "tie"
    return _SIDE[(order, winner)]


def combine(ab: str | None, ba: str | None) -> tuple[str, bool]:
    """(outcome, position_flip) from the two adapter-side results; a split verdict is a tie."""
    if ab is None or ba is None:
        return "invalid", False
    if ab == ba:
        return ab, False
    return "tie", True


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def _fields(item: dict[str, Any]) -> tuple[str, str, str, str | None]:
    return (_text(item.get("tweet")), _text(item.get("base_reply")), _text(item.get("adapter_reply")),
            _text(item.get("reference")) or None)


def _item_keys(judge: Judge, item: dict[str, Any]) -> list[str]:
    tweet, base, adapter, ref = _fields(item)
    return [cache_key(judge, "compare", tweet, adapter, base, ref), cache_key(judge, "compare", tweet, base, adapter, ref),
            cache_key(judge, "score", tweet, base, ref), cache_key(judge, "score", tweet, adapter, ref)]


def judge_item(judge: Judge, item: dict[str, Any], cache: DuckDBVerdictCache | None = None,
               prefetched: dict[str, str] | None = None) -> dict[str, Any]:
    """One row of ``judge_pairs`` (both orders + both scores). ``prefetched``: cache hits already read."""
    tweet, base, adapter, ref = _fields(item)
    pre = prefetched
    pending: list[tuple[str, str, str]] = []
    try:
        v_ab = _cached_compare(judge, cache, tweet, adapter, base, ref, pre, pending)
        v_ba = _cached_compare(judge, cache, tweet, base, adapter, ref, pre, pending)
        s_base = _cached_score(judge, cache, tweet, base, ref, pre, pending)
        s_adapter = _cached_score(judge, cache, tweet, adapter, ref, pre, pending)
    finally:  # what was paid for is kept, even when a later call of the item raises
        if cache is not None and pending:
            cache.put_many(pending, judge)
    ab = adapter_side("ab", v_ab.winner) if v_ab.valid else None
    ba = adapter_side("ba", v_ba.winner) if v_ba.valid else None
    outcome, flip = combine(ab, ba)
    calls = (v_ab, v_ba, s_base, s_adapter)
    errors = [f"{n}:{c.error}" for n, c in zip(("ab", "ba", "base_score", "adapter_score"), calls) if not c.valid]
    tin = sum(c.input_tokens for c in calls if not c.cached)
    tout = sum(c.output_tokens for c in calls if not c.cached)
    # Cost actually paid now: cached calls cost nothing; an unknown price makes the total NaN.
    cost = float(sum(float(c.cost_usd or 0.0) for c in calls if not c.cached))
    return {
        "item_id": str(item.get("item_id")),
        "tweet": tweet,
        "base_reply": base,
        "adapter_reply": adapter,
        "reference": ref or "",
        "verdict_ab": v_ab.winner if v_ab.valid else "invalid",
        "verdict_ba": v_ba.winner if v_ba.valid else "invalid",
        "outcome": outcome,
        "position_flip": bool(flip),
        "base_score": s_base.value if s_base.valid else float("nan"),
        "adapter_score": s_adapter.value if s_adapter.valid else float("nan"),
        "base_len": len(base),
        "adapter_len": len(adapter),
        "reason_ab": v_ab.reason,
        "reason_ba": v_ba.reason,
        "valid": outcome != "invalid",
        "error": "; ".join(errors),
        "input_tokens": tin,
        "output_tokens": tout,
        "tokens": tin + tout,
        "cost_usd": cost,
        "cached_calls": sum(1 for c in calls if c.cached),
        "api_calls": 0 if getattr(judge, "offline", False) else sum(1 for c in calls if not c.cached),
        "judge_name": judge.name,
        "judge_model": judge.model_id,
        "prompt_version": judge.prompt_version,
        "judge_offline": bool(getattr(judge, "offline", False)),
    }


def judge_pairs(
    judge: Judge,
    items: Iterable[dict[str, Any]],
    cache: DuckDBVerdictCache | None = None,
    concurrency: int = 4,
    *,
    max_error_fraction: float = 0.5,
) -> pd.DataFrame:
    """Judge every item in both orders and score both replies; one row per item (``ITEM_COLUMNS``).

    ``items``: dicts with ``item_id``, ``tweet``, ``base_reply``, ``adapter_reply`` and optionally
    ``reference`` (the real reply). Rows come back in input order. Raises ``ValueError`` on
    duplicate or missing ``item_id``; ``JudgeError`` when the judge cannot work at all (bad key,
    unknown model); ``JudgingFailed`` when more than ``max_error_fraction`` of the items got an
    API error after all retries (the API is down: the statistics would mislead).
    """
    items = list(items)
    ids = [item.get("item_id") for item in items]
    if any(i is None or str(i) == "" for i in ids):
        raise ValueError("every item needs an item_id")
    if len(set(map(str, ids))) != len(ids):
        raise ValueError("item_id values must be unique")
    if not items:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in ITEM_COLUMNS})
    prefetched = cache.get_many([k for it in items for k in _item_keys(judge, it)]) if cache is not None else None
    workers = max(1, min(int(concurrency), len(items)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="judge") as pool:
        rows = list(pool.map(lambda it: judge_item(judge, it, cache, prefetched), items))
    df = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    # transport faults (retries exhausted, or an HTTP body that is not a Messages API reply),
    # as opposed to a model answer that broke the verdict contract
    api_failed = int(df["error"].str.contains("api_error|malformed_response", regex=True).sum())
    if len(df) and api_failed / len(df) > max_error_fraction:
        raise JudgingFailed(
            f"{api_failed} of {len(df)} items failed with API errors after retries "
            f"(limit {max_error_fraction:.0%}); valid verdicts are cached, re-run when the API is back"
        )
    return df


__all__ = [
    "ITEM_COLUMNS", "DuckDBVerdictCache", "JudgeError", "JudgingFailed",
    "adapter_side", "combine", "judge_item", "judge_pairs",
]
