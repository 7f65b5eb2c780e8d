from __future__ import annotations

import csv
import subprocess
import sys
import textwrap

import duckdb
import pandas as pd
import pytest

from replyassets.core.curate import curate, rank_candidates
from replyassets.core.review import CSV_COLUMNS, ReviewError, ReviewStore
from replyassets.settings import CurationSettings
from replyassets_tests.curate.data import make_deduped


@pytest.fixture
def store(any_storage):
    """A review store on a DuckDB file, then on a DuckLake (every test below runs on both)."""
    return ReviewStore(any_storage)


def _table_exists(storage) -> bool:
    from replyassets.core import db

    if not storage.exists():
        return False
    with db.connect(storage) as con:
        return db.table_exists(con, "review_decisions")


@pytest.fixture(scope="module")
def ranked():
    return rank_candidates(make_deduped(10, 3))


def test_empty_store_reads_without_creating_anything(store, ranked):
    assert store.decisions().empty and list(store.decisions().columns) == [
        "reply_id", "decision", "edited_reply", "note", "reviewer", "decided_at"]
    assert not _table_exists(store.storage)
    if store.database_path is not None:
        assert not store.database_path.exists()
    assert store.progress(ranked)["pending"] == len(ranked)
    assert store.pending(ranked)["reply_id"].tolist() == ranked["reply_id"].tolist()


def test_record_upsert_and_table_contract(store, ranked):
    ids = ranked["reply_id"].tolist()
    store.record(ids[0], "keep", reviewer="ana")
    store.record(ids[1], "reject", note="off topic")
    store.record(ids[2], "edit", edited_reply="  A better reply, rewritten by hand.  ")
    store.record(ids[0], "Reject")  # upsert: the last decision wins
    dec = store.decisions().set_index("reply_id")
    assert len(dec) == 3
    assert dec.loc[ids[0], "decision"] == "reject" and dec.loc[ids[0], "reviewer"] is None
    assert dec.loc[ids[2], "edited_reply"] == "A better reply, rewritten by hand."
    assert dec.loc[ids[1], "note"] == "off topic"
    assert str(dec["decided_at"].dtype).startswith("datetime64")
    assert store.pending(ranked)["reply_id"].tolist() == ids[3:]
    p = store.progress(ranked)
    assert (p["reviewed"], p["kept"], p["edited"], p["rejected"], p["pending"]) == (3, 0, 1, 2, len(ids) - 3)
    if store.storage.is_lake:  # DuckLake has no PRIMARY KEY / CHECK: the store keeps keys unique itself
        return
    # the table's own constraints hold, whoever writes to it
    con = duckdb.connect(str(store.database_path))
    try:
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO review_decisions VALUES ('x', 'maybe', NULL, NULL, NULL, now())")
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO review_decisions VALUES (?, 'keep', NULL, NULL, NULL, now())", [ids[1]])
    finally:
        con.close()


@pytest.mark.parametrize("args,match", [
    (("", "keep"), "reply_id is empty"),
    (("1", "maybe"), "not one of"),
    (("1", "edit"), "needs a non-empty edited_reply"),
    (("1", "edit", "   "), "needs a non-empty edited_reply"),
    (("1", "keep", "some text"), "use 'edit'"),
    (("1.23E+18", "keep"), "scientific notation"),
])
def test_record_rejects_bad_input(store, args, match):
    with pytest.raises(ReviewError, match=match):
        store.record(*args)
    assert store.decisions().empty


def test_sql_values_are_parameters(store):
    evil = "x'); DROP TABLE review_decisions; --"
    store.record(evil, "edit", edited_reply="it's \"quoted\" ; DROP TABLE x; 🚀")
    store.record("2", "keep")
    dec = store.decisions().set_index("reply_id")
    assert dec.loc[evil, "edited_reply"] == "it's \"quoted\" ; DROP TABLE x; 🚀" and len(dec) == 2


def test_decisions_survive_recomputing_everything(store):
    df = make_deduped(10, 3)
    ids = rank_candidates(df)["reply_id"].tolist()
    store.record(ids[0], "reject")
    store.record(ids[1], "edit", edited_reply="Edited once and kept across runs of the pipeline.")
    for _ in range(2):  # re-materialize: a fresh frame, the same reply ids
        out = curate(make_deduped(10, 3), store.decisions(), CurationSettings()).set_index("reply_id")
        assert ids[0] not in out.index and out.loc[ids[1], "train_reply"].startswith("Edited once")


