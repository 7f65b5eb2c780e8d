"""``replyassets retype TABLE COLUMN=TYPE...``: rewrite one stored table with columns retyped.

The fix the IO manager names when a table's stored column types differ from its contract
(``replyassets/schemas.py``) and a partitioned write cannot repair it: the table is rewritten
in one transaction on the profile's storage (the DuckDB file or the DuckLake;
``core/db.py::retype_columns``), keeping its rows and their order; no other table and not the
Dagster instance is touched. ``TABLE`` is ``schema.table`` or ``table`` (schema ``main``);
``TYPE`` a DuckDB type (``VARCHAR``, ``BIGINT``, ``TIMESTAMP_NS``...). A value that does not
cast leaves the table as it was (exit code 1); a bad argument exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retype", help="rewrite one stored table with column types changed (its contract's types)")
    p.add_argument("table", help="schema.table or table (schema main)")
    p.add_argument("columns", nargs="+", metavar="COLUMN=TYPE", help="a column and the DuckDB type it should have")
    p.add_argument("--db", help="DuckDB file (default: the profile's storage)")
    p.set_defaults(func=run)


def parse_columns(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, sql_type = item.partition("=")
        if not sep or not name.strip() or not sql_type.strip():
            raise ValueError(f"expected COLUMN=TYPE, got {item!r}")
        out[name.strip()] = sql_type.strip()
    return out


def run(args: argparse.Namespace) -> int:
    import duckdb

    from replyassets.core import db

    schema, _, table = args.table.rpartition(".")
    schema = schema or "main"
    try:
        types = parse_columns(args.columns)
        storage = db.as_storage(Path(args.db)) if args.db else db.storage_from_settings()
    except ValueError as exc:
        print(f"replyassets retype: {exc}", file=sys.stderr)
        return 2
    try:
        done = db.transaction(lambda con: db.retype_columns(con, table, types, schema), storage,
                              purpose=f"replyassets retype {schema}.{table}",
                              commit_message=f"replyassets retype {schema}.{table}")
    except ValueError as exc:
        print(f"replyassets retype: {exc}", file=sys.stderr)
        return 2
    except (duckdb.Error, db.StorageError) as exc:
        print(f"replyassets retype: {schema}.{table} left as it was: {db.scrub(str(exc))}", file=sys.stderr)
        return 1
    print(json.dumps({"table": f"{schema}.{table}", "rows": done.value, "types": types,
                      "database": storage.describe()}))
    return 0
