"""One URL detector: normalization, validation and the blocking curated check agree.

Before core/urls.py each of the three places had its own pattern: "stanford.edu" passed
validation and then failed the blocking ``no_urls`` check; "alice.me" went the other way.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from replyassets.core import quality_checks as qc
from replyassets.core import validate as V
from replyassets.core.collect import collect_partition
from replyassets.core.normalize import normalize_item
from replyassets.core.urls import has_url, url_mask
from replyassets.settings import CollectionSettings, QuerySpec, ValidationSettings
from replyassets.sources.replay import ReplaySource
from replyassets_tests.core.shapes import T0, apidojo, write_json
from replyassets_tests.validate.conftest import make_pairs

# (realistic reply, expected verdict: does it hold a URL?)
VERDICTS = [
    ("Their course notes on stanford.edu explain attention better than any blog post I have read", True),
    ("I keep a running list of these failure modes on alice.me and update it every month or so", True),
    ("The full benchmark with all the numbers is at example.com/x if anyone wants to check it", True),
    ("Small tools win, e.g. a linter that runs in a second beats a perfect one nobody waits for", False),
    ("We moved the whole ingestion service to node.js last year and the latency halved overnight", False),
]


def _normalized_has_urls(text: str) -> bool:
    rec, reasons = normalize_item(apidojo(2, text, parent=1, likes=10))
    assert reasons == [], reasons
    return rec["has_urls"]


def _validation_url_fails(texts: list[str]) -> tuple[list[bool], list[str]]:
    settings = ValidationSettings()
    frame = V.clean_pairs(make_pairs(texts), settings)
    n = len(frame)
    out = V.apply_rules(frame, settings, np.full(n, 0.99), np.full(n, 0.01))
    return [not ok for ok in out["rule_url"].tolist()], out["reply_clean"].tolist()


def _curated_check_fails(train_reply: str) -> bool:
    df = pd.DataFrame({"reply_id": ["r0"], "train_reply": [train_reply], "has_urls": [False]})
    return not qc.check_no_urls(df).passed


@pytest.mark.parametrize("text, expected", VERDICTS)
def test_same_url_verdict_in_normalization_validation_and_the_curated_check(text, expected):
    normalized = _normalized_has_urls(text)
    [validated], [cleaned] = _validation_url_fails([text])
    curated = _curated_check_fails(cleaned)      # the curated set trains on the cleaned reply
    curated_raw = _curated_check_fails(text)
    assert (normalized, validated, curated, curated_raw) == (expected,) * 4, text
    assert has_url(text) is expected


def test_the_column_form_gives_the_same_verdicts():
    texts = [t for t, _ in VERDICTS] + ["", "mail me.com@gmail.com", "a@example.com", "bit.lin\u212a", "İ.me"]
    assert url_mask(texts).tolist() == [has_url(t) for t in texts]
    assert url_mask([]).tolist() == []
    assert url_mask(["lone \ud800 surrogate at x.com", "none"]).tolist() == [True, False]


@pytest.mark.parametrize("text", [
    "https://t.co/abc", "see www.example.org", "github.com/foo/bar", "bit.ly/x1", "t.co/abc123",
    "ftp://files.example.net", "Stanford.EDU is great", "my site (alice.me) has it", "discord.gg/abc",
])
def test_urls(text):
    assert has_url(text)


@pytest.mark.parametrize("text", [
    "Node.js is fine", "the README.md file", "e.g. this", "i.e. that", "U.S. based", "gmail", "app.py",
    "main.rs and lib.rs", "version 2.0.1", "3.14 is pi", "at 9 a.m. sharp", "write to a@example.com",
    "mail me.com@gmail.com", "@alice.me says hi", "https:// nothing", "config.json and index.html",
    "it's done.it works", "install.sh", "welcome.to the club",
])
def test_not_urls(text):
    assert not has_url(text)


def test_collection_rejects_what_validation_would(tmp_path):
    """A reply the detector flags is rejected at collection (``has_urls``), never later."""
    items = [apidojo(1, "What resources taught you the most?", likes=500)]
    items += [apidojo(10 + i, text, parent=1, likes=10, author=f"u{i}", at=T0 + timedelta(hours=1))
              for i, (text, _) in enumerate(VERDICTS)]
    write_json(tmp_path / "f.json", items)
    res = collect_partition(QuerySpec(name="q", text="q", replay=["f.json"]), ReplaySource(tmp_path),
                            CollectionSettings())
    rejected = set(res.rejections.loc[res.rejections["reasons"].str.contains("has_urls"), "item_id"])
    assert rejected == {str(10 + i) for i, (_, url) in enumerate(VERDICTS) if url}
    assert set(res.pairs["reply_id"]) == {str(10 + i) for i, (_, url) in enumerate(VERDICTS) if not url}