def test_busy_database_is_a_clear_error(tmp_path, ranked):
    db = tmp_path / "busy.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(db)!r})
            con.execute("CREATE TABLE t (x INT)")
            print("locked", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = ReviewStore(db, busy_timeout_s=0.3)
        with pytest.raises(ReviewError, match="busy"):
            busy.record(ranked["reply_id"].iloc[0], "keep")
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    ReviewStore(db).record(ranked["reply_id"].iloc[0], "keep")  # and works once the other writer is gone
    assert len(ReviewStore(db).decisions()) == 1


# --------------------------------------------------------------------------- CSV


def read_rows(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path, rows, fieldnames=CSV_COLUMNS):
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fieldnames)
        w.writeheader()
        w.writerows(rows)


def test_csv_round_trip_with_bad_rows(store, ranked, tmp_path):
    ids = ranked["reply_id"].tolist()
    store.record(ids[0], "keep")
    cand = ranked.copy()
    cand.loc[1, "reply"] = "=HYPERLINK(\"http://evil\")"  # would run as a formula in a spreadsheet
    cand.loc[2, "reply"] = "line one\nline two, with \"quotes\" and emoji 🚀"
    res = store.export_csv(cand, tmp_path / "review.csv")
    assert res == {"path": str(tmp_path / "review.csv"), "rows": len(ids), "decided": 1}
    rows = read_rows(tmp_path / "review.csv")
    assert [r["reply_id"] for r in rows] == ids and rows[0]["decision"] == "keep"
    assert rows[1]["reply"].startswith("'=") and rows[2]["reply"] == cand.loc[2, "reply"]
    assert list(rows[0]) == CSV_COLUMNS

    # a reviewer fills in the spreadsheet
    rows[1]["decision"] = "reject"
    rows[2].update(decision="EDIT", edited_reply="A clean rewrite of the reply, no links at all.")
    rows[3]["decision"] = "maybe"                            # bad: unknown decision
    rows[4].update(decision="edit", edited_reply="")         # bad: edit without text
    rows[5].update(decision="keep", edited_reply="typed but not an edit")  # bad
    rows[6]["edited_reply"] = "an edit without a decision"   # bad: decision blank
    rows[7].update(reply_id="9.99E+17", decision="keep")     # bad: spreadsheet-mangled id
    rows[8].update(reply_id="does-not-exist", decision="keep")  # bad: unknown id
    rows.append(dict(rows[1]))                                 # bad: reply_id twice
    write_rows(tmp_path / "filled.csv", rows)

    report = store.import_csv(tmp_path / "filled.csv", candidates=ranked, reviewer="sheet")
    bad = {b["line"]: b["reasons"] for b in report["bad"]}
    assert sorted(bad) == [5, 6, 7, 8, 9, 10, len(rows) + 1]
    assert any("not one of" in r for r in bad[5])
    assert any("scientific notation" in r for r in bad[9])
    assert any("not a current candidate" in r for r in bad[10])
    assert any("already decided on line 3" in r for r in bad[len(rows) + 1])
    assert report["applied"] == 2 and report["unchanged"] == 1
    assert report["skipped_blank"] == len(ids) - 9
    dec = store.decisions().set_index("reply_id")
    assert dec.loc[ids[1], "decision"] == "reject" and dec.loc[ids[1], "reviewer"] == "sheet"
    assert dec.loc[ids[2], "edited_reply"] == "A clean rewrite of the reply, no links at all."
    assert set(dec.index) == {ids[0], ids[1], ids[2]}
    before = store.decisions()

    # importing the same file again changes nothing
    again = store.import_csv(tmp_path / "filled.csv", candidates=ranked, reviewer="sheet")
    assert again["applied"] == 0 and again["unchanged"] == 3 and len(again["bad"]) == len(report["bad"])
    pd.testing.assert_frame_equal(store.decisions(), before)

    # and an export now carries the decisions back out
    store.export_csv(ranked, tmp_path / "round2.csv")
    rows2 = {r["reply_id"]: r for r in read_rows(tmp_path / "round2.csv")}
    assert rows2[ids[2]]["decision"] == "edit" and rows2[ids[2]]["edited_reply"].startswith("A clean rewrite")


def test_import_unreadable_or_wrong_csv(store, tmp_path):
    (tmp_path / "x.csv").write_text("id,verdict\n1,keep\n")
    with pytest.raises(ReviewError, match="lacks columns"):
        store.import_csv(tmp_path / "x.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x00garbage")
    with pytest.raises(ReviewError):
        store.import_csv(tmp_path / "bin.csv")
    with pytest.raises(ReviewError):
        store.import_csv(tmp_path / "missing.csv")
    assert store.decisions().empty
