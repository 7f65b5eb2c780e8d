"""``replyassets review``: walk pending pairs in rank order and keep / reject / edit them.

    replyassets review [--db PATH] [--limit N] [--reviewer NAME]
    replyassets review --export FILE.csv      # spreadsheet review: every candidate + decisions
    replyassets review --import FILE.csv      # apply a filled-in spreadsheet (bad rows reported)

Candidates are the ``valid AND kept`` rows of ``deduped_pairs`` in the project's DuckDB file,
ranked by :func:`replyassets.core.curate.rank_candidates`. Each decision is written to the
``review_decisions`` table the moment it is made, so quitting (``q``, Ctrl-D, Ctrl-C, end of
piped input) or a crash loses nothing, and the next session starts at the next pending pair.
Input is read with ``input()``: it works in a terminal and through a pipe.
"""

from __future__ import annotations

import argparse
import getpass
import math
import re
import shutil
import signal
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd

from replyassets.core import db
from replyassets.core.curate import candidates_from_deduped, rank_candidates
from replyassets.core.review import ReviewError, ReviewStore
from replyassets.core.urls import has_url

DEDUPED_TABLE = "deduped_pairs"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEYS_HELP = "[k]eep  [r]eject  [e]dit  [s]kip  [q]uit"


def load_candidates(database_path: Path | db.Storage | None, schema: str = "main", settings=None) -> pd.DataFrame:
    """The ranked review candidates (``valid AND kept`` rows of ``<schema>.deduped_pairs``);
    ``database_path``: a DuckDB file, a storage, or None for the settings' storage."""
    from replyassets.settings import get_settings

    settings = settings or get_settings()
    if not _IDENT.match(schema):
        raise ReviewError(f"invalid schema name {schema!r}")
    store = ReviewStore(database_path if database_path is not None else db.storage_from_settings(settings))
    where = store.storage.describe()
    if not store.storage.exists():
        raise ReviewError(
            f"no database at {store.database_path}: materialize deduped_pairs first "
            "(e.g. `dagster asset materialize --select deduped_pairs+`), or pass --db"
        )
    try:
        with store.connection() as con:
            if not db.table_exists(con, DEDUPED_TABLE, schema):
                raise ReviewError(f"{where} has no table {schema}.{DEDUPED_TABLE}: materialize deduped_pairs first")
            # Identifiers come from code (validated above); there is no user value in this statement.
            frame = con.execute(f'SELECT * FROM "{schema}"."{DEDUPED_TABLE}"').df()
    except (duckdb.Error, db.StorageError) as exc:
        raise ReviewError(f"cannot read {schema}.{DEDUPED_TABLE} from {where}: {exc}") from exc
    return rank_candidates(candidates_from_deduped(frame), settings.curation, settings.collection)


def _ask(prompt: str) -> str | None:
    """One line of input, or None at end of input."""
    try:
        return input(prompt)
    except EOFError:
        return None


def _wrap(text: object, indent: str = "    ") -> str:
    width = max(40, min(shutil.get_terminal_size((100, 24)).columns, 120))
    parts = str(text if text is not None else "").splitlines() or [""]
    return "\n".join(textwrap.fill(p, width=width, initial_indent=indent, subsequent_indent=indent) or indent
                     for p in parts)


def _num(v: object) -> str:
    try:
        return f"{int(v):,}"
    except (TypeError, ValueError):
        return "?"


def _delay(seconds: object) -> str:
    try:
        s = int(seconds)
    except (TypeError, ValueError):
        return "?"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def _fmt(v: object, spec: str = ".2f") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(f) else format(f, spec)


def show_pair(row: dict, reviewed: int, total: int) -> None:
    tweet = row.get("tweet_clean") or row.get("tweet")
    reply = row.get("reply_clean") or row.get("reply")
    rule = "-" * 8
    print(f"\n{rule} rank {row.get('rank')} · {reviewed}/{total} reviewed {rule}")
    print(f"Tweet by @{row.get('tweet_author') or '?'} ({_num(row.get('tweet_likes'))} likes, id {row.get('tweet_id')}):")
    print(_wrap(tweet))
    print(f"Reply by @{row.get('reply_author') or '?'} ({_num(row.get('reply_author_followers'))} followers, "
          f"{_num(row.get('reply_likes'))} likes, {_delay(row.get('reply_time_diff_seconds'))} after, id {row.get('reply_id')}):")
    print(_wrap(reply))
    print(f"quality {_fmt(row.get('quality_score'), '.3f')} · English {_fmt(row.get('lang_confidence'))} · "
          f"toxicity {_fmt(row.get('toxicity'), '.3f')} · similarity {_fmt(row.get('similarity'))}", flush=True)


def _ask_prefilled(prompt: str, text: str) -> str | None:
    """Like :func:`_ask`; in a terminal with readline the line starts as ``text``, ready to edit."""
    readline = sys.modules.get("readline")
    if readline is None or not sys.stdin.isatty():
        return _ask(prompt)
    readline.set_startup_hook(lambda: readline.insert_text(text))
    try:
        return _ask(prompt)
    finally:
        readline.set_startup_hook(None)


