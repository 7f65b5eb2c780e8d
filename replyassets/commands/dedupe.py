"""``replyassets dedupe FILE``: deduplicate validated pairs (JSONL) and print every row.

Each output line is the input object unchanged plus ``kept`` (bool), ``duplicate_of`` (the
surviving row's ``reply_id`` or null), ``similarity`` (1.0 for an exact duplicate, the
cosine for a semantic one, null when kept or not considered) and ``dup_kind``
(``"exact"``, ``"semantic"`` or null). Rows with ``valid: false`` are not deduplicated
(``kept: false``, ``dup_kind: null``); rows without ``valid`` count as valid. The text is
``reply_clean`` (falling back to ``reply`` when a row has no ``reply_clean``). Embeddings
come from the configured model (the packaged all-MiniLM-L6-v2 by default, never
downloaded); ``--cache DB`` keeps them in a DuckDB file so a rerun embeds only new texts.
A line that is not a JSON object is an error naming the file and line (exit code 2).
``FILE`` may be ``-`` for stdin.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import pandas as pd

from replyassets.core.jsonl import JSONLError, read_objects


def _frame(records: list[dict]) -> pd.DataFrame:
    def num(r, k):
        v = r.get(k)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    rows = []
    for i, r in enumerate(records):
        text = r.get("reply_clean")
        if not isinstance(text, str):
            text = r.get("reply") if isinstance(r.get("reply"), str) else ""
        rid = r.get("reply_id")
        rows.append({
            "reply_id": str(rid) if rid is not None else f"line-{i + 1}",
            "reply_clean": text,
            "valid": r.get("valid", True) is True,
            "reply_likes": num(r, "reply_likes"),
            "reply_retweets": num(r, "reply_retweets"),
            "reply_author_followers": num(r, "reply_author_followers"),
        })
    return pd.DataFrame(rows, columns=["reply_id", "reply_clean", "valid", "reply_likes",
                                       "reply_retweets", "reply_author_followers"])


def run(args: argparse.Namespace) -> int:
    from replyassets.core.dedup import dedupe
    from replyassets.settings import load_settings

    try:
        records = read_objects(args.file)
    except JSONLError as exc:
        print(f"replyassets dedupe: {exc}", file=sys.stderr)
        return 2
    settings = load_settings(None).dedup
    threshold = args.threshold if args.threshold is not None else settings.similarity_threshold
    if not 0.0 < threshold <= 1.0:
        print(f"replyassets dedupe: --threshold must be in (0, 1], got {threshold}", file=sys.stderr)
        return 2
    frame = _frame(records)
    embeddings = None
    if not args.exact_only and frame["valid"].any():
        from replyassets.scorers.embeddings import (
            CachedEmbedder,
            EmbeddingBackendError,
            SentenceTransformerEmbedder,
        )

        try:
            embedder = SentenceTransformerEmbedder(args.model or settings.embedding_model,
                                                   batch_size=settings.batch_size,
                                                   backend=settings.embedding_backend,
                                                   precision=settings.embedding_precision)
            if args.cache:
                from replyassets.core.embedding_cache import DuckDBEmbeddingCache

                embedder = CachedEmbedder(embedder, DuckDBEmbeddingCache(args.cache))
            embeddings = embedder.encode(frame.loc[frame["valid"], "reply_clean"].tolist())
        except EmbeddingBackendError as exc:  # a backend that cannot run here: say which setting to change
            print(f"replyassets dedupe: {exc}", file=sys.stderr)
            return 2
        if isinstance(embedder, CachedEmbedder):
            print(f"replyassets dedupe: {json.dumps(embedder.stats())}", file=sys.stderr)
    result = dedupe(frame, embeddings, threshold=threshold, method=args.method,
                    ann_threshold_rows=settings.ann_threshold_rows)
    out = sys.stdout
    for rec, kept, dup, sim, kind in zip(records, result["kept"], result["duplicate_of"],
                                         result["similarity"], result["dup_kind"]):
        row = dict(rec)
        row["kept"] = bool(kept)
        row["duplicate_of"] = None if pd.isna(dup) else str(dup)
        row["similarity"] = None if pd.isna(sim) or math.isnan(float(sim)) else round(float(sim), 6)
        row["dup_kind"] = None if pd.isna(kind) else str(kind)
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("dedupe", help="exact + semantic dedup of validated pairs (JSONL)",
                              description=__doc__)
    p.add_argument("file", help="validated pairs as JSONL, or - for stdin")
    p.add_argument("--threshold", type=float, default=None, help="cosine similarity (default from settings, 0.9)")
    p.add_argument("--model", default=None, help="embedding model (default from settings: packaged all-MiniLM-L6-v2)")
    p.add_argument("--cache", default=None, help="DuckDB file for the embedding cache (optional)")
    p.add_argument("--method", choices=["auto", "exact", "lsh"], default="auto")
    p.add_argument("--exact-only", action="store_true", help="skip the semantic step (no model)")
    p.set_defaults(func=run)
