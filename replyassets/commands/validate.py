"""``replyassets validate FILE``: validate normalized pairs (JSONL) and print every row.

Each output line is one input row (all PAIR_COLUMNS, nulls for fields the row lacked)
plus ``tweet_clean``, ``reply_clean``, ``lang_confidence``, ``toxicity``,
``meaningful_words``, ``generic_ratio``, ``reply_chars``, ``valid`` (bool) and ``reasons``
(a list of failed rule codes, empty when valid). Rows missing required fields are not an
error: they fail ``missing_fields`` (and whatever else they fail). A line that is not a JSON
object is an error naming the file and line (exit code 2). ``FILE`` may be ``-`` for stdin.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import pandas as pd

from replyassets.core.jsonl import JSONLError, read_objects


def read_jsonl(path: str) -> pd.DataFrame:
    records = read_objects(path)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _jsonable(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def rows_as_json(df: pd.DataFrame):
    columns = list(df.columns)
    for row in df.itertuples(index=False, name=None):
        rec = {c: _jsonable(v) for c, v in zip(columns, row)}
        rec["reasons"] = [r for r in (rec.get("reasons") or "").split(",") if r]
        yield json.dumps(rec, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    from replyassets.core.validate import validate_pairs, validation_funnel
    from replyassets.scorers.language import LanguageScorer
    from replyassets.scorers.toxicity import make_toxicity_scorer
    from replyassets.settings import load_settings

    try:
        pairs = read_jsonl(args.file)
    except JSONLError as exc:
        print(f"replyassets validate: {exc}", file=sys.stderr)
        return 2
    settings = load_settings(args.profile).validation
    kwargs = {}
    if args.toxicity == "detoxify":
        kwargs = {"checkpoint": args.detoxify_checkpoint,
                  "huggingface_config_path": args.detoxify_config, "device": args.device}
    elif args.detoxify_checkpoint or args.detoxify_config:
        print("replyassets validate: --detoxify-* options need --toxicity detoxify", file=sys.stderr)
        return 2
    try:
        toxicity = make_toxicity_scorer(args.toxicity, **kwargs)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"replyassets validate: {exc}", file=sys.stderr)
        return 2
    language = LanguageScorer.from_settings(settings)
    result = validate_pairs(pairs, settings, language, toxicity)
    out = sys.stdout
    for line in rows_as_json(result):
        out.write(line + "\n")
    out.flush()
    if args.summary:
        funnel = validation_funnel(result)
        print(json.dumps({k: funnel[k] for k in ("rows_in", "valid", "rejected", "rejected_by_rule")}),
              file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="validate normalized pairs (JSONL) and print each row with valid/reasons/scores"
    )
    p.add_argument("file", help="normalized pairs, one JSON object per line ('-' for stdin)")
    p.add_argument("--toxicity", default="profanity-check", choices=["profanity-check", "local", "detoxify"],
                   help="toxicity scorer (default: the offline profanity-check classifier)")
    p.add_argument("--detoxify-checkpoint", default=None, help="local Detoxify .ckpt (offline use)")
    p.add_argument("--detoxify-config", default=None,
                   help="folder with the Hugging Face config and tokenizer for the checkpoint")
    p.add_argument("--device", default="cpu", help="torch device for Detoxify (default cpu)")
    p.add_argument("--profile", default=None, help="settings profile (default: REPLYASSETS_PROFILE or local)")
    p.add_argument("--summary", action="store_true", help="also print the funnel as JSON on stderr")
    p.set_defaults(func=run)
