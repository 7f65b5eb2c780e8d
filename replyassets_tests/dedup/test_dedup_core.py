"""Fast dedup == the prototype's greedy loop (docs/design.md, "Baselines"); exact dedup, ordering, pass-through, LSH path."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replyassets.core.dedup import (
    bound_rows,
    choose_method,
    choose_prefilter_dims,
    dedup_summary,
    dedupe,
    exact_key,
    exact_similarity,
    greedy_exact,
    greedy_lsh,
    method_choice_text,
    normalize_rows,
    principal_basis,
    seed_greedy_dedup,
    semantic_greedy,
    similar_pairs_lsh,
    walk_order,
)
from replyassets_tests.hypothesis_profiles import examples


def literal_seed_loop(emb: np.ndarray, order, threshold: float) -> list[int]:
    """The prototype's loop verbatim, pair by pair, with the correctly rounded similarity."""
    x = normalize_rows(emb)
    keep: list[int] = []
    for i in order:
        if all(exact_similarity(x[i], x[j]) < threshold for j in keep):
            keep.append(int(i))
    return keep


def planted_embeddings(rng: np.random.Generator, n: int, d: int, frac: float,
                       sig_lo: float, sig_hi: float, exact_copies: int) -> np.ndarray:
    x = rng.standard_normal((n, d))
    nb = max(1, n - int(n * frac))
    x[:nb] /= np.linalg.norm(x[:nb], axis=1, keepdims=True)
    for k in range(nb, n):
        src = rng.integers(0, k)  # copies of copies too: chains and clusters
        x[k] = x[src] + rng.uniform(sig_lo, sig_hi) * rng.standard_normal(d) / np.sqrt(d)
    for _ in range(exact_copies):  # identical vectors: similarity ties
        a, b = rng.integers(0, n, 2)
        x[b] = x[a]
    return x[rng.permutation(n)].astype(np.float32)


def frame(n: int, rng: np.random.Generator, tie_heavy: bool) -> pd.DataFrame:
    hi = 3 if tie_heavy else 1000
    return pd.DataFrame({
        "reply_id": [f"r{i:03d}" for i in rng.permutation(n)],
        "reply_clean": [f"distinct text {i}" for i in range(n)],
        "valid": True,
        "reply_likes": rng.integers(0, hi, n),
        "reply_retweets": rng.integers(0, hi, n),
        "reply_author_followers": rng.integers(0, hi, n),
    })


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 70),
    d=st.integers(2, 12),
    frac=st.floats(0.0, 0.7),
    sig=st.tuples(st.floats(0.0, 0.8), st.floats(0.0, 0.8)),
    exact_copies=st.integers(0, 4),
    threshold_mode=st.sampled_from(["fixed", "at_pair"]),
    fixed=st.floats(0.3, 0.99),
    block=st.integers(1, 16),
    col_tile=st.integers(1, 20),
    tie_heavy=st.booleans(),
    prefilter=st.one_of(st.none(), st.just("auto"), st.integers(1, 12)),
    row_chunk=st.integers(1, 24),
)
def test_fast_dedup_keeps_exactly_the_seed_loops_rows(seed, n, d, frac, sig, exact_copies,
                                                      threshold_mode, fixed, block, col_tile, tie_heavy,
                                                      prefilter, row_chunk):
    rng = np.random.default_rng(seed)
    emb = planted_embeddings(rng, n, d, frac, min(sig), max(sig), exact_copies)
    x = normalize_rows(emb)
    threshold = fixed
    if threshold_mode == "at_pair" and n > 1:
        # a threshold equal to a real pair's exact similarity: the >= boundary is exercised
        a, b = rng.choice(n, 2, replace=False)
        threshold = exact_similarity(x[a], x[b])
        if not 0.0 < threshold <= 1.0:
            threshold = fixed
    df = frame(n, rng, tie_heavy)
    order = walk_order(df)

    literal = literal_seed_loop(emb, order, threshold)
    reference = seed_greedy_dedup(emb, order, threshold)
    assert reference.tolist() == literal

    fast = greedy_exact(x[order], threshold, block_size=block, col_tile=col_tile,
                        prefilter_dims=prefilter, row_chunk=row_chunk)
    assert sorted(order[np.flatnonzero(fast.kept)].tolist()) == sorted(literal)

    out = dedupe(df, emb, threshold=threshold, block_size=block)
    assert sorted(np.flatnonzero(out["kept"].to_numpy()).tolist()) == sorted(literal)
    # every dropped row points at a kept row that comes earlier in the walk, at >= threshold
    rank = {int(p): w for w, p in enumerate(order)}
    id_to_pos = {rid: i for i, rid in enumerate(df["reply_id"])}
    for i in np.flatnonzero(~out["kept"].to_numpy()):
        surv = id_to_pos[out["duplicate_of"].iloc[i]]
        assert out["kept"].iloc[surv] and rank[surv] < rank[int(i)]
        assert exact_similarity(x[i], x[surv]) >= threshold
        assert out["dup_kind"].iloc[i] == "semantic"
        # the survivor is the most similar kept earlier row (within float32 rounding)
        earlier_kept = [j for j in range(n) if out["kept"].iloc[j] and rank[j] < rank[int(i)]]
        best = max(exact_similarity(x[i], x[j]) for j in earlier_kept)
        assert out["similarity"].iloc[i] >= best - 1e-4


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 40), k=st.integers(1, 39),
       skew=st.floats(0.0, 8.0), near=st.floats(0.0, 1.0))
