"""The review store: manual keep / reject / edit decisions, kept in DuckDB by ``reply_id``.

Decisions live in the table ``review_decisions`` of the project's storage (a DuckDB file or
the DuckLake, ``replyassets/core/db.py``), keyed by ``reply_id``, so they survive every
re-materialization of every asset. Each write is one short transaction that replaces the
decision's row (delete + insert; on the DuckDB file the table also has its primary key and
CHECK constraint). A DuckDB file held by another process is waited for ``busy_timeout_s``
seconds, then the store says so clearly. All SQL is parameterized; the table name is a
constant of this module.
"""

from __future__ import annotations

import csv
import io
import math
import re
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from replyassets.core import db
from replyassets.core.files import atomic_write

TABLE = "review_decisions"
DECISIONS = ("keep", "reject", "edit")
DECISION_COLUMNS = ["reply_id", "decision", "edited_reply", "note", "reviewer", "decided_at"]
_COLUMNS = [
    "reply_id VARCHAR NOT NULL", "decision VARCHAR NOT NULL", "edited_reply VARCHAR", "note VARCHAR",
    "reviewer VARCHAR", "decided_at TIMESTAMP NOT NULL",
]
_CHECKS = ("decision IN ('keep', 'reject', 'edit')",)
DELETE_SQL = f"DELETE FROM {TABLE} WHERE reply_id = ?"
INSERT_SQL = f"INSERT INTO {TABLE} ({', '.join(DECISION_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"


def create_sql(storage: db.Storage) -> str:
    """The table's DDL on ``storage``'s backend (constraints where the backend has them)."""
    return db.create_table_sql(storage, TABLE, _COLUMNS, primary_key=("reply_id",), checks=_CHECKS)


def upsert(con, rows: list[list[Any]]) -> None:
    """Replace the decisions of ``rows`` (DECISION_COLUMNS order), inside the caller's transaction."""
    con.executemany(DELETE_SQL, [[r[0]] for r in rows])
    con.executemany(INSERT_SQL, rows)
# Columns of export_csv; import_csv reads reply_id, decision, edited_reply, note (the rest is context).
CSV_COLUMNS = [
    "rank", "reply_id", "decision", "edited_reply", "note", "quality_score", "reply_likes",
    "reply_author", "reply_author_followers", "tweet", "reply",
]
MAX_EDIT_CHARS = 1000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SCI_NOTATION = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")


