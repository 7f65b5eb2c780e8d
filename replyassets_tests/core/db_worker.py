"""A writer process for the storage tests: ``n`` transactions, each replacing one partition.

    python -m replyassets_tests.core.db_worker duckdb /tmp/x.duckdb p1 20 1000
    python -m replyassets_tests.core.db_worker ducklake /tmp/lake-data p1 20 1000   # catalog from env

Each transaction deletes the partition's rows and inserts ``rows`` new ones (tagged with the
transaction's number), through ``replyassets.core.db.transaction``. The last line printed is a
JSON object: transactions done, retries spent on DuckLake conflicts, seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    backend, target, part, n, rows = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    from replyassets.core import db

    storage = (db.Storage("duckdb", database=Path(target)) if backend == "duckdb"
               else db.Storage("ducklake", data_path=target, max_retries=50))
    retries = 0
    started = time.monotonic()
    for i in range(n):
        def replace(con, i=i):
            con.execute("CREATE TABLE IF NOT EXISTS main.parts (part VARCHAR, txn INTEGER, x INTEGER)")
            con.execute("DELETE FROM main.parts WHERE part = ?", [part])
            con.execute("INSERT INTO main.parts SELECT ?, ?, range FROM range(?)", [part, i, rows])

        done = db.transaction(replace, storage, purpose=f"db_worker {part}")
        retries += done.retries
    print(json.dumps({"part": part, "transactions": n, "retries": retries,
                      "seconds": round(time.monotonic() - started, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