def test_bound_rows_never_undercut_the_true_similarity(seed, d, k, skew, near):
    """The screen is sound: the bound row product is >= the exact similarity, for any basis
    width, on anisotropic data and on near-identical pairs (where the bound is tightest)."""
    rng = np.random.default_rng(seed)
    k = min(k, d - 1) if d > 1 else 1
    scale = np.exp(-skew * np.arange(d) / d)  # energy concentrated in a few axes when skewed
    base = rng.standard_normal((40, d)) * scale
    other = base + near * rng.standard_normal((40, d)) * scale
    x = normalize_rows(np.vstack([base, other]).astype(np.float32))
    h = bound_rows(x, principal_basis(x), k)
    bound = (h @ h.T).astype(np.float64)
    exact = np.array([[exact_similarity(a, b) for b in x] for a in x])
    assert (bound >= exact - 2e-5).all()  # float32 rounding only, far inside the 1e-4 band


def test_auto_prefilter_on_a_realistic_size_keeps_the_same_rows_and_screens_less():
    rng = np.random.default_rng(11)
    emb = planted_embeddings(rng, 6000, 384, 0.1, 0.15, 0.6, 3)
    x = normalize_rows(emb)
    full = greedy_exact(x, 0.9, prefilter_dims=None)
    auto = greedy_exact(x, 0.9)
    k, rates = choose_prefilter_dims(x, principal_basis(x), 0.9)
    assert auto.info["prefilter_dims"] < 384 and k < 384 and rates
    assert np.array_equal(auto.kept, full.kept) and np.array_equal(auto.dup_of, full.dup_of)
    assert np.allclose(auto.similarity, full.similarity, equal_nan=True)
    assert (~full.kept).sum() > 100  # real duplicates were there to find
    # a bound too weak to help (everything passes) falls back to the full product
    same = normalize_rows(np.ones((5000, 384), dtype=np.float32) + 1e-3 * rng.standard_normal((5000, 384)))
    assert choose_prefilter_dims(same, principal_basis(same), 0.9)[0] == 384


def test_similarity_exactly_at_threshold_counts_as_duplicate():
    a = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    b = np.array([0.75, np.sqrt(1 - 0.75**2), 0.0], dtype=np.float32)
    emb = np.stack([a, b])
    s = exact_similarity(normalize_rows(emb)[0], normalize_rows(emb)[1])
    assert seed_greedy_dedup(emb, [0, 1], s).tolist() == [0]
    assert seed_greedy_dedup(emb, [0, 1], np.nextafter(s, 2.0)).tolist() == [0, 1]
    assert greedy_exact(normalize_rows(emb), s).kept.tolist() == [True, False]
    assert greedy_exact(normalize_rows(emb), float(np.nextafter(s, 2.0))).kept.tolist() == [True, True]


