"""Human raters: a blinded pairwise sheet, validated import of ratings, judge-human agreement.

Export (``export_sheet``): one CSV row per item with the tweet and the two replies as
``reply_1``/``reply_2``; which model is reply 1 and the row order are randomised with ``seed``.
Raters see no model names and no item ids: ``pair_id`` is an opaque hash. The key that maps
``pair_id`` to the item and the position of each model is written to a separate CSV (keep it
away from raters). Raters fill ``preferred`` with ``1``, ``2`` or ``tie`` and their ``rater_id``.

Import (``import_ratings``): every row is validated; bad rows are returned in a problems table
with a reason (``unknown_pair_id``, ``missing_rating``, ``invalid_preferred``,
``duplicate_rating``), never raised. A file without the needed columns raises ``ValueError``.

Agreement (``judge_human_agreement``): each human rating is compared with the judge's outcome
for the same item (win/tie/loss from the adapter's side): percent agreement and Cohen's kappa
(``(p_o - p_e) / (1 - p_e)``; None when ``p_e == 1``, i.e. both always gave the same label).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from replyassets.core.files import atomic_write

SHEET_COLUMNS = ["pair_id", "tweet", "reply_1", "reply_2", "preferred", "rater_id", "comment"]
KEY_COLUMNS = ["pair_id", "item_id", "reply_1_source", "reply_2_source", "seed"]
RATING_COLUMNS = ["pair_id", "item_id", "rater_id", "preferred", "human_outcome", "source_file", "row"]
PROBLEM_COLUMNS = ["source_file", "row", "pair_id", "reason"]
LABELS = ("win", "tie", "loss")


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, df.to_csv(index=False).encode("utf-8"))


def export_sheet(items: pd.DataFrame, out_dir: str | Path, seed: int = 42, name: str = "human_eval") -> dict[str, Any]:
    """Write ``<name>_sheet.csv`` (for raters) and ``<name>_key.csv`` (kept apart). Needs columns
    item_id, tweet, base_reply, adapter_reply. Returns {"sheet", "key", "n"}."""
    need = {"item_id", "tweet", "base_reply", "adapter_reply"}
    missing = need - set(items.columns)
    if missing:
        raise ValueError(f"export_sheet needs columns {sorted(missing)}")
    rng = np.random.default_rng(seed)
    df = items.reset_index(drop=True)
    order = rng.permutation(len(df))
    adapter_first = rng.random(len(df)) < 0.5
    sheet, key = [], []
    for pos in order:
        r = df.iloc[int(pos)]
        # The pair id covers the two texts: ratings apply to these exact generations only.
        pid = "p" + hashlib.sha256(
            f"{seed}:{r['item_id']}:{r['base_reply']}:{r['adapter_reply']}".encode()
        ).hexdigest()[:12]
        first = bool(adapter_first[int(pos)])
        r1, r2 = (r["adapter_reply"], r["base_reply"]) if first else (r["base_reply"], r["adapter_reply"])
        sheet.append({"pair_id": pid, "tweet": r["tweet"], "reply_1": r1, "reply_2": r2,
                      "preferred": "", "rater_id": "", "comment": ""})
        key.append({"pair_id": pid, "item_id": str(r["item_id"]), "reply_1_source": "adapter" if first else "base",
                    "reply_2_source": "base" if first else "adapter", "seed": seed})
    out_dir = Path(out_dir)
    sheet_path, key_path = out_dir / f"{name}_sheet.csv", out_dir / f"{name}_key.csv"
    _write_csv(pd.DataFrame(sheet, columns=SHEET_COLUMNS), sheet_path)
    _write_csv(pd.DataFrame(key, columns=KEY_COLUMNS), key_path)
    return {"sheet": str(sheet_path), "key": str(key_path), "n": len(sheet)}


def _read(path: str | Path) -> pd.DataFrame:
    raw = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
    if not raw.strip():
        return pd.DataFrame()
    return pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False)


def import_ratings(sheets: str | Path | Iterable[str | Path], key_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read filled sheets (one or many raters) against the key: (ratings, problems).

    ratings: RATING_COLUMNS; ``human_outcome`` is win/tie/loss for the adapter.
    problems: PROBLEM_COLUMNS, one row per rejected row with its reason."""
    key = _read(key_path)
    if not set(KEY_COLUMNS[:4]) <= set(key.columns):
        raise ValueError(f"{key_path}: not a human-eval key file (needs {KEY_COLUMNS[:4]})")
    key_by_id = key.set_index("pair_id")
    paths = [sheets] if isinstance(sheets, (str, Path)) else list(sheets)
    ratings: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for path in paths:
        df = _read(path)
        if df.empty and not len(df.columns):
            problems.append({"source_file": str(path), "row": 0, "pair_id": "", "reason": "empty_file"})
            continue
        if not {"pair_id", "preferred"} <= set(df.columns):
            raise ValueError(f"{path}: needs the columns pair_id and preferred (got {list(df.columns)[:10]})")
        for i, r in df.iterrows():
            row = int(i) + 2  # spreadsheet row number (header is row 1)
            pid = str(r.get("pair_id", "")).strip()
            pref = str(r.get("preferred", "")).strip().lower()
            rater = str(r.get("rater_id", "")).strip() or "unknown"

            reason = ""
            if pid not in key_by_id.index:
                reason = "unknown_pair_id"
            elif not pref:
                reason = "missing_rating"
            elif pref not in ("1", "2", "tie"):
                reason = f"invalid_preferred:{pref[:20]}"
            elif (pid, rater) in seen:
                reason = "duplicate_rating"
            if reason:
                problems.append({"source_file": str(path), "row": row, "pair_id": pid[:64], "reason": reason})
                continue
            seen.add((pid, rater))
            k = key_by_id.loc[pid]
            if pref == "tie":
                outcome = "tie"
            else:
                chosen = k["reply_1_source"] if pref == "1" else k["reply_2_source"]
                outcome = "win" if chosen == "adapter" else "loss"
            ratings.append({"pair_id": pid, "item_id": str(k["item_id"]), "rater_id": rater, "preferred": pref,
                            "human_outcome": outcome, "source_file": str(path), "row": row})
    return pd.DataFrame(ratings, columns=RATING_COLUMNS), pd.DataFrame(problems, columns=PROBLEM_COLUMNS)


