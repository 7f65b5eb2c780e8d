"""Global deduplication of validated pairs: exact, then semantic (the seed's greedy rule).

The seed (see ``seed_greedy_dedup``) walked the rows from the highest engagement down and
kept a row when its cosine similarity to *every* row kept so far was below 0.9. ``dedupe``
keeps exactly the same rows on the same embeddings, fast:

Walk order
    ``reply_likes`` desc, ``reply_retweets`` desc, ``reply_author_followers`` desc, then
    ``reply_id`` asc as the deterministic tie-break (missing numbers sort last).

Exact dedup
    On a normalized text key: Unicode NFKC, casefold, punctuation removed, whitespace
    collapsed (emoji kept). The first row of each key in walk order survives; the others get
    ``dup_kind="exact"``, ``similarity=1.0``. Only exact survivors enter the semantic step.

Similarity, exactly
    Embeddings are L2-normalized to float32 once (``normalize_rows``); the similarity of two
    rows is their dot product. A row is a duplicate when the similarity is ``>= threshold``
    (the seed kept it only when strictly below). Matrix products in float32 are within
    ``_BAND`` (1e-4, far above the 384 * 2**-24 rounding bound) of the true value; any pair
    whose fast value lies inside that band around the threshold is decided on the correctly
    rounded float64 dot product (``math.fsum`` of exact float32 products). Every
    implementation here, the reference loop included, decides with the same rule, so the
    keep sets are identical, ties at the threshold included.

``exact`` method (default up to ``ann_threshold_rows`` rows)
    Blocks of candidates in walk order: one matrix product against every row kept so far
    drops the rows that duplicate an earlier block's survivor; one within-block product
    gives the duplicate pairs inside the block, resolved in walk order over that sparse
    graph. Same quadratic work as the seed, done by BLAS instead of one row at a time.
    Measured (benchmarks/dedup.py, 2 shared cores): 2.5x / 3.0x / 6.6x faster than the
    seed's loop vectorized per row at 2,000 / 10,000 / 20,000 rows, 48x faster than the
    seed's per-pair loop as written at 2,000.

``lsh`` method (approximate candidates, exact verification; default above the limit)
    Random-hyperplane LSH (SimHash): ``L`` tables of ``b`` sign bits; two rows at angle
    ``t`` share a table's key with probability ``(1 - t/pi)**b``. ``b`` ~ log2(n) keeps
    random collisions near ``n/2`` per table, ``L`` is chosen so a pair *exactly at* the
    threshold is found with probability ``lsh_recall`` (default 0.995; pairs above the
    threshold more likely). Colliding pairs are screened by the Hamming distance of a
    separate 256-bit sketch (a pair at the threshold passes with probability > 1 - 1e-9),
    then verified exactly as above, and the greedy rule runs on the verified pair graph.
    Trade-off: a true duplicate pair the tables miss is treated as "not similar"; that
    can keep a row the seed would drop (and, through it, change what that row would have
    dropped). Recall is data-independent and measured in ``benchmarks/dedup.py``: 0.9996
    of true pairs at 100,000 and 1,000,000 rows (1,000,000 in 168 s through ``dedupe``);
    at 10,000 and 20,000 rows one row's decision differed from the exact keep set
    (``lsh_recall=0.9999`` made them identical, with about 1.7x the tables).
    usearch (HNSW) was measured first and rejected for this path: on 2 cores it built a
    20,000 x 384 index in 10 s and 100,000 in 104 s, far from 1,000,000 in 5 minutes.

Rows with ``valid == False`` (when the column exists) stay out of dedup: ``kept=False``,
``dup_kind=None``. Every input row comes back, in input order, with ``kept`` (bool),
``duplicate_of`` (the surviving, kept row's ``reply_id`` or None: an exact duplicate of a row
that semantic dedup dropped points at that row's survivor and carries its similarity),
``similarity`` (1.0 for exact, the cosine for semantic, None otherwise) and ``dup_kind`` ("exact" | "semantic" | None).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

_BAND = 1e-4
ORDER_COLUMNS = ("reply_likes", "reply_retweets", "reply_author_followers")
DEDUP_COLUMNS = ("kept", "duplicate_of", "similarity", "dup_kind")
Method = Literal["auto", "exact", "lsh"]


# --------------------------------------------------------------------------- similarity


def normalize_rows(embeddings: np.ndarray, chunk_rows: int = 65536) -> np.ndarray:
    """float32 copy with unit-length rows (zero rows stay zero), norms taken in float64."""
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array, got shape {x.shape}")
    out = np.empty(x.shape, dtype=np.float32)
    for s in range(0, x.shape[0], chunk_rows):
        c = x[s:s + chunk_rows].astype(np.float64)
        if not np.isfinite(c).all():
            raise ValueError("embeddings contain NaN or infinite values")
        norms = np.linalg.norm(c, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out[s:s + chunk_rows] = c / norms
    return out


def exact_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correctly rounded dot product of two float32 vectors (order-independent)."""
    return math.fsum(np.multiply(a.astype(np.float64), b.astype(np.float64)).tolist())


