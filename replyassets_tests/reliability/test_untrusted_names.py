"""Untrusted names: query names become partition keys, SQL values and folder names; replay
paths name files. Neither may escape the data folders or carry odd characters."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from replyassets.settings import QuerySpec, load_queries, validate_slug
from replyassets.sources.base import SourceError
from replyassets.sources.replay import ReplaySource
from replyassets_tests.reliability import tally
from replyassets_tests.reliability.hostile import tweet_item

BAD_NAMES = [
    "../x", "..", ".", "a/b", "a\\b", "/etc", "A B", "Ai-agents", "ai agents", "x;drop", "x'; DROP TABLE raw_tweets;--",
    "ai\n", "ai\r\n", "\nai", "ai\x00", "ai\t", "-ai", "ai-", "ai_agents", "ai.agents", "ai@x", "ai%2f..", "ai*",
    "аi-agents",          # Cyrillic а (U+0430)
    "ai-agеnts",          # Cyrillic е (U+0435)
    "ａｉ",               # fullwidth
    "ai\u200b",           # zero-width space
    "ai\u202e",           # right-to-left override
    "ı",                  # dotless i
    "١٢٣",                # Arabic-Indic digits
    "", " ", "a" * 65, "a" * 200,
]
GOOD_NAMES = ["a", "ai", "ai-agents", "x1", "1x", "a" * 64, "a-b-c-9"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[ascii(n)[:24] for n in BAD_NAMES])
def test_validate_slug_refuses(name):
    tally.add("inputs_tried")
    with pytest.raises(ValueError, match="invalid query name"):
        validate_slug(name)
    with pytest.raises(ValueError, match="invalid query name"):
        QuerySpec(name=name, text="some search")


@pytest.mark.parametrize("value", [None, 5, 1.5, ["ai"], {"a": 1}, b"ai", True])
def test_validate_slug_refuses_non_strings(value):
    tally.add("inputs_tried")
    with pytest.raises(ValueError):
        validate_slug(value)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_validate_slug_accepts_plain_slugs(name):
    assert validate_slug(name) == name
    assert QuerySpec(name=name, text="x").name == name


@pytest.mark.parametrize("name", ["../x", "a/b", "A B", "x;drop", "аi-agents", "", "a" * 65, "ai\n"],
                         ids=["dotdot", "slash", "space", "semicolon", "cyrillic", "empty", "65", "newline"])
def test_queries_file_with_a_bad_name_fails_clearly(tmp_path, name):
    qfile = tmp_path / "queries.yaml"
    qfile.write_text(yaml.safe_dump({"queries": [{"name": "fine", "text": "ok"}, {"name": name, "text": "ai agents"}]},
                                    allow_unicode=True))
    tally.add("inputs_tried")
    with pytest.raises(ValueError) as info:
        load_queries(qfile)
    msg = str(info.value)
    assert str(qfile) in msg and "#2" in msg, msg         # which file, which entry
    assert "invalid query name" in msg and repr(name) in msg, msg


@pytest.mark.parametrize("doc,words", [
    ("queries: 5\n", "'queries' list"),
    ("- just\n- a list\n", "'queries' list"),
    ("queries:\n  - name: ok\n", "text"),
    ("queries:\n  - name: ok\n    text: '   '\n", "must not be empty"),
    ("queries:\n  - {name: a, text: x}\n  - {name: a, text: y}\n", "duplicate query names"),
    ("queries:\n  - {name: a, text: x, overrides: {tweet_min_likes: 1}, evil: 1}\n", "evil"),
])
def test_malformed_queries_files(tmp_path, doc, words):
    qfile = tmp_path / "q.yaml"
    qfile.write_text(doc)
    tally.add("inputs_tried")
    with pytest.raises(ValueError, match=words):
        load_queries(qfile)


def test_queries_file_cannot_run_code(tmp_path):
    qfile = tmp_path / "q.yaml"
    marker = tmp_path / "pwned"
    qfile.write_text(f"queries: !!python/object/apply:os.system ['touch {marker}']\n")
    tally.add("inputs_tried")
    with pytest.raises(yaml.YAMLError):
        load_queries(qfile)
    assert not marker.exists()


def test_unknown_override_is_refused():
    spec = QuerySpec(name="a", text="x", overrides={"database": "/tmp/evil.duckdb"})
    from replyassets.settings import CollectionSettings

    with pytest.raises(ValueError, match="unknown overrides"):
        spec.collection_settings(CollectionSettings())


@pytest.mark.parametrize("rel", ["../outside.json", "../../etc/passwd", "/etc/passwd", "sub/../../outside.json",
                                 "link.json", "linkdir/outside.json", "", "  "])
def test_replay_paths_cannot_escape_the_sample_dir(tmp_path, rel):
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "sub").mkdir()
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps([tweet_item("1")]))
    os.symlink(outside, sample / "link.json")       # a symlink inside pointing outside
    os.symlink(tmp_path, sample / "linkdir")
    source = ReplaySource(sample)
    spec = QuerySpec(name="q", text="q", replay=[rel])
    tally.add("inputs_tried")
    with pytest.raises(SourceError) as info:
        source.search_tweets(spec, None)
    assert any(w in str(info.value) for w in ("escapes", "relative", "empty")), str(info.value)
    assert source.stats()["files_read"] == 0


def test_replay_inside_the_sample_dir_still_works(tmp_path):
    sample = tmp_path / "sample"
    (sample / "sub").mkdir(parents=True)
    (sample / "sub" / "a.json").write_text(json.dumps([tweet_item("1")]))
    source = ReplaySource(sample)
    spec = QuerySpec(name="q", text="q", replay=["sub/./a.json"])
    assert len(source.search_tweets(spec, None)) == 1