def cohens_kappa(a: list[str], b: list[str], labels: Iterable[str] = LABELS) -> float | None:
    labels = list(labels)
    n = len(a)
    if n == 0 or n != len(b):
        return None
    p_o = sum(x == y for x, y in zip(a, b)) / n
    p_e = sum((a.count(lab) / n) * (b.count(lab) / n) for lab in labels)
    if p_e >= 1.0:
        return None
    return float((p_o - p_e) / (1 - p_e))


def judge_human_agreement(judge_items: pd.DataFrame, ratings: pd.DataFrame) -> dict[str, Any]:
    """Agreement between the judge's per-item outcome and every human rating of that item."""
    valid = judge_items[judge_items["outcome"].isin(LABELS)][["item_id", "outcome"]].astype({"item_id": str})
    merged = ratings.astype({"item_id": str}).merge(valid, on="item_id", how="inner")
    n = len(merged)
    if n == 0:
        return {"n": 0, "n_items": 0, "n_raters": 0, "percent_agreement": None, "cohens_kappa": None}
    h, j = merged["human_outcome"].tolist(), merged["outcome"].tolist()
    confusion = pd.crosstab(pd.Categorical(j, LABELS), pd.Categorical(h, LABELS), dropna=False)
    human_win_rate = float(np.mean([{"win": 1.0, "tie": 0.5, "loss": 0.0}[x] for x in h]))
    return {
        "n": n,
        "n_items": int(merged["item_id"].nunique()),
        "n_raters": int(merged["rater_id"].nunique()),
        "percent_agreement": float(np.mean([x == y for x, y in zip(h, j)])),
        "cohens_kappa": cohens_kappa(j, h),
        "human_win_rate": human_win_rate,
        "confusion_judge_rows_human_cols": {str(r): {str(c): int(confusion.loc[r, c]) for c in confusion.columns}
                                            for r in confusion.index},
    }


# ----------------------------------------------------------------------------- storage

RATINGS_TABLE = "human_ratings"


def store_ratings(database_path, ratings: pd.DataFrame) -> int:
    """Upsert imported ratings into ``main.human_ratings`` keyed by (pair_id, rater_id).

    ``database_path``: a DuckDB file, a ``replyassets.core.db.Storage`` or None (the settings'
    storage). Importing the same sheet twice changes nothing; a rater's corrected sheet
    replaces their earlier rating of that pair (delete + insert in one transaction).
    """
    from replyassets.core import db

    if ratings.empty:
        return 0
    rows = ratings[RATING_COLUMNS].astype({"row": "int64"}).astype(object).where(ratings[RATING_COLUMNS].notna(), None)
    storage = db.as_storage(database_path)
    # one row per (pair_id, rater_id): the last one of the sheet wins
    values = list({(r[0], r[2]): tuple(r) for r in rows.itertuples(index=False)}.values())

    def write(con) -> None:
        con.execute(db.create_table_sql(
            storage, RATINGS_TABLE,
            ["pair_id VARCHAR NOT NULL", "item_id VARCHAR", "rater_id VARCHAR NOT NULL", "preferred VARCHAR",
             "human_outcome VARCHAR", "source_file VARCHAR", "row BIGINT", "imported_at TIMESTAMP DEFAULT now()"],
            primary_key=("pair_id", "rater_id"),
        )).fetchall()
        con.executemany(f"DELETE FROM {RATINGS_TABLE} WHERE pair_id = ? AND rater_id = ?", [[v[0], v[2]] for v in values])
        con.executemany(
            f"INSERT INTO {RATINGS_TABLE} (pair_id, item_id, rater_id, preferred, human_outcome, "
            "source_file, row) VALUES (?, ?, ?, ?, ?, ?, ?)",
            values,
        )

    db.transaction(write, storage, purpose="human ratings import")
    return len(values)


def load_ratings(database_path, pair_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Stored ratings (optionally only of ``pair_ids``); empty when none were imported."""
    from replyassets.core import db

    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in RATING_COLUMNS})
    storage = db.as_storage(database_path)
    if not storage.exists():
        return empty
    with db.connect(storage, purpose="human ratings") as con:
        if not db.table_exists(con, RATINGS_TABLE):
            return empty
        df = con.execute(f"SELECT {', '.join(RATING_COLUMNS)} FROM {RATINGS_TABLE}").fetchdf()
    if pair_ids is not None:
        df = df[df["pair_id"].astype(str).isin({str(i) for i in pair_ids})]
    return df.reset_index(drop=True)
