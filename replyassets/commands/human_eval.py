"""``replyassets human-eval import --key KEY SHEET...``: load filled rater sheets into the storage.

``eval_report`` writes a blinded sheet (``human_eval_sheet.csv``) and its key
(``human_eval_key.csv``, keep it away from raters) into each report folder. Raters fill
``preferred`` (1, 2 or tie) and ``rater_id``; this command validates every row, stores the
ratings in ``main.human_ratings`` and prints the rows it refused with their reasons. The next
``eval_report`` shows judge-human agreement next to the judge's numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("human-eval", help="import human pairwise ratings for the evaluation report")
    actions = p.add_subparsers(dest="action", required=True)
    imp = actions.add_parser("import", help="import filled rater sheets (CSV)")
    imp.add_argument("sheets", nargs="+", help="filled human_eval_sheet.csv files (one per rater)")
    imp.add_argument("--key", required=True, help="the human_eval_key.csv written beside the sheet")
    imp.add_argument("--db", help="DuckDB file (default: the profile's storage)")
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    from replyassets.core import db
    from replyassets.core.human_eval import import_ratings, store_ratings

    storage = db.as_storage(Path(args.db)) if args.db else db.storage_from_settings()
    try:
        ratings, problems = import_ratings(args.sheets, args.key)
    except (OSError, ValueError) as exc:
        print(f"replyassets human-eval: {exc}", file=sys.stderr)
        return 2
    stored = store_ratings(storage, ratings)
    for row in problems.to_dict("records"):
        print(json.dumps(row, default=str), file=sys.stderr)
    print(json.dumps({"stored": stored, "refused": len(problems), "database": storage.describe()}))
    return 1 if len(problems) else 0
