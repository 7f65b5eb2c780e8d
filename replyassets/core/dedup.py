"""Global deduplication of validated pairs: exact, then semantic (the prototype's greedy rule).

The prototype (docs/design.md, "Baselines"; ``seed_greedy_dedup`` is its loop) walked the rows from the highest engagement down and
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
    (the prototype kept it only when strictly below). Matrix products in float32 are within
    ``_BAND`` (1e-4, far above the 384 * 2**-24 rounding bound) of the true value; any pair
    whose fast value lies inside that band around the threshold is decided on the correctly
    rounded float64 dot product (``math.fsum`` of exact float32 products). Every
    implementation here, the reference loop included, decides with the same rule, so the
    keep sets are identical, ties at the threshold included.

``exact`` method (always up to ``ann_threshold_rows`` rows; above, when predicted faster)
    Blocks of candidates in walk order: one screen against every row kept so far drops the
    rows that duplicate an earlier block's survivor; one screen within the block gives the
    duplicate pairs inside it, resolved in walk order over that sparse graph. The screen is
    a float32 matrix product, tile by tile, of *bound rows* (``bound_rows``): each row's
    first k coordinates on the principal axes of the data plus the length of the rest, so
    that the product of two bound rows is ``a1.b1 + |a2||b2| >= a.b`` (Cauchy-Schwarz on the
    tail). A pair whose bound is under ``threshold - _BAND`` cannot be a duplicate; every
    other pair is checked in full. No pair is skipped on a guess, so the keep set is the
    prototype's. k is chosen per input by a cost model on a sampled pass rate
    (``choose_prefilter_dims``): 64-96 of 384 on random vectors, 48-96 on all-MiniLM-L6-v2
    embeddings; the full product (k = d) when the bound would pass too many pairs.
    Measured (``benchmarks/dedup.py``, 2 shared cores, 20,000 rows): ~0.5 s, against
    ~1.3-2.5 s for the full product and ~270 s for the prototype's per-pair loop as written.

``lsh`` method (approximate candidates, exact verification; above the limit, when predicted faster)
    Random-hyperplane LSH (SimHash): ``L`` tables of ``b`` sign bits; two rows at angle
    ``t`` share a table's key with probability ``(1 - t/pi)**b``. ``b`` ~ log2(n) keeps
    random collisions near ``n/2`` per table, ``L`` is chosen so a pair *exactly at* the
    threshold is found with probability ``lsh_recall`` (default 0.995; pairs above the
    threshold more likely). Colliding pairs are screened by the Hamming distance of a
    separate 256-bit sketch (a pair at the threshold passes with probability > 1 - 1e-9),
    then verified exactly as above, and the greedy rule runs on the verified pair graph.
    A bucket holding more than 32 rows (a cluster of near-identical replies: templated spam,
    "Great thread!" variants) is first peeled: its earliest row is paired with the members
    at the threshold, which leave the bucket with it, until it is short; otherwise a cluster
    of m rows would list m(m-1)/2 pairs in every table (a 1,000,000-reply run with clusters
    of thousands needed more than 19 GB; one dense cluster of 10,000 rows among 30,000 now
    takes about 1 s with the exact keep set, replyassets_tests/dedup).
    Trade-off: a true duplicate pair the tables miss is treated as "not similar"; that
    can keep a row the prototype would drop (and, through it, change what that row would have
    dropped). Recall is data-independent and measured in ``benchmarks/dedup.py``: 0.9996
    of true pairs at 100,000 and 1,000,000 rows (1,000,000 in 65-109 s through ``dedupe``);
    at 10,000 and 20,000 rows one row's decision differed from the exact keep set
    (``lsh_recall=0.9999`` made them identical, with about 1.7x the tables).
    usearch (HNSW) was measured first and rejected for this path: on 2 cores it built a
    20,000 x 384 index in 10 s and 100,000 in 104 s, far from 1,000,000 in 5 minutes.
    faiss-cpu 1.15 (IVFFlat, inner product, range_search at the threshold) was measured on
    the benchmark's data: 100,000 rows 13.6 s at recall 0.9962 (nprobe 8) or 19.9 s at
    0.9993 (nprobe 16); 1,000,000 rows 273 s (76 s to train and add, 197 s to search) at
    recall 0.982 with nprobe 8, against 65 s at 0.99955 here, so it was not adopted.

Choosing (``method="auto"``)
    Up to ``ann_threshold_rows`` rows: exact. Above, ``estimate_costs`` predicts both paths'
    seconds (the LSH path's candidate pairs measured on a sample: they depend on how evenly
    the data fills the buckets) and the cheaper runs; the estimates are in the result's
    info (``auto_*``). On random vectors LSH wins from ~150,000 rows (1,000,000: ~100 s
    against ~10 minutes); on all-MiniLM-L6-v2 embeddings of real replies, whose vectors sit
    in a narrow cone, one LSH table lists 10x the random collisions and the exact path
    stays faster at every size measured (200,000 rows: 20 s exact, 106 s LSH).

Rows with ``valid == False`` (when the column exists) stay out of dedup: ``kept=False``,
``dup_kind=None``. Every input row comes back, in input order, with ``kept`` (bool),
``duplicate_of`` (the surviving, kept row's ``reply_id`` or None: an exact duplicate of a row
that semantic dedup dropped points at that row's survivor and carries its similarity),
``similarity`` (1.0 for exact, the cosine for semantic, None otherwise) and ``dup_kind`` ("exact" | "semantic" | None).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

_BAND = 1e-4
ORDER_COLUMNS = ("reply_likes", "reply_retweets", "reply_author_followers")
DEDUP_COLUMNS = ("kept", "duplicate_of", "similarity", "dup_kind")
Method = Literal["auto", "exact", "lsh"]
# one vector per row: an array (one row per row of the frame, or per valid row), or a function
# that embeds a list of texts (called only for the rows the semantic step needs)
Vectors = np.ndarray | Callable[[list], np.ndarray]


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
    """The prototype's loop (docs/design.md, "Baselines"), one row at a time: returns kept row indices, in walk order.

    ``for i in order: keep i if similarity(i, j) < threshold for every kept j``. Each row is
    compared with all kept rows by one numpy matrix-vector product (the fastest faithful
    form of the prototype's per-pair loop); decisions use the shared exact rule.
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


PREFILTER_DIMS = (32, 48, 64, 96, 128, 192)
_VERIFY_CHUNK = 1 << 16  # pairs per gather: two (chunk, d) float32 copies, ~100 MB at d = 384
_SCREEN_MIN_ROWS = 4096  # below this the full product takes a few milliseconds


def principal_basis(x: np.ndarray, max_rows: int = 32768, seed: int = 0) -> np.ndarray:
    """Orthonormal (d, d) float64 basis of the uncentered principal axes of (a sample of)
    the rows, largest first: the first k axes hold nearly as much of the rows' squared
    length as any k axes can. Any orthonormal basis keeps the screen sound; a good one
    makes it sharp."""
    if x.shape[0] > max_rows:
        x = x[np.sort(np.random.default_rng(seed).choice(x.shape[0], max_rows, replace=False))]
    x32 = np.asarray(x, dtype=np.float32)
    w, v = np.linalg.eigh((x32.T @ x32).astype(np.float64))
    return v[:, np.argsort(w)[::-1]]


def bound_rows(x: np.ndarray, basis: np.ndarray, k: int) -> np.ndarray:
    """(n, k + 1) float32 rows whose dot products bound the true similarities from above.

    Row ``a`` becomes ``[a1, |a2|]``: ``a1`` its first ``k`` coordinates in ``basis``
    (orthonormal), ``|a2|`` the length of the rest, ``sqrt(|a|^2 - |a1|^2)`` in float64,
    rounded up. For rows ``a``, ``b``: ``a.b = a1.b1 + a2.b2 <= a1.b1 + |a2| |b2|``
    (Cauchy-Schwarz on the tail), which is exactly the dot product of the two bound rows, so
    one matrix product screens every pair. Rounding (float64 rotation and norms, float32
    storage, a float32 product over k + 1 terms: under 2e-5 for unit rows) stays far inside
    ``_BAND``.
    """
    out = np.empty((x.shape[0], k + 1), dtype=np.float32)
    q = np.ascontiguousarray(basis[:, :k])
    for s in range(0, x.shape[0], 65536):
        c = x[s:s + 65536].astype(np.float64)
        y = c @ q
        tail2 = np.einsum("ij,ij->i", c, c) - np.einsum("ij,ij->i", y, y)
        out[s:s + 65536, :k] = y
        out[s:s + 65536, k] = np.sqrt(np.maximum(tail2, 0.0) + 1e-12) * (1 + 1e-6)
    return out


def choose_prefilter_dims(x: np.ndarray, basis: np.ndarray, threshold: float,
                          sample_rows: int = 512, seed: int = 1) -> tuple[int, dict]:
    """Pick the bound's width k with a cost model and the pass rate measured on a sample.

    Cost per pair in nanoseconds, measured on this project's 2-core AVX2 machine
    (``benchmarks/dedup.py``): ~0.25 + k/75 for the float32 product and its scan
    (5.4 at k = 384, 1.2 at k = 64), plus ~2,000 per pair that passes the bound (both
    rows gathered and checked in full). Returns (k, info); k == d means no prefilter: the
    full product decides directly (embeddings whose bound is too weak fall back to it).
    """
    n, d = x.shape
    info: dict = {}
    if n < _SCREEN_MIN_ROWS or d <= PREFILTER_DIMS[0]:
        return d, info
    rng = np.random.default_rng(seed)
    kmax = max(k for k in PREFILTER_DIMS if k < d)
    q = basis[:, :kmax].astype(np.float32)
    # drawn apart from the basis sample (another seed): rows the basis was fitted on look
    # better than the rest, so a sample made of them would underestimate the pass rate
    a = x[rng.choice(n, sample_rows, replace=False)].astype(np.float32)
    b = x[rng.choice(n, min(n, 8 * sample_rows), replace=False)].astype(np.float32)
    ya, yb = a @ q, b @ q
    na, nb = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
    ca, cb = np.cumsum(ya ** 2, axis=1), np.cumsum(yb ** 2, axis=1)
    lo = threshold - _BAND
    best_k, best_cost = d, 0.25 + d / 75.0
    head = np.zeros((a.shape[0], b.shape[0]), dtype=np.float32)
    bound = np.empty_like(head)
    ks = [k for k in PREFILTER_DIMS if k < d]
    prev = 0
    for i, k in enumerate(ks):
        head += ya[:, prev:k] @ yb[:, prev:k].T
        prev = k
        ta = np.sqrt(np.maximum(na - ca[:, k - 1], 0))
        tb = np.sqrt(np.maximum(nb - cb[:, k - 1], 0))
        np.multiply(ta[:, None], tb[None, :], out=bound)
        bound += head
        rate = float(np.count_nonzero(bound >= lo)) / bound.size
        cost = 0.25 + (k + 1) / 75.0 + 2000.0 * rate
        info[f"pass_rate_k{k}"] = round(rate, 7)
        if cost < best_cost:
            best_k, best_cost = k, cost
        # a wider k costs at least its extra product; once that exceeds what passing pairs
        # cost at this k, no wider k can be cheaper
        if i + 1 < len(ks) and 2000.0 * rate <= (ks[i + 1] - k) / 75.0:
            break
    return best_k, info


def _screen(a: np.ndarray, b: np.ndarray, lo: float, upper_only: bool = False,
            row_chunk: int = 1024, col_tile: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) with ``a[i] . b[j] >= lo`` in float32, tile by tile (a tile's product
    stays in cache). ``upper_only`` (``a`` is ``b``): only j > i, lower tiles skipped."""
    rs, cs = [], []
    for r0 in range(0, a.shape[0], row_chunk):
        ar = a[r0:r0 + row_chunk]
        for c0 in range(r0 if upper_only else 0, b.shape[0], col_tile):
            p = ar @ b[c0:c0 + col_tile].T
            f = np.flatnonzero(p >= lo)
            if f.size:
                rs.append(f // p.shape[1] + r0)
                cs.append(f % p.shape[1] + c0)
    if not rs:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    r, c = np.concatenate(rs).astype(np.int64), np.concatenate(cs).astype(np.int64)
    if upper_only:
        keep = c > r
        r, c = r[keep], c[keep]
    return r, c


def _verified(xa: np.ndarray, xb: np.ndarray, rows: np.ndarray, cols: np.ndarray,
              threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate pairs ``(xa[rows], xb[cols])`` that are duplicates, with similarities."""
    keep_r, keep_c, keep_v = [], [], []
    for s in range(0, rows.size, _VERIFY_CHUNK):
        r, c = rows[s:s + _VERIFY_CHUNK], cols[s:s + _VERIFY_CHUNK]
        a, b = xa[r], xb[c]
        sims = np.einsum("ij,ij->i", a, b).astype(np.float64)
        near = np.flatnonzero(sims >= threshold - _BAND)
        ok = near[_is_dup(sims[near], a[near], b[near], threshold)]
        keep_r.append(r[ok])
        keep_c.append(c[ok])
        keep_v.append(sims[ok])
    if not keep_r:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    return np.concatenate(keep_r), np.concatenate(keep_c), np.concatenate(keep_v)


def greedy_exact(x: np.ndarray, threshold: float, block_size: int = 4096,
                 col_tile: int = 4096, prefilter_dims: int | str | None = "auto",
                 row_chunk: int = 1024) -> SemanticResult:
    """Exact greedy on normalized rows ``x`` given in walk order.

    Blocks of ``block_size`` rows in walk order: one screen against every row kept so far
    (tiles of ``col_tile``) drops the rows that duplicate an earlier block's survivor; one
    screen within the block gives the duplicate pairs inside it, resolved in walk order
    over that sparse graph. ``prefilter_dims``: "auto" (``choose_prefilter_dims``), an int
    k (screen with ``bound_rows`` on the first k principal coordinates; every pair that
    passes is checked in full), or None (screen with the full product). Every setting gives
    the same keep set: the bound never rejects a pair at or above the threshold.
    """
    n, d = x.shape
    info: dict = {"block_size": block_size}
    basis = None
    if prefilter_dims == "auto" and (n < _SCREEN_MIN_ROWS or d <= PREFILTER_DIMS[0]):
        k = d  # small input: the full product is already cheap, skip the basis
    elif prefilter_dims == "auto":
        basis = principal_basis(x)
        k, est = choose_prefilter_dims(x, basis, threshold)
        info.update(est)
    else:
        k = d if prefilter_dims is None else max(1, min(int(prefilter_dims), d))
    if k < d:
        h = bound_rows(x, basis if basis is not None else principal_basis(x), k)
    else:
        h = x
    info["prefilter_dims"] = k
    kept = np.ones(n, dtype=bool)
    dup_of = np.full(n, -1, dtype=np.int64)
    sim = np.full(n, np.nan)
    kept_pos = np.empty(n, dtype=np.int64)
    kept_h = np.empty((n, h.shape[1]), dtype=np.float32)
    k_n = 0
    lo = threshold - _BAND
    screened = 0
    for s in range(0, n, block_size):
        hb, xb = h[s:s + block_size], x[s:s + block_size]
        b = hb.shape[0]
        pre_sim = np.full(b, np.nan)
        pre_ref = np.full(b, -1, dtype=np.int64)
        if k_n:
            rows, cols = _screen(hb, kept_h[:k_n], lo, row_chunk=row_chunk, col_tile=col_tile)
            screened += rows.size
            rows, cols, vals = _verified(xb, x, rows, kept_pos[cols], threshold)
            if rows.size:
                # best kept row per dropped row: highest similarity, earliest on ties
                o = np.lexsort((cols, -vals, rows))
                rows, cols, vals = rows[o], cols[o], vals[o]
                first = np.r_[True, rows[1:] != rows[:-1]]
                pre_sim[rows[first]] = vals[first]
                pre_ref[rows[first]] = cols[first]
        ii = jj = np.empty(0, np.int64)
        vals = np.empty(0)
        if b > 1:
            ii, jj = _screen(hb, hb, lo, upper_only=True, row_chunk=row_chunk, col_tile=col_tile)
            screened += ii.size
            ii, jj, vals = _verified(xb, xb, ii, jj, threshold)
        bk, bref, bsim = _resolve_graph(b, ii, jj, vals, pre_sim, pre_ref)
        dropped = np.flatnonzero(~bk)
        ref = bref[dropped]
        kept[s + dropped] = False
        dup_of[s + dropped] = np.where(ref <= -2, s + (-ref - 2), ref)
        sim[s + dropped] = bsim[dropped]
        keep_local = np.flatnonzero(bk)
        m = keep_local.size
        kept_h[k_n:k_n + m] = hb[keep_local]
        kept_pos[k_n:k_n + m] = s + keep_local
        k_n += m
    info["screened_pairs"] = int(screened)
    return SemanticResult(kept, dup_of, sim, "exact", info)


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


def _peel_large_runs(elems: np.ndarray, rid: np.ndarray, x: np.ndarray, lo: float, max_run: int,
                     max_rounds: int = 64, chunk: int = 1 << 15
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Shrink the runs longer than ``max_run`` before listing their pairs.

    ``elems``: row positions grouped by run, ascending inside each run; ``rid``: the run of
    each (non-decreasing). A run of m rows has m(m-1)/2 pairs: a cluster of near-identical
    replies (thousands of "Great thread!" variants) sharing a bucket in every table would
    list them all, in every table. Instead each round takes the earliest row of every long
    run (its leader: the row the greedy rule meets first), pairs it with the members at
    ``lo`` or above, and removes the leader and those members from the run; what is left
    (short runs, or long runs after ``max_rounds``) is paired in full. Returns the leftover
    ``(elems, rid)``, the leader pairs ``(a, b)`` and counts. A member removed with its
    leader keeps its pairs in the other tables; the greedy resolution is unchanged.
    """
    la: list[np.ndarray] = []
    lb: list[np.ndarray] = []
    rounds = peeled = 0
    while rounds < max_rounds and elems.size:
        starts = np.flatnonzero(np.r_[True, rid[1:] != rid[:-1]])
        lengths = np.diff(np.r_[starts, rid.size])
        big = lengths > max_run
        if not big.any():
            break
        rounds += 1
        in_big = np.flatnonzero(np.repeat(big, lengths))
        blen = lengths[big]
        be = elems[in_big]
        leader = np.repeat(elems[starts[big]], blen)
        first = np.zeros(be.size, dtype=bool)
        first[np.cumsum(blen) - blen] = True
        near = np.zeros(be.size, dtype=bool)
        for c in range(0, be.size, chunk):
            sl = slice(c, c + chunk)
            near[sl] = np.einsum("ij,ij->i", x[be[sl]], x[leader[sl]]) >= lo
        near &= ~first
        la.append(leader[near])
        lb.append(be[near])
        drop = np.zeros(elems.size, dtype=bool)
        drop[in_big[near | first]] = True
        peeled += int(drop.sum())
        elems, rid = elems[~drop], rid[~drop]
    a = np.concatenate(la) if la else np.empty(0, np.int64)
    b = np.concatenate(lb) if lb else np.empty(0, np.int64)
    return elems, rid, a.astype(np.int64), b.astype(np.int64), {"rounds": rounds, "peeled": peeled}


def similar_pairs_lsh(x: np.ndarray, threshold: float, recall: float = 0.995, seed: int = 0,
                      chunk_rows: int = 16384, sketch_bits: int = 256,
                      max_run: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Pairs ``(i < j, sim)`` with ``sim >= threshold`` found by SimHash LSH, verified exactly.

    Runs (rows sharing a bucket) longer than ``max_run`` are first peeled around their
    earliest rows (``_peel_large_runs``), so memory grows with the rows, not with the
    square of a cluster's size.
    """
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
    raw = peel_rounds = peeled = leader_pairs = 0
    lo = threshold - _BAND
    for t in range(tables):
        order = np.argsort(keys[t], kind="stable")
        keys_sorted = keys[t][order]
        elems, rid, pa, pb, peel = _peel_large_runs(order.astype(np.int64), keys_sorted, x, lo, max_run)
        if pa.size:  # leader pairs are already measured: no sketch screen
            found.append(pa * n + pb)
        peel_rounds, peeled, leader_pairs = peel_rounds + peel["rounds"], peeled + peel["peeled"], leader_pairs + pa.size
        a, b = _pairs_in_runs(elems, rid)
        raw += a.size + pa.size
        for c in range(0, a.size, 1 << 20):
            aa, bb = a[c:c + (1 << 20)], b[c:c + (1 << 20)]
            ham = np.bitwise_count(sketch[aa] ^ sketch[bb]).sum(axis=1, dtype=np.int64)
            keep = ham <= ham_max
            lo_, hi_ = np.minimum(aa[keep], bb[keep]), np.maximum(aa[keep], bb[keep])
            found.append(lo_ * n + hi_)
        if len(found) > 32:  # a big cluster shows up in every table: keep memory at unique pairs
            found = [np.unique(np.concatenate(found))]
    codes = np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)
    ei, ej = codes // n, codes % n
    sims = np.empty(ei.size, dtype=np.float64)
    for c in range(0, ei.size, _VERIFY_CHUNK):
        sl = slice(c, c + _VERIFY_CHUNK)
        sims[sl] = np.einsum("ij,ij->i", x[ei[sl]], x[ej[sl]])
    ok = np.flatnonzero(sims >= threshold - _BAND)
    ok = ok[_is_dup(sims[ok], x[ei[ok]], x[ej[ok]], threshold)]
    info = {"lsh_bits": bits, "lsh_tables": tables, "lsh_raw_pairs": int(raw), "lsh_max_run": int(max_run),
            "lsh_peel_rounds": int(peel_rounds), "lsh_peeled_rows": int(peeled), "lsh_leader_pairs": int(leader_pairs),
            "lsh_screened_pairs": int(codes.size), "lsh_verified_pairs": int(ok.size)}
    return ei[ok], ej[ok], sims[ok], info


def greedy_lsh(x: np.ndarray, threshold: float, recall: float = 0.995, seed: int = 0) -> SemanticResult:
    """Greedy rule on the LSH pair graph of normalized rows ``x`` in walk order."""
    n = x.shape[0]
    ei, ej, sims, info = similar_pairs_lsh(x, threshold, recall=recall, seed=seed)
    kept, ref, sim = _resolve_graph(n, ei, ej, sims)
    dup_of = np.where(ref <= -2, -ref - 2, -1)
    return SemanticResult(kept, dup_of, sim, "lsh", info, pairs=(ei, ej))


# Cost model of the two paths, in seconds, fitted on this project's 2-core machine
# (benchmarks/dedup.py and benchmarks/e2e.py data, docs/design.md "Dedup at scale"):
# the exact path screens about n^2/2 pairs at ~1.2 ns each (all-MiniLM-L6-v2 embeddings of
# real replies: 50,000 rows 1.8 s, 100,000 5.7 s, 200,000 20 s); the LSH path costs ~1.2 us
# per listed candidate pair plus ~0.3 us per row and table (random vectors, 1,000,000 rows:
# 68 M pairs, 115 tables, 65-103 s; real embeddings, 200,000 rows: 83 M pairs, 84 tables, 106 s).
_EXACT_S_PER_PAIR = 1.2e-9
_LSH_S_PER_CANDIDATE = 1.2e-6
_LSH_S_PER_ROW_TABLE = 3e-7


def estimate_costs(x: np.ndarray, threshold: float, recall: float = 0.995, seed: int = 0,
                   sample_rows: int = 8192, sample_tables: int = 4) -> dict:
    """Predicted seconds of the exact and the LSH path on normalized rows ``x``.

    The LSH path's cost is its candidate pairs, and those depend on the data, not only on
    ``n``: random-hyperplane buckets are even on isotropic vectors (~n/2 random collisions
    per table) but not on sentence embeddings, which sit in a narrow cone (mean vector of
    length ~0.45 for all-MiniLM-L6-v2 on replies), so one table lists many times more. The
    collision rate is measured on a sample with the same bits per table, and scaled to
    ``n`` rows and the tables ``lsh_parameters`` asks for. The exact path is bounded by
    every pair screened once (every row kept).
    """
    n, d = x.shape
    bits, tables = lsh_parameters(n, threshold, recall)
    s = min(n, sample_rows)
    rng = np.random.default_rng(seed + 7919)
    xs = x[np.sort(rng.choice(n, s, replace=False))] if s < n else x
    planes = rng.standard_normal((d, bits * sample_tables)).astype(np.float32)
    signs = (xs @ planes > 0).reshape(s, sample_tables, bits)
    weights = (1 << np.arange(bits, dtype=np.int64))
    keys = (signs.astype(np.int64) * weights).sum(axis=2)  # (s, sample_tables)
    colliding = 0
    for t in range(sample_tables):
        _, counts = np.unique(keys[:, t], return_counts=True)
        colliding += int((counts * (counts - 1) // 2).sum())
    sample_pairs = sample_tables * s * (s - 1) / 2
    rate = colliding / sample_pairs if sample_pairs else 0.0
    all_pairs = n * (n - 1) / 2
    candidates = rate * all_pairs * tables
    return {
        "exact_est_s": round(_EXACT_S_PER_PAIR * all_pairs, 2),
        "lsh_est_s": round(_LSH_S_PER_CANDIDATE * candidates + _LSH_S_PER_ROW_TABLE * n * tables, 2),
        "lsh_est_candidates": int(candidates),
        "lsh_collision_rate": float(f"{rate:.4g}"),
        "lsh_random_rate": float(f"{2.0 ** -bits:.4g}"),
    }


def choose_method(x: np.ndarray, threshold: float, ann_threshold_rows: int = 50_000,
                  lsh_recall: float = 0.995, seed: int = 0) -> tuple[str, dict]:
    """``exact`` up to ``ann_threshold_rows`` rows; above, the path ``estimate_costs``
    predicts to be faster (exact on ties: it gives the prototype's keep set)."""
    if x.shape[0] <= ann_threshold_rows:
        return "exact", {}
    est = estimate_costs(x, threshold, recall=lsh_recall, seed=seed)
    return ("lsh" if est["lsh_est_s"] < est["exact_est_s"] else "exact"), est


def method_choice_text(info: dict) -> str | None:
    """One line on why ``auto`` chose its path (None when nothing was estimated)."""
    if "auto_exact_est_s" not in info:
        return None
    ratio = info["auto_lsh_collision_rate"] / info["auto_lsh_random_rate"]
    return (f"{info['method']}: predicted exact {info['auto_exact_est_s']:,} s, LSH {info['auto_lsh_est_s']:,} s "
            f"(hash buckets collide at {ratio:.1f}x the rate of random vectors)")


def semantic_greedy(x: np.ndarray, threshold: float = 0.9, method: Method = "auto",
                    ann_threshold_rows: int = 50_000, lsh_recall: float = 0.995,
                    seed: int = 0, block_size: int = 4096) -> SemanticResult:
    """The prototype's greedy rule on normalized rows already in walk order."""
    est: dict = {}
    if method == "auto":
        method, est = choose_method(x, threshold, ann_threshold_rows, lsh_recall, seed)
    if method == "exact":
        res = greedy_exact(x, threshold, block_size=block_size)
    elif method == "lsh":
        res = greedy_lsh(x, threshold, recall=lsh_recall, seed=seed)
    else:
        raise ValueError(f"unknown dedup method {method!r} (auto, exact, lsh)")
    res.info.update({f"auto_{k}": v for k, v in est.items()})
    return res


# --------------------------------------------------------------------------- cascade


# Above this many exact survivors the cascade's all-pairs static screen (n^2 * d / 2
# multiply-adds: ~3 s at 20,000 x 256, ~5 minutes at 200,000 on 2 cores) costs more than it can
# save, and the candidate rate approaches 1 as rows are added: the full path runs instead.
CASCADE_MAX_ROWS = 200_000


def centred_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit rows after subtracting the rows' mean (float64 mean). Static (bag-of-token)
    embeddings share a large common component: uncentred, nearly every pair of replies is
    above any useful loose threshold and nearly every row would be a candidate."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.shape[0] == 0:
        return v.reshape(0, v.shape[1] if v.ndim == 2 else 0)
    return normalize_rows(v - v.astype(np.float64).mean(axis=0).astype(np.float32))


def candidate_rows(static: np.ndarray, threshold: float, row_chunk: int = 2048,
                   col_tile: int = 8192) -> np.ndarray:
    """Boolean mask: rows with at least one *other* row at centred cosine ``>= threshold``.

    ``static`` holds one cheap vector per row (a static embedding model's); they are
    mean-centred and normalized (``centred_rows``), then every pair is screened by float32
    matrix products, tile by tile (upper triangle only). Cost: n^2 * d / 2 multiply-adds,
    a few seconds at 20,000 x 256 on 2 cores. A row with no candidate neighbour cannot be
    a semantic duplicate *if* the static model never ranks a true pair below ``threshold``;
    the loose threshold is chosen by measured recall (docs/design.md, "Semantic dedup cascade").
    """
    z = centred_rows(static)
    n = z.shape[0]
    out = np.zeros(n, dtype=bool)
    for r0 in range(0, n, row_chunk):
        a = z[r0:r0 + row_chunk]
        for c0 in range(r0, n, col_tile):
            p = a @ z[c0:c0 + col_tile].T
            if c0 == r0:  # the block's own rows: only pairs j > i
                k = min(a.shape[0], p.shape[1])
                p[:, :k][np.tril_indices(a.shape[0], 0, k)] = -np.inf
            hit = p >= threshold
            out[r0:r0 + a.shape[0]] |= hit.any(axis=1)
            out[c0:c0 + p.shape[1]] |= hit.any(axis=0)
    return out


def cascade_choice_text(info: dict) -> str:
    """One line on which semantic path ran and why (the ``deduped_pairs`` metadata)."""
    if "candidate_skipped" in info:
        return f"full: every exact survivor embedded with the sentence model ({info['candidate_skipped']})"
    if info.get("candidate_model", "none") == "none":
        return ("full: every exact survivor embedded with the sentence model (dedup.candidate_model: none, "
                "the default: the static-candidate cascade kept the keep set but measured under 2x faster, and "
                "its candidate rate grows with the rows; docs/design.md, \"Semantic dedup cascade\")")
    return (f"cascade: static-model candidates at centred cosine >= {info['candidate_threshold']} "
            f"(dedup.candidate_model: {info['candidate_model']}); {info['candidate_rows']:,} of "
            f"{info['candidate_inputs']:,} exact survivors ({info['candidate_rate']:.1%}) had a candidate and "
            f"were embedded with the sentence model, the others kept without it")


def semantic_path_metadata(info: dict, candidate_model: str) -> dict:
    """The ``deduped_pairs`` metadata on the semantic path: which ran (``full`` | ``cascade``), why,
    the candidate rate (cascade only) and the rows embedded with the sentence model. ``info``:
    ``dedupe``'s ``attrs["semantic_dedup"]``; ``candidate_model``: the setting (reported when no
    semantic step ran)."""
    cascade = info.get("candidate_model", "none") != "none"
    out = {"semantic_path": "cascade" if cascade else "full",
           "semantic_path_why": cascade_choice_text(info) if "candidate_model" in info else "no valid rows",
           "candidate_model": str(info.get("candidate_model", candidate_model))}
    if cascade:
        out.update({"candidate_rate": float(info["candidate_rate"]), "candidate_rows": int(info["candidate_rows"]),
                    "candidate_threshold": float(info["candidate_threshold"])})
    out["semantic_rows_embedded"] = int(info.get("embedded_rows", 0))
    return out


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


def _array_rows(emb: np.ndarray, n: int, valid_pos: np.ndarray, what: str) -> np.ndarray:
    """The row of ``emb`` for each valid row (in ``df`` order), after checking the shape and values."""
    if emb.ndim != 2 or emb.shape[0] not in (n, valid_pos.size):
        raise ValueError(f"{what} shape {emb.shape} does not match {n} rows ({valid_pos.size} valid)")
    emb_rows = valid_pos if emb.shape[0] == n else np.arange(valid_pos.size)  # valid pairs' rows
    for c in range(0, emb_rows.size, 65536):
        if not np.isfinite(emb[emb_rows[c:c + 65536]]).all():
            raise ValueError(f"{what} contain NaN or infinite values")
    return emb_rows


def _gather(source, rows: np.ndarray | None, local: np.ndarray, texts: list, what: str) -> np.ndarray:
    """Vectors for the valid rows ``local`` (positions among the valid rows) whose texts are
    ``texts``: rows of an array, or the embedding function called on the texts."""
    if rows is not None:
        return np.asarray(source)[rows[local]]
    vecs = np.asarray(source(texts))
    if vecs.ndim != 2 or vecs.shape[0] != len(texts):
        raise ValueError(f"{what} function returned shape {vecs.shape} for {len(texts)} texts")
    if not np.isfinite(vecs).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return vecs


def _exact_pass(texts: np.ndarray, walk: np.ndarray, ids: np.ndarray, dup_of: np.ndarray, sim: np.ndarray,
                kind: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Exact dedup in walk order: marks the duplicates (in ``dup_of``/``sim``/``kind``) and returns
    the survivors (indices into ``walk``) and the (df position, df position of its exact owner) pairs."""
    first: dict[str, int] = {}
    survivors: list[int] = []
    exact_pairs: list[tuple[int, int]] = []
    for w, key in enumerate(exact_key(t) for t in texts[walk]):
        owner = first.setdefault(key, w)
        if owner == w:
            survivors.append(w)
        else:
            p = walk[w]
            dup_of[p], sim[p], kind[p] = ids[walk[owner]], 1.0, "exact"
            exact_pairs.append((p, walk[owner]))
    return np.asarray(survivors, dtype=np.int64), exact_pairs


def _cascade_rows(surv: np.ndarray, static_of: Callable[[np.ndarray], np.ndarray],
                  candidate_threshold: float) -> tuple[np.ndarray, dict]:
    """The survivors that go through the sentence model and the walk, and how they were chosen."""
    if surv.size > CASCADE_MAX_ROWS:
        return surv, {"candidate_model": "none", "candidate_skipped": (
            f"dedup.candidate_model: static, but {surv.size:,} exact survivors are over the cascade's "
            f"{CASCADE_MAX_ROWS:,}: its all-pairs static screen would cost more than it saves")}
    sem = surv[candidate_rows(static_of(surv), candidate_threshold)]
    return sem, {"candidate_model": "static", "candidate_threshold": candidate_threshold,
                 "candidate_inputs": int(surv.size), "candidate_rows": int(sem.size),
                 "candidate_rate": float(sem.size / surv.size)}


def dedupe(df: pd.DataFrame, embeddings: Vectors | None, threshold: float = 0.9,
           text_col: str = "reply_clean", *, method: Method = "auto",
           ann_threshold_rows: int = 50_000, lsh_recall: float = 0.995, seed: int = 0,
           block_size: int = 4096, candidates: Vectors | None = None,
           candidate_threshold: float | None = None) -> pd.DataFrame:
    """Every row of ``df`` (input order, same index) plus kept/duplicate_of/similarity/dup_kind.

    ``embeddings`` has one row per row of ``df`` or one per *valid* row (in ``df`` order),
    or is a function embedding a list of texts, called once with the texts of the rows the
    semantic step needs; rows of invalid pairs are ignored. ``None`` skips the semantic step
    (exact dedup only).

    ``candidates`` (the cascade): cheap vectors of a static embedding model, in the same
    forms. Only the exact survivors with a candidate neighbour (``candidate_rows`` at
    ``candidate_threshold``) get sentence embeddings and enter the greedy walk; the others
    are kept without one (they have no neighbour in the walk, so the walk over all rows
    would keep them too, unless the static model missed a true pair).
    """
    missing = [c for c in (text_col, "reply_id") if c not in df.columns]
    if missing:
        raise ValueError(f"dedupe needs column(s) {missing}; got {list(df.columns)}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if candidates is not None and (candidate_threshold is None or not -1.0 <= candidate_threshold <= 1.0):
        raise ValueError(f"candidates need a candidate_threshold in [-1, 1], got {candidate_threshold}")
    n = len(df)
    valid = df["valid"].fillna(False).astype(bool).to_numpy() if "valid" in df else np.ones(n, bool)
    valid_pos = np.flatnonzero(valid)
    emb_rows = cand_rows = None
    if embeddings is not None and not callable(embeddings):
        emb_rows = _array_rows(np.asarray(embeddings), n, valid_pos, "embeddings")
    if candidates is not None and not callable(candidates):
        cand_rows = _array_rows(np.asarray(candidates), n, valid_pos, "candidate vectors")
    ids = df["reply_id"].astype("string").to_numpy(dtype=object)
    semantic_info: dict = {"method": "none"}
    kept = np.zeros(n, dtype=bool)
    dup_of = np.full(n, None, dtype=object)
    sim = np.full(n, np.nan)
    kind = np.full(n, None, dtype=object)

    sub = df.iloc[valid_pos]
    order_local = walk_order(sub) if valid_pos.size else np.empty(0, np.int64)
    walk = valid_pos[order_local]  # df positions in walk order
    all_texts = df[text_col].to_numpy(dtype=object)
    surv, exact_pairs = _exact_pass(all_texts, walk, ids, dup_of, sim, kind)
    kept[walk[surv]] = True
    if embeddings is not None and surv.size:
        if candidates is None:
            sem, cand_info = surv, {"candidate_model": "none"}
        else:
            sem, cand_info = _cascade_rows(surv, lambda idx: _gather(
                candidates, cand_rows, order_local[idx], [all_texts[p] for p in walk[idx]], "candidate vectors"),
                candidate_threshold)
        semantic_info.update(cand_info)
        semantic_info["embedded_rows"] = int(sem.size)
        if sem.size:
            # only the rows the walk needs, gathered and normalized once (one copy: 1 GB per 700,000 rows)
            x = normalize_rows(_gather(embeddings, emb_rows, order_local[sem], [all_texts[p] for p in walk[sem]],
                                       "embeddings"))
            res = semantic_greedy(x, threshold, method=method, ann_threshold_rows=ann_threshold_rows,
                                  lsh_recall=lsh_recall, seed=seed, block_size=block_size)
            semantic_info.update({"method": res.method, **res.info})
            pos = walk[sem]
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
    out.attrs["semantic_dedup"] = semantic_info  # how the semantic step ran (for metadata)
    return out


def dedup_summary(result: pd.DataFrame) -> dict:
    """Counts for metadata: rows in, valid, kept, exact and semantic duplicates, and
    ``funnel``, those counts as the ``deduped_pairs`` funnel table (``{"stage", "count"}``)."""
    valid = result["valid"].fillna(False).astype(bool) if "valid" in result else pd.Series(True, index=result.index)
    counts = {
        "rows": len(result),
        "valid": int(valid.sum()),
        "kept": int(result["kept"].sum()),
        "exact_duplicates": int((result["dup_kind"] == "exact").sum()),
        "semantic_duplicates": int((result["dup_kind"] == "semantic").sum()),
    }
    stages = (("rows in", "rows"), ("valid", "valid"), ("exact duplicates", "exact_duplicates"),
              ("semantic duplicates", "semantic_duplicates"), ("kept", "kept"))
    return {**counts, "funnel": [{"stage": stage, "count": counts[key]} for stage, key in stages]}