def test_exact_key_normalizes_case_space_punctuation_and_keeps_emoji():
    assert exact_key("  Great   point!! ") == exact_key("great point")
    assert exact_key("Don't stop 🚀") == exact_key("dont  STOP 🚀")
    assert exact_key("Ｆｕｌｌwidth") == exact_key("fullwidth")
    assert exact_key("great point 🚀") != exact_key("great point 🔥")
    assert exact_key("!!!") == "!!!"  # nothing but punctuation: kept as is, not ""


def pairs_frame(texts, likes, ids=None, valid=None, retweets=None, followers=None):
    n = len(texts)
    return pd.DataFrame({
        "reply_id": ids or [f"id{i}" for i in range(n)],
        "reply_clean": texts,
        "valid": valid if valid is not None else [True] * n,
        "reply_likes": likes,
        "reply_retweets": retweets or [0] * n,
        "reply_author_followers": followers or [0] * n,
    })


def test_exact_duplicates_keep_the_highest_engagement_row():
    df = pairs_frame(["Nice take, really.", "nice take really", "Something else entirely", "NICE TAKE, REALLY!"],
                     likes=[5, 40, 7, 40], retweets=[0, 1, 0, 0])
    out = dedupe(df, None)
    assert out["kept"].tolist() == [False, True, True, False]
    assert out["duplicate_of"].tolist()[0] == "id1" and out["duplicate_of"].tolist()[3] == "id1"
    assert out["dup_kind"].tolist()[0] == "exact"
    assert out["similarity"].tolist()[0] == 1.0
    assert pd.isna(out["similarity"].iloc[1]) and pd.isna(out["duplicate_of"].iloc[1])
    summary = dedup_summary(out)
    assert {k: v for k, v in summary.items() if k != "funnel"} == {
        "rows": 4, "valid": 4, "kept": 2, "exact_duplicates": 2, "semantic_duplicates": 0}
    assert summary["funnel"] == [{"stage": "rows in", "count": 4}, {"stage": "valid", "count": 4},
                                 {"stage": "exact duplicates", "count": 2},
                                 {"stage": "semantic duplicates", "count": 0}, {"stage": "kept", "count": 2}]


def test_tie_break_is_deterministic_and_independent_of_input_order():
    df = pairs_frame(["same words here"] * 4, likes=[10, 10, 10, 10], ids=["b", "c", "a", "d"],
                     retweets=[2, 2, 2, 2], followers=[100, 100, 100, 100])
    for perm in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]):
        out = dedupe(df.iloc[perm].reset_index(drop=True), None)
        assert out.loc[out["kept"], "reply_id"].tolist() == ["a"]
    # retweets break a likes tie before followers, followers before the id
    df2 = pairs_frame(["same words here"] * 3, likes=[10, 10, 10], ids=["a", "b", "c"],
                      retweets=[1, 1, 2], followers=[999, 5, 1])
    assert dedupe(df2, None).loc[lambda f: f["kept"], "reply_id"].tolist() == ["c"]
    df3 = pairs_frame(["same words here"] * 3, likes=[10, 10, 10], ids=["a", "b", "c"],
                      retweets=[1, 1, 1], followers=[5, 999, 1])
    assert dedupe(df3, None).loc[lambda f: f["kept"], "reply_id"].tolist() == ["b"]


def test_invalid_rows_pass_through_and_embeddings_may_cover_valid_rows_only():
    e = np.eye(4, dtype=np.float32)
    df = pairs_frame(["one", "two", "three", "four"], likes=[1, 2, 3, 4], valid=[True, False, True, True])
    e_valid = np.stack([e[0], e[0] * 0.99 + e[1] * 0.01, e[3]])  # rows 0, 2, 3; row 2 ~ row 0
    out = dedupe(df, e_valid)
    assert len(out) == 4 and out.index.equals(df.index)
    assert out["kept"].tolist() == [False, False, True, True]
    assert out["dup_kind"].tolist()[1] is pd.NA and out["duplicate_of"].tolist()[0] == "id2"
    assert out["dup_kind"].tolist()[0] == "semantic"
    full = np.stack([e[0], e[2], e[0] * 0.99 + e[1] * 0.01, e[3]])
    assert dedupe(df, full)["kept"].tolist() == [False, False, True, True]
    # invalid rows never absorb valid ones, even with identical text
    df2 = pairs_frame(["same text", "same text"], likes=[100, 1], valid=[False, True])
    assert dedupe(df2, None)["kept"].tolist() == [False, True]