def _is_dup(approx: np.ndarray, left: np.ndarray, right: np.ndarray, threshold: float) -> np.ndarray:
    """Decide ``sim >= threshold`` for pairs whose fast float32 similarity is ``approx``.

    ``left``/``right`` are the pairs' vectors (rows aligned with ``approx``); only pairs
    inside the rounding band are recomputed exactly.
    """
    approx = np.asarray(approx, dtype=np.float64)
    out = approx >= threshold
    band = np.flatnonzero(np.abs(approx - threshold) <= _BAND)
    for k in band:
        out[k] = exact_similarity(left[k], right[k]) >= threshold
    return out


# --------------------------------------------------------------------------- reference


def seed_greedy_dedup(embeddings: np.ndarray, order: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    """The seed's loop, one row at a time: returns kept row indices, in walk order.

    ``for i in order: keep i if similarity(i, j) < threshold for every kept j``. Each row is
    compared with all kept rows by one numpy matrix-vector product (the fastest faithful
    form of the seed's per-pair loop); decisions use the shared exact rule.
    """
    x = normalize_rows(embeddings)
    order = np.asarray(order, dtype=np.int64)
    kept_vecs = np.empty((len(order), x.shape[1]), dtype=np.float32)
    keep: list[int] = []
    for i in order:
        e = x[i]
        k = len(keep)
        if k:
            sims = kept_vecs[:k] @ e
            near = np.flatnonzero(sims >= threshold - _BAND)
            if near.size and _is_dup(sims[near], kept_vecs[near], np.broadcast_to(e, (near.size, e.size)), threshold).any():
                continue
        kept_vecs[k] = e
        keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


# --------------------------------------------------------------------------- greedy core


@dataclass
class SemanticResult:
    """Outcome of the greedy rule on rows already in walk order (positions 0..n-1)."""

    kept: np.ndarray  # bool (n,)
    dup_of: np.ndarray  # int64 (n,), position of the surviving row or -1
    similarity: np.ndarray  # float64 (n,), NaN when kept
    method: str = "exact"
    info: dict = field(default_factory=dict)
    pairs: tuple[np.ndarray, np.ndarray] | None = None  # verified duplicate pairs (lsh)


def _resolve_graph(m: int, ei: np.ndarray, ej: np.ndarray, sims: np.ndarray,
                   pre_sim: np.ndarray | None = None, pre_ref: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy over a verified pair graph on walk positions 0..m-1 (``ei < ej``).

    A row is kept iff it has no earlier kept neighbour; ``pre_sim``/``pre_ref`` (optional)
    give, per row, its best duplicate among rows kept *before* this graph (NaN when none):
    such a row is dropped whatever the graph says. A dropped row points at its most similar
    kept earlier row (earliest on ties; rows kept before the graph come first). Returns
    (kept, dup_ref, sim): ``dup_ref`` is ``pre_ref[j]`` when the best survivor came from
    before the graph, else ``-(position + 2)`` of the in-graph survivor; -1 when kept.
    """
    kept = np.ones(m, dtype=bool)
    dup_ref = np.full(m, -1, dtype=np.int64)
    sim = np.full(m, np.nan)
    if pre_sim is not None:
        hit = ~np.isnan(pre_sim)
        kept[hit] = False
        dup_ref[hit] = pre_ref[hit]
        sim[hit] = pre_sim[hit]
    if ei.size == 0:
        return kept, dup_ref, sim
    o = np.lexsort((ei, ej))
    ei, ej, sims = ei[o], ej[o], sims[o]
    starts = np.flatnonzero(np.r_[True, ej[1:] != ej[:-1]])
    ends = np.r_[starts[1:], ej.size]
    for s, e in zip(starts.tolist(), ends.tolist()):
        j = int(ej[s])
        preds = ei[s:e]
        alive = np.flatnonzero(kept[preds])
        if alive.size == 0:
            continue
        best = alive[int(np.argmax(sims[s:e][alive]))]  # argmax: earliest on ties
        v = float(sims[s + best])
        if kept[j] or v > sim[j]:
            dup_ref[j] = -(int(preds[best]) + 2)
            sim[j] = v
        kept[j] = False
    return kept, dup_ref, sim


def greedy_exact(x: np.ndarray, threshold: float, block_size: int = 4096,
                 col_tile: int = 8192) -> SemanticResult:
    """Exact greedy on normalized rows ``x`` given in walk order, by blocks of matmuls
    (``block_size`` candidates against tiles of ``col_tile`` kept rows at a time).

    Only rows whose tile maximum reaches the threshold band are scanned for pairs.
    (A sound Cauchy-Schwarz prefilter on the first principal coordinates was tried and
    measured slower here: on 384-d embeddings too many rows reach its bound.)
    """
    n, d = x.shape
    kept = np.ones(n, dtype=bool)
    dup_of = np.full(n, -1, dtype=np.int64)
    sim = np.full(n, np.nan)
    kept_vecs = np.empty((n, d), dtype=np.float32)
    kept_pos = np.empty(n, dtype=np.int64)
    k = 0
    lo = threshold - _BAND
    for s in range(0, n, block_size):
        xb = x[s:s + block_size]
        b = xb.shape[0]
        pre_sim = np.full(b, np.nan)
        pre_ref = np.full(b, -1, dtype=np.int64)
        if k:
            rows_l, cols_l, vals_l = [], [], []
            for c0 in range(0, k, col_tile):  # tiles keep the product matrix small
                c1 = min(k, c0 + col_tile)
                full = xb @ kept_vecs[c0:c1].T
                hit = np.flatnonzero(full.max(axis=1) >= lo)
                if hit.size == 0:
                    continue
                sims = full[hit]
                r, c = np.nonzero(sims >= lo)
                rows_l.append(hit[r])
                cols_l.append(c + c0)
                vals_l.append(sims[r, c])
            if rows_l:
                rows, cols, vals = np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(vals_l)
                ok = _is_dup(vals, xb[rows], kept_vecs[cols], threshold)
                rows, cols, vals = rows[ok], cols[ok], vals[ok]
                if rows.size:
                    # best kept row per dropped row: highest similarity, earliest on ties
                    o = np.lexsort((cols, -vals, rows))
                    rows, cols, vals = rows[o], cols[o], vals[o]
                    first = np.r_[True, rows[1:] != rows[:-1]]
                    pre_sim[rows[first]] = vals[first]
                    pre_ref[rows[first]] = kept_pos[cols[first]]
        ii = jj = np.empty(0, np.int64)
        vals = np.empty(0)
        if b > 1:
            within = xb @ xb.T
            upper = np.triu(within >= lo, 1)
            hit = np.flatnonzero(upper.any(axis=1))
            if hit.size:
                r, c = np.nonzero(upper[hit])
                ii, jj = hit[r], c
                vals = within[ii, jj]
                ok = _is_dup(vals, xb[ii], xb[jj], threshold)
                ii, jj, vals = ii[ok], jj[ok], vals[ok].astype(np.float64)
        bk, bref, bsim = _resolve_graph(b, ii, jj, vals, pre_sim, pre_ref)
        dropped = np.flatnonzero(~bk)
        ref = bref[dropped]
        kept[s + dropped] = False
        dup_of[s + dropped] = np.where(ref <= -2, s + (-ref - 2), ref)
        sim[s + dropped] = bsim[dropped]
        keep_local = np.flatnonzero(bk)
        m = keep_local.size
        kept_vecs[k:k + m] = xb[keep_local]
        kept_pos[k:k + m] = s + keep_local
        k += m
    return SemanticResult(kept, dup_of, sim, "exact", {"block_size": block_size})


# --------------------------------------------------------------------------- LSH path


def lsh_parameters(n: int, threshold: float, recall: float) -> tuple[int, int]:
    """(bits per table, tables) so a pair at ``threshold`` collides with prob >= recall."""
    p = 1.0 - math.acos(max(-1.0, min(1.0, threshold))) / math.pi
    bits = int(min(24, max(8, math.ceil(math.log2(max(n, 2))))))
    hit = p ** bits
    tables = math.ceil(math.log(1.0 - recall) / math.log(1.0 - hit))
    return bits, max(1, tables)


def _pairs_in_runs(sorted_idx: np.ndarray, keys_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (a, b) pairs of indices that share a key (runs in the sorted key array)."""
    n = keys_sorted.size
    starts = np.flatnonzero(np.r_[True, keys_sorted[1:] != keys_sorted[:-1]])
    lengths = np.diff(np.r_[starts, n])
    multi = lengths > 1
    starts, lengths = starts[multi], lengths[multi]
    if starts.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    # every element of a run pairs with the later elements of its run
    run_of = np.repeat(np.arange(starts.size), lengths)
    pos = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    elem = np.repeat(starts, lengths) + pos
    cnt = lengths[run_of] - 1 - pos
    left = np.repeat(elem, cnt)
    off = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    right = left + 1 + off
    return sorted_idx[left].astype(np.int64), sorted_idx[right].astype(np.int64)


def similar_pairs_lsh(x: np.ndarray, threshold: float, recall: float = 0.995, seed: int = 0,
                      chunk_rows: int = 16384, sketch_bits: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Pairs ``(i < j, sim)`` with ``sim >= threshold`` found by SimHash LSH, verified exactly."""
    n, d = x.shape
    bits, tables = lsh_parameters(n, threshold, recall)
    rng = np.random.default_rng(seed)
    planes = rng.standard_normal((d, bits * tables + sketch_bits)).astype(np.float32)
    nbytes = (bits + 7) // 8
    keys = np.empty((tables, n), dtype=np.uint32)
    sketch = np.empty((n, sketch_bits // 64), dtype=np.uint64)
    for s in range(0, n, chunk_rows):
        proj = x[s:s + chunk_rows] @ planes
        signs = proj > 0
        band = signs[:, : bits * tables].reshape(-1, tables, bits)
        packed = np.packbits(band, axis=-1, bitorder="little")  # (c, tables, nbytes)
        padded = np.zeros((packed.shape[0], tables, 4), dtype=np.uint8)
        padded[:, :, :nbytes] = packed
        keys[:, s:s + chunk_rows] = padded.view("<u4")[:, :, 0].T
        sk = np.packbits(signs[:, bits * tables:], axis=-1, bitorder="little")
        sketch[s:s + chunk_rows] = sk.view("<u8")
    # a pair at the threshold has Hamming ~ Binomial(m, q): accept up to mean + 6 sd
    q = math.acos(max(-1.0, min(1.0, threshold))) / math.pi
    ham_max = sketch_bits * q + 6.0 * math.sqrt(sketch_bits * q * (1 - q))
    found: list[np.ndarray] = []
    raw = 0
    for t in range(tables):
        order = np.argsort(keys[t], kind="stable")
        a, b = _pairs_in_runs(order, keys[t][order])
        raw += a.size
        for c in range(0, a.size, 1 << 22):
            aa, bb = a[c:c + (1 << 22)], b[c:c + (1 << 22)]
            ham = np.bitwise_count(sketch[aa] ^ sketch[bb]).sum(axis=1, dtype=np.int64)
            keep = ham <= ham_max
            lo_, hi_ = np.minimum(aa[keep], bb[keep]), np.maximum(aa[keep], bb[keep])
            found.append(lo_ * n + hi_)
        if len(found) > 32:  # a big cluster shows up in every table: keep memory at unique pairs
            found = [np.unique(np.concatenate(found))]
    codes = np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)
    ei, ej = codes // n, codes % n
    sims = np.empty(ei.size, dtype=np.float64)
    for c in range(0, ei.size, 1 << 20):
        sims[c:c + (1 << 20)] = np.einsum("ij,ij->i", x[ei[c:c + (1 << 20)]], x[ej[c:c + (1 << 20)]])
    ok = np.flatnonzero(sims >= threshold - _BAND)
    ok = ok[_is_dup(sims[ok], x[ei[ok]], x[ej[ok]], threshold)]
    info = {"lsh_bits": bits, "lsh_tables": tables, "lsh_raw_pairs": int(raw),
            "lsh_screened_pairs": int(codes.size), "lsh_verified_pairs": int(ok.size)}
    return ei[ok], ej[ok], sims[ok], info


def greedy_lsh(x: np.ndarray, threshold: float, recall: float = 0.995, seed: int = 0) -> SemanticResult:
    """Greedy rule on the LSH pair graph of normalized rows ``x`` in walk order."""
    n = x.shape[0]
    ei, ej, sims, info = similar_pairs_lsh(x, threshold, recall=recall, seed=seed)
    kept, ref, sim = _resolve_graph(n, ei, ej, sims)
    dup_of = np.where(ref <= -2, -ref - 2, -1)
    return SemanticResult(kept, dup_of, sim, "lsh", info, pairs=(ei, ej))


def semantic_greedy(x: np.ndarray, threshold: float = 0.9, method: Method = "auto",
                    ann_threshold_rows: int = 50_000, lsh_recall: float = 0.995,
                    seed: int = 0, block_size: int = 4096) -> SemanticResult:
    """The seed's greedy rule on normalized rows already in walk order."""
    if method == "auto":
        method = "lsh" if x.shape[0] > ann_threshold_rows else "exact"
    if method == "exact":
        return greedy_exact(x, threshold, block_size=block_size)
    if method == "lsh":
        return greedy_lsh(x, threshold, recall=lsh_recall, seed=seed)
    raise ValueError(f"unknown dedup method {method!r} (auto, exact, lsh)")


# --------------------------------------------------------------------------- DataFrame API


def exact_key(text: object) -> str:
    """Normalized text for exact dedup: NFKC, casefold, no punctuation, single spaces."""
    raw = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    t = unicodedata.normalize("NFKC", raw).casefold()
    stripped = "".join(ch for ch in t if not unicodedata.category(ch).startswith("P"))
    key = " ".join(stripped.split())
    return key or " ".join(t.split())


def walk_order(df: pd.DataFrame) -> np.ndarray:
    """Row positions from highest engagement down (see module docstring for the keys)."""
    cols = {}
    for c in ORDER_COLUMNS:
        v = pd.to_numeric(df[c], errors="coerce") if c in df else pd.Series(np.nan, index=df.index)
        cols[c] = v.astype("float64").fillna(-np.inf).to_numpy()
    rid = df["reply_id"].astype("string").fillna("").to_numpy(dtype=object)
    frame = pd.DataFrame({"l": -cols["reply_likes"], "r": -cols["reply_retweets"],
                          "f": -cols["reply_author_followers"], "id": rid, "pos": np.arange(len(df))})
    return frame.sort_values(["l", "r", "f", "id", "pos"], kind="mergesort")["pos"].to_numpy()


def dedupe(df: pd.DataFrame, embeddings: np.ndarray | None, threshold: float = 0.9,
           text_col: str = "reply_clean", *, method: Method = "auto",
           ann_threshold_rows: int = 50_000, lsh_recall: float = 0.995, seed: int = 0,
           block_size: int = 4096) -> pd.DataFrame:
    """Every row of ``df`` (input order, same index) plus kept/duplicate_of/similarity/dup_kind.

    ``embeddings`` has one row per row of ``df`` or one per *valid* row (in ``df`` order);
    rows of invalid pairs are ignored. ``None`` skips the semantic step (exact dedup only).
    """
    missing = [c for c in (text_col, "reply_id") if c not in df.columns]
    if missing:
        raise ValueError(f"dedupe needs column(s) {missing}; got {list(df.columns)}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    n = len(df)
    valid = df["valid"].fillna(False).astype(bool).to_numpy() if "valid" in df else np.ones(n, bool)
    valid_pos = np.flatnonzero(valid)
    x = None
    if embeddings is not None:
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or emb.shape[0] not in (n, valid_pos.size):
            raise ValueError(f"embeddings shape {emb.shape} does not match {n} rows "
                             f"({valid_pos.size} valid)")
        full = emb if emb.shape[0] == n else None
        x_valid = normalize_rows(full[valid_pos] if full is not None else emb)
    ids = df["reply_id"].astype("string").to_numpy(dtype=object)
    kept = np.zeros(n, dtype=bool)
    dup_of = np.full(n, None, dtype=object)
    sim = np.full(n, np.nan)
    kind = np.full(n, None, dtype=object)

    sub = df.iloc[valid_pos]
    order_local = walk_order(sub) if valid_pos.size else np.empty(0, np.int64)
    walk = valid_pos[order_local]  # df positions in walk order
    keys = [exact_key(t) for t in df[text_col].to_numpy(dtype=object)[walk]]
    first: dict[str, int] = {}
    survivors: list[int] = []  # indices into walk
    exact_pairs: list[tuple[int, int]] = []  # (df position, df position of its exact owner)
    for w, key in enumerate(keys):
        owner = first.setdefault(key, w)
        if owner == w:
            survivors.append(w)
        else:
            p = walk[w]
            dup_of[p], sim[p], kind[p] = ids[walk[owner]], 1.0, "exact"
            exact_pairs.append((p, walk[owner]))
    surv = np.asarray(survivors, dtype=np.int64)
    kept[walk[surv]] = True
    if embeddings is not None and surv.size:
        x = x_valid[order_local[surv]]
        res = semantic_greedy(x, threshold, method=method, ann_threshold_rows=ann_threshold_rows,
                              lsh_recall=lsh_recall, seed=seed, block_size=block_size)
        pos = walk[surv]
        drop = np.flatnonzero(~res.kept)
        kept[pos[drop]] = False
        dup_of[pos[drop]] = ids[pos[res.dup_of[drop]]]
        sim[pos[drop]] = res.similarity[drop]
        kind[pos[drop]] = "semantic"
        # an exact duplicate of a row that semantic dedup dropped points at the final survivor
        for p, o in exact_pairs:
            if not kept[o]:
                dup_of[p], sim[p] = dup_of[o], sim[o]
    out = df.copy()
    out["kept"] = kept
    out["duplicate_of"] = pd.array(dup_of, dtype="string")
    out["similarity"] = pd.array(np.where(np.isnan(sim), None, sim), dtype="Float64")
    out["dup_kind"] = pd.array(kind, dtype="string")
    return out


def dedup_summary(result: pd.DataFrame) -> dict:
    """Counts for metadata: rows in, valid, kept, exact and semantic duplicates."""
    valid = result["valid"].fillna(False).astype(bool) if "valid" in result else pd.Series(True, index=result.index)
    return {
        "rows": len(result),
        "valid": int(valid.sum()),
        "kept": int(result["kept"].sum()),
        "exact_duplicates": int((result["dup_kind"] == "exact").sum()),
        "semantic_duplicates": int((result["dup_kind"] == "semantic").sum()),
    }
