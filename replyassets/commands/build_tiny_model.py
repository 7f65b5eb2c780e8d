"""``replyassets build-tiny-model OUT --texts FILE.jsonl``: build the tiny local Qwen3 model.

The tokenizer is trained on the texts of FILE.jsonl: each line's ``text`` field, else its
``messages`` contents, else every string value; a line that is not JSON is used as is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_texts(path: Path) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                texts.append(line)
                continue
            if isinstance(row, str):
                texts.append(row)
            elif isinstance(row, dict):
                if isinstance(row.get("text"), str):
                    texts.append(row["text"])
                elif isinstance(row.get("messages"), list):
                    texts.extend(m["content"] for m in row["messages"] if isinstance(m, dict) and isinstance(m.get("content"), str))
                else:
                    texts.extend(v for v in row.values() if isinstance(v, str))
    return texts


def run(args: argparse.Namespace) -> int:
    from replyassets.training.tiny_model import build_tiny_model, tiny_model_hash

    texts: list[str] = []
    for f in args.texts:
        path = Path(f)
        if not path.is_file():
            print(f"error: texts file not found: {path}", file=sys.stderr)
            return 2
        texts.extend(read_texts(path))
    if not texts:
        print("error: no texts found to train the tokenizer on", file=sys.stderr)
        return 2
    out = build_tiny_model(Path(args.out), texts, seed=args.seed, vocab_size=args.vocab_size)
    print(json.dumps({"model_dir": str(out), "sha256": tiny_model_hash(out), "texts": len(texts)}))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("build-tiny-model", help="build the tiny local Qwen3 model + tokenizer")
    p.add_argument("out", help="output folder (replaced if it exists)")
    p.add_argument("--texts", action="append", required=True, help="JSONL/text file to train the tokenizer (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab-size", type=int, default=2000)
    p.set_defaults(func=run)