def test_exact_duplicate_of_a_semantic_duplicate_points_at_the_final_survivor():
    df = pairs_frame(["alpha text", "alpha text!", "beta text"], likes=[5, 1, 9])
    emb = np.array([[1, 0.05], [1, 0.05], [1, 0]], dtype=np.float32)
    out = dedupe(df, emb)
    assert out["kept"].tolist() == [False, False, True]
    assert out["duplicate_of"].fillna("-").tolist() == ["id2", "id2", "-"]
    assert out["dup_kind"].fillna("-").tolist() == ["semantic", "exact", "-"]
    assert out["similarity"].iloc[1] == out["similarity"].iloc[0] < 1.0


def test_bad_inputs_are_clear_errors():
    df = pairs_frame(["a", "b"], likes=[1, 2])
    with pytest.raises(ValueError, match="shape"):
        dedupe(df, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        dedupe(df, np.array([[np.nan, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="reply_clean"):
        dedupe(df.drop(columns=["reply_clean"]), None)
    with pytest.raises(ValueError, match="threshold"):
        dedupe(df, None, threshold=1.5)
    with pytest.raises(ValueError, match="method"):
        dedupe(df, np.eye(2), method="bogus")
    out = dedupe(df.iloc[:0], np.zeros((0, 4)))
    assert len(out) == 0 and list(out.columns)[-4:] == ["kept", "duplicate_of", "similarity", "dup_kind"]


def test_lsh_path_on_a_mid_size_input_finds_the_true_pairs_and_drops_only_real_duplicates():
    rng = np.random.default_rng(7)
    n, d = 6000, 48
    x = rng.standard_normal((n, d)).astype(np.float32)
    nb = 5000
    src = rng.integers(0, nb, n - nb)
    x[nb:] = x[src] / np.linalg.norm(x[src], axis=1, keepdims=True) + \
        rng.uniform(0.1, 0.6, (n - nb, 1)).astype(np.float32) * x[nb:] / np.sqrt(d)
    x = normalize_rows(x[rng.permutation(n)])
    truth = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(x @ x.T >= 0.9, 1)))}
    assert len(truth) > 300
    res = greedy_lsh(x, 0.9, recall=0.995, seed=3)
    found = set(zip(res.pairs[0].tolist(), res.pairs[1].tolist()))
    assert found <= truth | {p for p in found if exact_similarity(x[p[0]], x[p[1]]) >= 0.9}
    assert len(found & truth) / len(truth) >= 0.99
    exact = greedy_exact(x, 0.9)
    assert (res.kept != exact.kept).mean() <= 0.01
    for j in np.flatnonzero(~res.kept):  # every drop is a verified duplicate of a kept earlier row
        i = res.dup_of[j]
        assert res.kept[i] and i < j and exact_similarity(x[i], x[j]) >= 0.9
    # the DataFrame API runs the approximate path when asked
    df = pd.DataFrame({"reply_id": [str(i) for i in range(n)], "reply_clean": [f"t{i}" for i in range(n)],
                       "reply_likes": np.arange(n)[::-1]})
    out = dedupe(df, x, method="lsh", seed=3)
    assert out["kept"].to_numpy().tolist() == res.kept.tolist()
    assert out.attrs["semantic_dedup"]["method"] == "lsh"


def _cone(rng, n, d=384, mean_len=0.45):
    """Unit rows around one shared direction, as sentence embeddings are (all-MiniLM-L6-v2 on
    replies: mean vector of length ~0.45)."""
    mu = rng.standard_normal(d).astype(np.float32)
    mu *= mean_len / np.linalg.norm(mu)
    noise = rng.standard_normal((n, d)).astype(np.float32)
    noise *= np.sqrt(1 - mean_len ** 2) / np.linalg.norm(noise, axis=1, keepdims=True)
    return normalize_rows(mu + noise)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_auto_runs_exact_on_embeddings_in_a_cone_where_lsh_buckets_are_uneven():
    """Above ann_threshold_rows the path is chosen by predicted cost, not by size alone: a
    cone of vectors fills SimHash buckets unevenly, so LSH would list far more candidate
    pairs than on random vectors, and the exact path (the prototype's keep set) runs."""
    rng = np.random.default_rng(11)
    x = _cone(rng, 20000)
    method, est = choose_method(x, 0.9, ann_threshold_rows=5000)
    assert method == "exact"
    assert est["lsh_collision_rate"] > 5 * est["lsh_random_rate"]
    assert est["lsh_est_s"] > est["exact_est_s"]
    res = semantic_greedy(x, 0.9, ann_threshold_rows=5000)
    assert res.method == "exact" and res.info["auto_lsh_est_s"] == est["lsh_est_s"]
    assert res.kept.tolist() == greedy_exact(x, 0.9).kept.tolist()
    why = method_choice_text({"method": res.method, **res.info})
    assert why.startswith("exact: predicted exact ") and "x the rate of random vectors" in why
    # at or under the limit nothing is estimated
    assert choose_method(x, 0.9, ann_threshold_rows=20000) == ("exact", {})


@pytest.mark.slow
def test_auto_picks_lsh_for_many_random_vectors_and_lsh_for_none_of_a_small_input():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((400_000, 384), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    method, est = choose_method(x, 0.9, ann_threshold_rows=50_000)
    assert method == "lsh", est
    assert est["lsh_collision_rate"] < 2 * est["lsh_random_rate"]  # even buckets
    method, est = choose_method(x[:60_000], 0.9, ann_threshold_rows=50_000)
    assert method == "exact", est  # 60,000 rows: the exact screen is cheaper even here


def test_reference_loop_matches_literal_loop_on_clustered_data():
    rng = np.random.default_rng(1)
    emb = planted_embeddings(rng, 300, 16, 0.5, 0.05, 0.7, 5)
    order = rng.permutation(300)
    assert seed_greedy_dedup(emb, order, 0.9).tolist() == literal_seed_loop(emb, order, 0.9)
    x = normalize_rows(emb)
    sims = [exact_similarity(x[a], x[b]) for a, b in combinations(range(60), 2)]
    assert any(s >= 0.9 for s in sims)  # the data really has duplicates to find


@pytest.mark.slow
def test_lsh_path_on_one_dense_cluster_lists_rows_not_the_square_of_the_cluster():
    """5,000 near-identical rows share buckets in every table: 12.5 million pairs per table if
    listed. The peeled runs keep the candidate count linear and the keep set exact."""
    rng = np.random.default_rng(0)
    d, n_c, n_r = 64, 5_000, 10_000
    base = rng.standard_normal(d)
    cluster = base + rng.standard_normal((n_c, d)) * 0.12
    x = normalize_rows(np.vstack([cluster, rng.standard_normal((n_r, d))]).astype(np.float32))
    x = x[rng.permutation(n_c + n_r)]
    res = greedy_lsh(x, 0.9, seed=1)
    n = x.shape[0]
    assert res.info["lsh_peeled_rows"] > n_c  # the cluster was peeled in the tables
    assert res.info["lsh_raw_pairs"] <= res.info["lsh_tables"] * n * 32  # linear in the rows
    exact = greedy_exact(x, 0.9)
    assert res.kept.tolist() == exact.kept.tolist()
    for j in np.flatnonzero(~res.kept)[:500]:
        i = res.dup_of[j]
        assert res.kept[i] and i < j and exact_similarity(x[i], x[j]) >= 0.9
    # with peeling switched off the same input lists the cluster's pairs table after table
    unpeeled = similar_pairs_lsh(x[:6000], 0.9, seed=1, max_run=10**9)[3]
    peeled = similar_pairs_lsh(x[:6000], 0.9, seed=1)[3]
    assert unpeeled["lsh_raw_pairs"] > 20 * peeled["lsh_raw_pairs"]
