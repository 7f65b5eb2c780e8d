"""The test PostgreSQL server starts, answers on loopback only and stops by its pid."""

from __future__ import annotations

import os

import pytest

from replyassets_tests.postgres import PostgresServer


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_server_answers_sql_and_stops_by_pid(tmp_path):
    server = PostgresServer(tmp_path / "pg").start()
    try:
        assert server.pid and os.path.exists(f"/proc/{server.pid}")
        dsn = server.create_database("probe")
        assert "dbname=probe" in dsn
        assert server.psql("SELECT 40 + 2", "probe").strip() == "42"
        assert server.psql("SHOW listen_addresses").strip() == "127.0.0.1"
    finally:
        pid = server.pid
        server.stop()
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    with pytest.raises(RuntimeError):
        server.psql("SELECT 1")


def test_session_server_isolates_databases(postgres_server):
    a = postgres_server.create_database("iso_a")
    postgres_server.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)", "iso_a")
    postgres_server.create_database("iso_b")
    assert postgres_server.psql("SELECT count(*) FROM t", "iso_a").strip() == "1"
    with pytest.raises(RuntimeError, match="does not exist"):
        postgres_server.psql("SELECT count(*) FROM t", "iso_b")
    assert "iso_a" in a
