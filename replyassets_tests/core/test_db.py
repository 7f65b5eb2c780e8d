"""``replyassets.core.db``: the one way to open storage.

The DuckDB file: ``connect`` holds an inter-process lock only while its connection is open; a
second process waits for it and then proceeds (no DuckDB lock error reaches it), a timeout
names the holder, many processes and threads take turns without losing a row. The DuckLake:
concurrent partition replacement from several processes loses nothing (conflicts retried),
a commit's snapshot reads back by version, and the catalog's password never shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from replyassets.core import db

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from replyassets.core import db
with db.connect(sys.argv[1], purpose="holder-test") as con:
    con.execute("CREATE TABLE IF NOT EXISTS main.t (who VARCHAR)")
    con.execute("INSERT INTO main.t VALUES ('holder')")
    print("held", flush=True)
    if sys.argv[2] == "stdin":
        sys.stdin.readline()
    else:
        time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _holder(path: Path, hold: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), hold], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    line = proc.stdout.readline().strip()
    assert line == "held", (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def test_lock_is_held_only_while_the_connection_is_open(tmp_path):
    path = tmp_path / "a" / "x.duckdb"
    with db.connect(path, purpose="unit test") as con:
        con.execute("CREATE TABLE t (x INT)")
        holder = db.lock_holder(path)
        assert holder["pid"] == os.getpid() and holder["purpose"] == "unit test"
        with db.connect(path) as inner:  # re-entrant in the same thread
            inner.execute("INSERT INTO t VALUES (1)")
    assert db.lock_holder(path) is None
    with duckdb.connect(str(path)) as raw:  # closed: anyone may open the file now
        assert raw.execute("SELECT count(*) FROM t").fetchone()[0] == 1


def test_a_second_process_waits_for_the_lock_then_proceeds(tmp_path):
    path = tmp_path / "x.duckdb"
    holder = _holder(path, "2.5")
    try:
        # Without the module a second opener fails at once: the error the lock keeps from users.
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(path))
        info = db.lock_holder(path)
        assert info["pid"] == holder.pid and info["purpose"] == "holder-test"
        started = time.monotonic()
        db.transaction(lambda con: con.execute("INSERT INTO main.t VALUES ('waiter')"), path)
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=60)
    print(f"\nwaiter waited {waited:.2f} s for the holder (holds 2.5 s)")
    assert waited >= 1.0, waited  # it really waited for the holder ...
    assert holder.returncode == 0 and "lock" not in holder.stderr.read().lower()
    with db.connect(path) as con:  # ... and then wrote after it
        assert [r[0] for r in con.execute("SELECT who FROM main.t ORDER BY rowid").fetchall()] == ["holder", "waiter"]


def test_timeout_names_the_holder(tmp_path):
    path = tmp_path / "x.duckdb"
    holder = _holder(path, "stdin")
    try:
        with pytest.raises(db.StorageBusy) as err:
            with db.connect(path, timeout_s=0.5):
                pass
        msg = str(err.value)
        assert f"pid {holder.pid}" in msg and "holder-test" in msg and "waited 0.5 s" in msg
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=60)


def _raw_holder(path: Path, hold: str) -> subprocess.Popen:
    """A process holding the file with plain ``duckdb.connect`` (a DuckDB shell, a notebook)."""
    code = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.readline() if sys.argv[2] == 'stdin' else time.sleep(float(sys.argv[2])); c.close()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), hold], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_process_outside_the_module_is_waited_for(tmp_path):
    path = tmp_path / "x.duckdb"
    raw = _raw_holder(path, "1.5")
    with db.connect(path) as con:  # DuckDB's own lock error is retried until the deadline
        con.execute("CREATE TABLE t (x INT)")
    raw.wait(timeout=60)
    raw = _raw_holder(path, "stdin")
    try:
        with pytest.raises(db.StorageBusy, match="outside replyassets"):
            with db.connect(path, timeout_s=0.3):
                pass
    finally:
        raw.stdin.write("\n")
        raw.stdin.close()
        raw.wait(timeout=60)


@pytest.mark.slow
def test_many_processes_write_one_file_in_turns(tmp_path):
    path = tmp_path / "x.duckdb"
    parts = [f"p{i}" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-m", "replyassets_tests.core.db_worker", "duckdb", str(path), p,
                               "25", "500"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for p in parts]
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0 and "lock" not in err.lower(), err[-2000:]
    stats = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    print("\n" + "; ".join(f"{s['part']}: {s['transactions']} txns in {s['seconds']} s" for s in stats))
    with db.connect(path) as con:
        rows = con.execute("SELECT part, count(*), min(txn), max(txn) FROM main.parts GROUP BY part ORDER BY part").fetchall()
    assert rows == [(p, 500, 24, 24) for p in parts]


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_threads_of_one_process_take_turns(tmp_path):
    path = tmp_path / "x.duckdb"
    db.transaction(lambda con: con.execute("CREATE TABLE t (thread INT, i INT)"), path)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(15):
                db.transaction(lambda con, i=i: con.execute("INSERT INTO t VALUES (?, ?)", [k, i]), path)
                with db.connect(path) as con:
                    con.execute("SELECT count(*) FROM t").fetchall()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    with db.connect(path) as con:
        assert con.execute("SELECT count(*), count(DISTINCT (thread, i)) FROM t").fetchone() == (60, 60)


def test_a_failed_transaction_leaves_nothing(tmp_path):
    path = tmp_path / "x.duckdb"
    db.transaction(lambda con: con.execute("CREATE TABLE t (x INT)"), path)

    def half(con):
        con.execute("INSERT INTO t VALUES (1)")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        db.transaction(half, path)
    with db.connect(path) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    assert db.current_snapshot(path) is None  # a file has no versions


def test_create_table_sql_keeps_constraints_only_where_the_backend_has_them(tmp_path):
    file = db.Storage("duckdb", database=tmp_path / "x.duckdb")
    lake = db.Storage("ducklake", data_path=str(tmp_path / "lake"))
    cols = ["k VARCHAR NOT NULL", "v VARCHAR"]
    assert "PRIMARY KEY (k)" in db.create_table_sql(file, "t", cols, primary_key=("k",), checks=("v <> ''",))
    assert "CHECK (v <> '')" in db.create_table_sql(file, "t", cols, primary_key=("k",), checks=("v <> ''",))
    sql = db.create_table_sql(lake, "t", cols, primary_key=("k",), checks=("v <> ''",))
    assert "PRIMARY KEY" not in sql and "CHECK" not in sql and "k VARCHAR NOT NULL" in sql


# --------------------------------------------------------------------------- DuckLake


def test_the_catalog_password_never_shows(tmp_path, monkeypatch):
    storage = db.Storage("ducklake", data_path=str(tmp_path / "lake"))
    monkeypatch.delenv(db.CATALOG_ENV, raising=False)
    with pytest.raises(db.StorageError, match=db.CATALOG_ENV):
        with db.connect(storage):
            pass
    monkeypatch.setenv(db.CATALOG_ENV, "host=127.0.0.1 port=1 user=x password=hunter2secret dbname=nowhere")
    assert "hunter2secret" not in storage.describe() and "password=***" in storage.describe()
    with pytest.raises(db.StorageError) as err:
        with db.connect(storage):
            pass
    text = str(err.value)
    assert "cannot attach the DuckLake" in text and "hunter2secret" not in text
    assert err.value.__cause__ is None and err.value.__context__ is None  # no chained original message
    assert db.scrub("a password='x y' b password=z") == "a password=*** b password=***"


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_lake_connections_share_tables_and_see_other_processes(lake_storage):
    with db.connect(lake_storage) as con:
        assert db.is_lake(con)
        con.execute("CREATE TABLE main.t (x INT)")
    subprocess.run([sys.executable, "-c", "import sys; from replyassets.core import db\n"
                    "s = db.Storage('ducklake', data_path=sys.argv[1])\n"
                    "db.transaction(lambda c: c.execute('INSERT INTO main.t VALUES (7)'), s)",
                    lake_storage.data_path], check=True, env=_env(), timeout=120)
    with db.connect(lake_storage) as con:  # this process's attached lake sees the other's commit
        assert con.execute("SELECT x FROM main.t").fetchall() == [(7,)]
        assert db.table_exists(con, "t") and not db.table_exists(con, "nope")
    # The catalog's file list and the data folder agree: no orphan and no missing Parquet file
    # (a one-row insert is inlined in the catalog, so both are empty here).
    with db.connect(lake_storage) as con:
        files = [r[0] for r in con.execute(f"SELECT data_file FROM ducklake_list_files('{db.LAKE}', 't')").fetchall()]
    on_disk = {p.name for p in Path(lake_storage.data_path).rglob("*.parquet")}
    assert {Path(f).name for f in files} == on_disk, (files, on_disk)


def test_a_commit_snapshot_reads_back_by_version(lake_storage):
    def write(rows):
        def fn(con):
            con.execute("CREATE TABLE IF NOT EXISTS main.t (x INT)")
            con.execute("DELETE FROM main.t")
            con.execute("INSERT INTO main.t SELECT range FROM range(?)", [rows])
        return fn

    first = db.transaction(write(3), lake_storage, commit_message="first")
    second = db.transaction(write(5), lake_storage, commit_message="second")
    assert isinstance(first.snapshot_id, int) and second.snapshot_id > first.snapshot_id
    assert db.current_snapshot(lake_storage) == second.snapshot_id
    with db.connect(lake_storage) as con:
        assert con.execute(f"SELECT count(*) FROM main.t AT (VERSION => {first.snapshot_id})").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM main.t").fetchone()[0] == 5
        msg = con.execute(f"SELECT commit_message FROM {db.LAKE}.snapshots() WHERE snapshot_id = ?",
                          [first.snapshot_id]).fetchone()[0]
    assert msg == "first"
    assert db.transaction(write(1), lake_storage).snapshot_id is None  # no message asked: no lookup


@pytest.mark.slow
def test_four_processes_replace_partitions_of_one_lake_table(lake_storage):
    parts = [f"p{i}" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-m", "replyassets_tests.core.db_worker", "ducklake",
                               lake_storage.data_path, p, "15", "1000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for p in parts]
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err[-3000:]
    stats = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    print("\nducklake: " + "; ".join(f"{s['part']}: {s['transactions']} txns, {s['retries']} conflicts retried, "
                                     f"{s['seconds']} s" for s in stats))
    with db.connect(lake_storage) as con:
        rows = con.execute("SELECT part, count(*), count(DISTINCT x), min(txn), max(txn) FROM main.parts "
                           "GROUP BY part ORDER BY part").fetchall()
    assert rows == [(p, 1000, 1000, 14, 14) for p in parts]
