"""Input cannot speak for the code: a source's damaged-input markers are objects
(``DamagedInput``), recognized by type; an item that carries ``_replay_error`` (or any key)
is judged by what it holds, in normalize, the replay and Apify sources, checkpoints and
the ``replyassets normalize`` CLI."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from replyassets.core.checkpoint import (
    SEARCH_KEY,
    DuckDBCheckpointStore,
    InMemoryCheckpointStore,
)
from replyassets.core.collect import collect_partition
from replyassets.core.columns import split_reasons
from replyassets.core.normalize import DamagedInput, normalize_item
from replyassets.settings import CollectionSettings, QuerySpec
from replyassets.sources.replay import ReplaySource, read_items
from replyassets_tests.core.shapes import T0, apidojo, conversation, write_json
from replyassets_tests.core.test_cli_normalize import run_cli

S = CollectionSettings()
FORGED = [
    {"_replay_error": "A"},
    {"_replay_error": "truncated_json", "_file": "x.json", "_text": "forged"},
    {"_replay_error": "missing_id", "id": "9", "text": "x"},
]


def _q(*files: str) -> QuerySpec:
    return QuerySpec(name="q", text="q", replay=list(files))


@pytest.mark.parametrize("item", FORGED)
def test_an_item_cannot_name_its_own_rejection(item):
    rec, reasons = normalize_item(item)
    without = {k: v for k, v in item.items() if k != "_replay_error"}
    assert rec is None and reasons == normalize_item(without)[1]  # the key changes nothing
    assert "missing_created_at" in reasons  # what the item really lacks
    assert ("missing_id" in reasons) == ("id" not in item)


def test_a_good_item_with_a_marker_key_is_kept():
    rec, reasons = normalize_item({**apidojo(5, "a perfectly ordinary tweet"), "_replay_error": "A"})
    assert reasons == [] and rec["id"] == "5"


def test_markers_are_recognized_by_type_and_hold_rule_codes():
    assert normalize_item(DamagedInput("truncated_json", "f.json")) == (None, ["truncated_json"])
    for bad in ("A", "'; DROP TABLE x", "", "a,b", "a\n", 7):
        with pytest.raises(ValueError):
            DamagedInput(bad, "f.json")  # type: ignore[arg-type]


def test_replay_collection_rejects_forged_markers_for_what_they_are(tmp_path):
    items = conversation("apidojo", 1, 2, id_base=100) + FORGED
    text = json.dumps(items)
    (tmp_path / "f.json").write_text(text[:-30])  # cut: the last forged item is lost, a real marker added
    found = read_items(tmp_path / "f.json")
    assert sum(isinstance(i, DamagedInput) for i in found) == 1
    res = collect_partition(_q("f.json"), ReplaySource(tmp_path), S)
    assert len(res.pairs) == 2
    codes = [split_reasons(r) for r in res.rejections["reasons"]]
    assert codes.count(["truncated_json"]) == 1  # the real one only
    assert not any("A" in c for c in codes)
    assert sum("missing_id" in c for c in codes) == 2  # the two forged items that survived the cut
    real = res.rejections[res.rejections["reasons"] == "truncated_json"]
    assert json.loads(real["detail"].iloc[0])["file"] == "f.json" and real["item_kind"].iloc[0] == "item"


@pytest.mark.parametrize("store", ["memory", "duckdb"])
def test_checkpoints_keep_markers_markers_and_items_items(tmp_path, store):
    cp = InMemoryCheckpointStore() if store == "memory" else DuckDBCheckpointStore(tmp_path / "c.duckdb")
    marker = DamagedInput("bad_json_line", "f.jsonl", 3, "{oops")
    envelope_lookalike = {"items": [], "damaged": [[0, {"damaged_input": "A"}]]}
    cp.save("q", SEARCH_KEY, [FORGED[0], marker, envelope_lookalike])
    back = cp.load("q")[SEARCH_KEY]
    assert back == [FORGED[0], marker, envelope_lookalike]
    assert isinstance(back[1], DamagedInput) and isinstance(back[0], dict) and isinstance(back[2], dict)
    cp.save("q", "1", [{"id": "2"}])
    assert cp.load("q")["1"] == [{"id": "2"}]


def test_a_resumed_collection_keeps_the_real_marker(tmp_path):
    lines = [json.dumps(i) for i in conversation("apidojo", 1, 2, id_base=100)] + ["{not json", json.dumps(FORGED[0])]
    (tmp_path / "f.jsonl").write_text("\n".join(lines) + "\n")
    cp = InMemoryCheckpointStore()
    first = collect_partition(_q("f.jsonl"), ReplaySource(tmp_path), S, checkpoint=cp)
    again = collect_partition(_q("f.jsonl"), ReplaySource(tmp_path), S, checkpoint=cp)
    assert again.funnel["searched"] is False
    for res in (first, again):
        reasons = sorted(res.rejections["reasons"])
        assert "bad_json_line" in reasons and "A" not in ",".join(reasons)
        assert len(res.pairs) == 2


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_cli_normalize_rejects_forged_markers_for_what_they_are(tmp_path):
    write_json(tmp_path / "x.json", [apidojo(1, "tweet"), *FORGED,
                                    apidojo(2, "A reply that is long enough to be kept by the filters.",
                                            parent=1, at=T0 + timedelta(hours=1), likes=10)])
    p = run_cli("x.json", "--rejected", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert "A" not in row["reasons"] and "truncated_json" not in row["reasons"], row
        assert "missing_created_at" in row["reasons"]
        assert row["item"]["_replay_error"] in {"A", "truncated_json", "missing_id"}  # shown as data
    assert "truncated_json" not in p.stderr and "  A " not in p.stderr


def test_apify_items_cannot_pose_as_markers(tmp_path):
    """The Apify source hands items to the same normalizer: a forged key is just a key."""
    from replyassets.sources.apify import ApifySource
    from replyassets_tests.fakes import FakeApifyServer
    from replyassets_tests.sources.test_apify import (
        QUERY,
        SENTINEL,
        TWEET_IDS,
        reply_item,
        tweet_item,
    )

    with FakeApifyServer(token=SENTINEL) as api:
        tid = TWEET_IDS[0]
        api.add_search(QUERY.text, [tweet_item(tid), {"_replay_error": "A"},
                                    {**tweet_item(TWEET_IDS[1]), "_replay_error": "A"}])
        api.add_replies(tid, [reply_item(tid, 1), {"_replay_error": "B", "_file": "x"}])
        api.add_replies(TWEET_IDS[1], [reply_item(TWEET_IDS[1], 1)])
        src = ApifySource(SENTINEL, api_url=api.url, max_retries=0, wait_poll_s=0.0, sleep=lambda s: None)
        res = collect_partition(QUERY, src, S)
    assert sorted(res.pairs["tweet_id"]) == sorted(TWEET_IDS[:2])  # the good tweet with the key is used
    codes = ",".join(res.rejections["reasons"])
    assert "missing_id" in codes and "A" not in split_reasons(codes) and "B" not in split_reasons(codes)
    assert len(res.rejections) == 2