class ReviewError(ValueError):
    """A decision that cannot be recorded (bad value, database busy or unreadable)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # naive UTC, the project's convention


def validate_decision(reply_id: Any, decision: Any, edited_reply: Any = None) -> list[str]:
    """Reasons a decision is invalid (empty list when it is fine)."""
    reasons = []
    rid = "" if reply_id is None or (isinstance(reply_id, float) and math.isnan(reply_id)) else str(reply_id).strip()
    if not rid:
        reasons.append("reply_id is empty")
    elif _SCI_NOTATION.match(rid):
        reasons.append(f"reply_id {rid!r} looks mangled by a spreadsheet (scientific notation)")
    dec = str(decision).strip().lower() if decision is not None else ""
    if dec not in DECISIONS:
        reasons.append(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    text = "" if edited_reply is None or (isinstance(edited_reply, float) and math.isnan(edited_reply)) else str(edited_reply)
    if dec == "edit":
        if not text.strip():
            reasons.append("decision 'edit' needs a non-empty edited_reply")
        elif len(text) > MAX_EDIT_CHARS:
            reasons.append(f"edited_reply is {len(text)} characters (max {MAX_EDIT_CHARS})")
    elif text.strip() and dec in DECISIONS:
        reasons.append(f"edited_reply given but decision is {dec!r} (use 'edit')")
    return reasons


def _clean(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return text if text.strip() else None


class ReviewStore:
    """Review decisions in ``database_path`` (created, with its table, on first write)."""

    def __init__(self, database_path: db.Storage | str | Path | None = None, busy_timeout_s: float = 10.0):
        self.storage = db.as_storage(database_path)
        self.database_path = self.storage.database
        self.busy_timeout_s = busy_timeout_s

    # ----------------------------------------------------------------- connections

    def _busy(self, exc: Exception) -> ReviewError:
        return ReviewError(
            f"the database {self.storage.describe()} is busy (another process is writing to it, "
            f"e.g. a Dagster run); try again in a moment ({exc})"
        )

    @contextmanager
    def connection(self):
        """A short read connection (the storage must exist)."""
        try:
            with db.connect(self.storage, timeout_s=self.busy_timeout_s, purpose="review store") as con:
                yield con
        except db.StorageBusy as exc:
            raise self._busy(exc) from exc

    def _write(self, fn):
        def body(con):
            con.execute(create_sql(self.storage))
            return fn(con)

        try:
            return db.transaction(body, self.storage, timeout_s=self.busy_timeout_s, purpose="review store").value
        except db.StorageBusy as exc:
            raise self._busy(exc) from exc

    # ----------------------------------------------------------------- reads

    def decisions(self) -> pd.DataFrame:
        """Every decision: ``reply_id, decision, edited_reply, note, reviewer, decided_at``."""
        if not self.storage.exists():
            return empty_decisions()
        with self.connection() as con:
            return decisions_from_connection(con)

    def get(self, reply_id: str) -> dict[str, Any] | None:
        if not self.storage.exists():
            return None
        with self.connection() as con:
            if not _table_exists(con):
                return None
            row = con.execute(
                f"SELECT {', '.join(DECISION_COLUMNS)} FROM {TABLE} WHERE reply_id = ?", [str(reply_id)]
            ).fetchone()
        return dict(zip(DECISION_COLUMNS, row, strict=True)) if row else None

    def pending(self, candidates_ranked: pd.DataFrame) -> pd.DataFrame:
        """The candidates without a decision, in the given (rank) order."""
        decided = set(self.decisions()["reply_id"])
        return candidates_ranked.loc[~candidates_ranked["reply_id"].astype(str).isin(decided)]

    def progress(self, candidates: pd.DataFrame) -> dict[str, Any]:
        """Counts over ``candidates``: reviewed / kept / edited / rejected / pending, plus orphans."""
        dec = self.decisions()
        return progress_of(candidates, dec)

    # ----------------------------------------------------------------- writes

    def record(
        self,
        reply_id: str,
        decision: str,
        edited_reply: str | None = None,
        note: str | None = None,
        reviewer: str | None = None,
    ) -> dict[str, Any]:
        """Write one decision now (upsert by reply_id). Raises :class:`ReviewError` on bad input."""
        reasons = validate_decision(reply_id, decision, edited_reply)
        if reasons:
            raise ReviewError("; ".join(reasons))
        row = {
            "reply_id": str(reply_id).strip(),
            "decision": str(decision).strip().lower(),
            "edited_reply": _clean(edited_reply).strip() if _clean(edited_reply) else None,
            "note": _clean(note),
            "reviewer": _clean(reviewer),
            "decided_at": _now(),
        }
        self._write(lambda con: upsert(con, [[row[c] for c in DECISION_COLUMNS]]))
        return row

    def delete(self, reply_id: str) -> bool:
        """Forget a decision (the pair becomes pending again)."""
        if not self.storage.exists():
            return False
        n = self._write(lambda con: con.execute(f"DELETE FROM {TABLE} WHERE reply_id = ?", [str(reply_id)]).fetchall())
        return bool(n and n[0][0])

    # ----------------------------------------------------------------- CSV

    def export_csv(self, candidates: pd.DataFrame, path: str | Path) -> dict[str, Any]:
        """Write candidates (in the given order) with any existing decision to a CSV, atomically.

        Display columns that would start a spreadsheet formula (``=``, ``+``, ``-``, ``@``) are
        prefixed with ``'``; import reads only reply_id, decision, edited_reply and note.
        """
        path = Path(path)
        dec = self.decisions().set_index("reply_id")
        frame = pd.DataFrame(index=range(len(candidates)))
        cand = candidates.reset_index(drop=True)
        for col in CSV_COLUMNS:
            if col in ("decision", "edited_reply", "note"):
                continue
            frame[col] = cand[col] if col in cand.columns else None
        frame["reply_id"] = cand["reply_id"].astype(str)
        for col in ("decision", "edited_reply", "note"):
            frame[col] = frame["reply_id"].map(dec[col]) if len(dec) else None
        for col in ("tweet", "reply", "reply_author", "edited_reply", "note"):
            frame[col] = frame[col].map(_defuse_formula)
        frame = frame[CSV_COLUMNS]
        buf = io.StringIO()
        frame.to_csv(buf, index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        atomic_write(path, buf.getvalue().encode("utf-8-sig"))
        return {"path": str(path), "rows": len(frame), "decided": int(frame["decision"].notna().sum())}

    def import_csv(self, path: str | Path, candidates: pd.DataFrame | None = None,
                   reviewer: str | None = None) -> dict[str, Any]:
        """Apply the decisions in a CSV (as written by :meth:`export_csv`, or any CSV with
        ``reply_id`` and ``decision`` columns). Rows with a blank decision are skipped; invalid
        rows are reported with reasons (and not written); unchanged decisions are not rewritten,
        so importing the same file twice changes nothing. With ``candidates``, unknown reply_ids
        are invalid too. Returns ``{rows, applied, unchanged, skipped_blank, bad: [{line, reply_id, reasons}]}``.
        """
        path = Path(path)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ReviewError(f"cannot read {path}: {exc}") from exc
        frame.columns = [str(c).strip().lower() for c in frame.columns]
        missing = [c for c in ("reply_id", "decision") if c not in frame.columns]
        if missing:
            raise ReviewError(f"{path} lacks columns {missing}; it has {list(frame.columns)}")
        for col in ("edited_reply", "note"):
            if col not in frame.columns:
                frame[col] = ""
        known = set(candidates["reply_id"].astype(str)) if candidates is not None else None
        current = self.decisions().set_index("reply_id")
        report: dict[str, Any] = {"rows": len(frame), "applied": 0, "unchanged": 0, "skipped_blank": 0, "bad": []}
        to_write: list[list[Any]] = []
        seen: dict[str, int] = {}
        now = _now()
        for i, rec in enumerate(frame.to_dict(orient="records")):
            line = i + 2  # 1-based, after the header line
            rid = str(rec.get("reply_id", "")).strip()
            decision = str(rec.get("decision", "")).strip().lower()
            edited = _undefuse(str(rec.get("edited_reply", "")))
            note = _undefuse(str(rec.get("note", "")))
            if not decision:
                if edited.strip():
                    report["bad"].append({"line": line, "reply_id": rid, "reasons": ["edited_reply given but decision is blank (use 'edit')"]})
                else:
                    report["skipped_blank"] += 1
                continue
            reasons = validate_decision(rid, decision, edited or None)
            if known is not None and rid and rid not in known:
                reasons.append(f"reply_id {rid!r} is not a current candidate")
            if rid in seen:
                reasons.append(f"reply_id {rid!r} already decided on line {seen[rid]}")
            if reasons:
                report["bad"].append({"line": line, "reply_id": rid, "reasons": reasons})
                continue
            seen[rid] = line
            values = [rid, decision, edited.strip() if decision == "edit" else None, note.strip() or None,
                      _clean(reviewer)]
            if rid in current.index:
                cur = current.loc[rid]
                if (cur["decision"], _clean(cur["edited_reply"]), _clean(cur["note"])) == (values[1], values[2], values[3]):
                    report["unchanged"] += 1
                    continue
            to_write.append(values + [now])
        if to_write:
            self._write(lambda con: upsert(con, to_write))
        report["applied"] = len(to_write)
        return report


# --------------------------------------------------------------------------- helpers


def empty_decisions() -> pd.DataFrame:
    return pd.DataFrame({
        "reply_id": pd.Series([], dtype="object"), "decision": pd.Series([], dtype="object"),
        "edited_reply": pd.Series([], dtype="object"), "note": pd.Series([], dtype="object"),
        "reviewer": pd.Series([], dtype="object"), "decided_at": pd.Series([], dtype="datetime64[ns]"),
    })


def _table_exists(con: duckdb.DuckDBPyConnection) -> bool:
    return db.table_exists(con, TABLE, con.execute("SELECT current_schema()").fetchone()[0])


def decisions_from_connection(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Read ``review_decisions`` through an open connection (e.g. a Dagster DuckDB resource's)."""
    if not _table_exists(con):
        return empty_decisions()
    df = con.execute(f"SELECT {', '.join(DECISION_COLUMNS)} FROM {TABLE} ORDER BY decided_at, reply_id").df()
    for c in DECISION_COLUMNS[:-1]:
        df[c] = df[c].astype("object").where(df[c].notna(), None)
    return df


def progress_of(candidates: pd.DataFrame, decisions: pd.DataFrame) -> dict[str, Any]:
    ids = set(candidates["reply_id"].astype(str))
    dec = decisions.loc[decisions["reply_id"].astype(str).isin(ids)]
    counts = dec["decision"].value_counts()
    total = len(ids)
    reviewed = len(dec)
    return {
        "candidates": total,
        "reviewed": reviewed,
        "kept": int(counts.get("keep", 0)),
        "edited": int(counts.get("edit", 0)),
        "rejected": int(counts.get("reject", 0)),
        "pending": total - reviewed,
        "fraction_reviewed": round(reviewed / total, 4) if total else 0.0,
        "orphaned_decisions": int(len(decisions) - len(dec)),
    }


def _defuse_formula(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _undefuse(value: str) -> str:
    if value.startswith("'") and value[1:2] in _FORMULA_START and value[1:2] != "":
        return value[1:]
    return value


__all__ = [
    "CSV_COLUMNS",
    "DECISIONS",
    "DECISION_COLUMNS",
    "TABLE",
    "ReviewError",
    "ReviewStore",
    "create_sql",
    "decisions_from_connection",
    "empty_decisions",
    "progress_of",
    "upsert",
    "validate_decision",
]