def review_loop(store: ReviewStore, candidates: pd.DataFrame, limit: int | None, reviewer: str | None,
                min_chars: int, max_chars: int) -> int:
    """The interactive session. Returns the exit code. An edited reply must have
    ``min_chars``-``max_chars`` characters (the caller passes ``validation.min_chars`` / ``max_chars``)."""
    total = len(candidates)
    progress = store.progress(candidates)
    reviewed = progress["reviewed"]
    pending = store.pending(candidates)
    if pending.empty:
        print(f"Nothing to review: {reviewed}/{total} reviewed.")
        return 0
    print(f"{reviewed}/{total} reviewed, {len(pending)} pending. Keys: {KEYS_HELP}.", flush=True)
    session = {"keep": 0, "reject": 0, "edit": 0, "skip": 0}
    code = 0
    stop = False
    for n, row in enumerate(pending.to_dict(orient="records")):
        if limit is not None and n >= limit:
            print(f"\nReached --limit {limit}.")
            break
        show_pair(row, reviewed, total)
        while True:
            try:
                answer = _ask(f"{KEYS_HELP} > ")
            except KeyboardInterrupt:
                answer, code = None, 130
            if answer is None:
                print("\nEnd of input: quitting (every decision so far is saved).")
                stop = True
                break
            key = answer.strip().lower()[:1]
            if key == "q":
                stop = True
                break
            if key == "s":
                session["skip"] += 1
                break
            decision, edited = {"k": "keep", "r": "reject", "e": "edit"}.get(key), None
            if decision is None:
                print(f"Unknown key {answer.strip()!r}. {KEYS_HELP}")
                continue
            if decision == "edit":
                current = str(row.get("reply_clean") or row.get("reply") or "")
                try:
                    edited = _ask_prefilled("New reply text (one line; empty cancels): ", current)
                except KeyboardInterrupt:
                    edited = None
                if edited is None or not edited.strip():
                    print("Edit cancelled.")
                    if edited is None:
                        stop = True
                        break
                    continue
                edited = edited.strip()
                if has_url(edited):
                    print("Edited text contains a URL; training replies must not. Edit cancelled.")
                    continue
                if not min_chars <= len(edited) <= max_chars:
                    print(f"Edited text has {len(edited)} characters; replies need {min_chars}-{max_chars}. "
                          "Edit cancelled.")
                    continue
            try:
                store.record(str(row["reply_id"]), decision, edited_reply=edited, reviewer=reviewer)
            except ReviewError as exc:
                print(f"Not saved: {exc}")
                continue
            session[decision] += 1
            reviewed += 1
            print(f"saved: {decision} ({reviewed}/{total} reviewed)", flush=True)
            break
        if stop:
            break
    left = total - reviewed
    print(f"\nSession: {session['keep']} kept, {session['edit']} edited, {session['reject']} rejected, "
          f"{session['skip']} skipped. {reviewed}/{total} reviewed, {left} pending."
          + (" Run `replyassets review` again to continue." if left else ""), flush=True)
    return code


def run(args: argparse.Namespace) -> int:
    from replyassets.settings import get_settings

    settings = get_settings()
    target = Path(args.db) if args.db else db.storage_from_settings(settings)
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        candidates = load_candidates(target, settings.paths.schema_name, settings)
        store = ReviewStore(target)
        if args.export:
            res = store.export_csv(candidates, args.export)
            print(f"wrote {res['rows']} candidates ({res['decided']} already decided) to {res['path']}")
            return 0
        if args.import_csv:
            res = store.import_csv(args.import_csv, candidates=candidates, reviewer=args.reviewer)
            print(f"{res['rows']} rows: {res['applied']} applied, {res['unchanged']} unchanged, "
                  f"{res['skipped_blank']} without a decision, {len(res['bad'])} invalid")
            for bad in res["bad"][:50]:
                print(f"  line {bad['line']} (reply_id {bad['reply_id'] or '-'}): {'; '.join(bad['reasons'])}")
            progress = store.progress(candidates)
            print(f"{progress['reviewed']}/{progress['candidates']} reviewed")
            return 1 if res["bad"] else 0
        if sys.stdin.isatty():
            # Ctrl-C must end an interactive session cleanly even when a parent started us
            # with SIGINT ignored (a shell's background job does; Python then installs no
            # KeyboardInterrupt handler and the key would do nothing).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                import readline  # noqa: F401  (line editing for the edit prompt)
            except ImportError:
                pass
        reviewer = args.reviewer or _default_reviewer()
        return review_loop(store, candidates, args.limit, reviewer,
                           settings.validation.min_chars, settings.validation.max_chars)
    except ReviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _default_reviewer() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "review",
        help="review pending pairs (keep / reject / edit) in rank order",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: the settings' storage)")
    p.add_argument("--limit", type=int, default=None, help="show at most N pairs this session")
    p.add_argument("--reviewer", default=None, help="name stored with each decision (default: the OS user)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--export", type=Path, metavar="CSV", help="write every candidate and its decision to CSV")
    g.add_argument("--import", dest="import_csv", type=Path, metavar="CSV", help="apply decisions from a CSV")
    p.set_defaults(func=run)
