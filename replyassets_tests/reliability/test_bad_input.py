"""Bad input, fuzzed: every hostile item becomes a pair or a rejected row with a reason, never a
crash, and what is stored through the project's storage reads back intact."""

from __future__ import annotations

import ast
import json
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from replyassets.core.collect import collect_partition
from replyassets.core.columns import PAIR_COLUMNS, REJECTION_COLUMNS
from replyassets.core.normalize import RECORD_FIELDS, normalize_item
from replyassets.settings import CollectionSettings, QuerySpec, ValidationSettings
from replyassets.sources.base import SourceError
from replyassets.sources.replay import ReplaySource, read_items
from replyassets_tests.hypothesis_profiles import examples
from replyassets_tests.reliability import tally
from replyassets_tests.reliability.hostile import (
    ODD_TEXTS,
    SQL_STRINGS,
    UNSTORABLE_TEXTS,
    hostile_items,
    reply_item,
    tweet_item,
)
from replyassets_tests.reliability.storage_io import (
    integrity_ok,
    read_table,
    store_partitioned,
    table_names,
)

REASON_RE = re.compile(r"^[a-z0-9_]+$")
SURROGATE_RE = re.compile("[\ud800-\udfff]")
ITEM_KEYS = (
    "id", "id_str", "text", "fullText", "full_text", "rawContent", "createdAt", "created_at", "date",
    "likeCount", "favorite_count", "retweetCount", "retweet_count", "lang", "isReply", "isRetweet",
    "isQuote", "conversationId", "inReplyToId", "author", "user", "entities", "media", "links",
    "tweets", "items", "tweet_id", "reply_id", "_replay_error", "has_media", "has_urls", "is_reply",
)

# ----------------------------------------------------------------------------- strategies

surrogate = st.integers(0xD800, 0xDFFF).map(chr)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(ODD_TEXTS + UNSTORABLE_TEXTS + SQL_STRINGS),
    st.tuples(st.text(max_size=10), surrogate, st.text(max_size=10)).map("".join),
    st.binary(max_size=30).map(lambda b: b.decode("utf-8", "surrogateescape")),  # invalid UTF-8 bytes
    st.integers(0, 10**25).map(str),
    st.sampled_from(["Thu Oct 02 07:11:55 +0000 2025", "2024-03-16 10:51:31+00:00", "2025-13-45T99:00:00Z",
                     "1700000000", "1e308", "-0", "NaN", "\x00", "\u202e", "\ufeff"]),
)
leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), hostile_text,
)
json_value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(ITEM_KEYS) | hostile_text, inner, max_size=5),
    max_leaves=15,
)
random_item = st.dictionaries(st.sampled_from(ITEM_KEYS), json_value, max_size=12)
mutated_item = st.builds(
    lambda base, patch, drop: {**{k: v for k, v in base.items() if k not in drop}, **patch},
    st.sampled_from([tweet_item("700"), reply_item("701", "700")]),
    st.dictionaries(st.sampled_from(ITEM_KEYS), json_value, max_size=3),
    st.sets(st.sampled_from(ITEM_KEYS), max_size=3),
)
any_item = st.one_of(mutated_item, random_item, json_value)


def check_normalized(item: Any) -> None:
    rec, reasons = normalize_item(item)
    if rec is None:
        assert reasons, f"rejected without a reason: {item!r:.200}"
        assert all(isinstance(r, str) and REASON_RE.match(r) for r in reasons), reasons
        return
    assert reasons == []
    assert set(rec) == set(RECORD_FIELDS)
    assert isinstance(rec["id"], str) and rec["id"] and not SURROGATE_RE.search(rec["id"])
    assert isinstance(rec["text"], str) and rec["text"].strip()
    assert not SURROGATE_RE.search(rec["text"]) and "\x00" not in rec["text"]
    assert rec["author"] is None or not SURROGATE_RE.search(rec["author"])
    assert isinstance(rec["created_at"], datetime) and rec["created_at"].tzinfo is None
    for k in ("likes", "retweets"):
        assert isinstance(rec[k], int) and not isinstance(rec[k], bool) and rec[k] >= 0
    for k in ("is_retweet", "is_quote", "is_reply", "has_media", "has_urls"):
        assert isinstance(rec[k], bool)
    json.dumps(rec, default=str).encode("utf-8")  # storable as UTF-8


def check_markers_are_not_input(item: Any) -> None:
    """No key of an item can pose as a source's marker: keys starting with "_" (such as
    ``_replay_error``) change nothing in the verdict."""
    if isinstance(item, dict) and any(isinstance(k, str) and k.startswith("_") for k in item):
        plain = {k: v for k, v in item.items() if not (isinstance(k, str) and k.startswith("_"))}
        assert normalize_item(item) == normalize_item(plain), item


def assert_accounted(result, n_tweet_items: int, n_file_items: int | None = None) -> None:
    """Every item the collection saw is a pair or a rejection with reasons, and every item
    of the replay files was seen (none vanishes; a reply two kept tweets claim counts twice)."""
    pairs, rej = result.pairs, result.rejections
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    assert list(rej.columns) == list(REJECTION_COLUMNS)
    assert result.funnel["tweet_items_in"] == n_tweet_items
    assert result.funnel["items_in"] == len(pairs) + len(rej) + result.funnel["tweets_paired"]
    if n_file_items is not None:
        assert result.funnel["items_in"] >= n_file_items, (result.funnel, n_file_items)
    assert rej["reasons"].fillna("").str.len().gt(0).all(), "a rejected row without a reason"
    for r in rej["reasons"]:
        assert all(REASON_RE.match(code) for code in r.split(",")), r
    assert pairs["reply_id"].is_unique


def assert_storable(frames: dict[str, pd.DataFrame]) -> None:
    """DuckDB (in memory) accepts every frame as it is and returns the same number of rows."""
    con = duckdb.connect()
    try:
        for name, df in frames.items():
            con.register("df", df)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM df")
            con.unregister("df")
            assert con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] == len(df)
    finally:
        con.close()


# ----------------------------------------------------------------------------- normalizer


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@hsettings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_item)
# fixed examples (found by fuzzing or by review) run on every commit, whatever the profile
@example({"_replay_error": "A"})  # an item once named its own rejection reason
@example({"_replay_error": "truncated_json", "_file": "x.json", "_line": 3})
@example({**tweet_item("700"), "_replay_error": "A"})
def test_normalizer_never_raises_on_generated_items(item):
    tally.add("inputs_tried")
    check_normalized(item)
    check_markers_are_not_input(item)


def test_normalizer_hand_made_hostile_items():
    items = hostile_items()
    tally.add("inputs_tried", len(items))
    for item in items:
        check_normalized(item)
    # a zero-width / RTL / SQL-looking text is kept verbatim (it is data, not code)
    for text in ODD_TEXTS:
        rec, reasons = normalize_item({**tweet_item("1"), "text": text})
        assert reasons == [] and rec["text"].strip(), (text, reasons)
    for text in UNSTORABLE_TEXTS:
        rec, reasons = normalize_item({**tweet_item("1"), "text": text})
        assert rec is None and reasons, text


def test_deeply_nested_item_is_rejected_not_a_recursion_crash():
    deep: Any = "x"
    for _ in range(50_000):
        deep = [deep]
    item = {**tweet_item("5"), "entities": {"urls": deep}, "text": {"a": deep}}
    tally.add("inputs_tried")
    rec, reasons = normalize_item(item)
    assert rec is None and reasons


# ----------------------------------------------------------------------------- collection


def _replay_query(tmp: Path, name: str, data: bytes, suffix: str = ".json") -> tuple[QuerySpec, ReplaySource]:
    sample = tmp / "sample"
    sample.mkdir(parents=True, exist_ok=True)
    (sample / f"{name}{suffix}").write_bytes(data)
    return QuerySpec(name=name, text=name, replay=[f"{name}{suffix}"]), ReplaySource(sample)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@hsettings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_item, max_size=12), st.lists(mutated_item, max_size=8))
@example([{"_replay_error": "A"}], [{**reply_item("702", "700"), "_replay_error": "B"}])
@example([reply_item("900", "999")], [reply_item("703", "701"), reply_item("704", "900")])  # orphans
def test_collect_partition_on_generated_replay_files(tweets, replies):
    tid = "700"
    items = [tweet_item(tid)] + tweets + [reply_item(f"8{i}", tid) for i in range(2)] + replies
    tally.add("inputs_tried", len(items))
    with tempfile.TemporaryDirectory() as d:
        data = json.dumps(items).encode()  # lone surrogates travel as \udXXX escapes
        spec, source = _replay_query(Path(d), "fuzz", data)
        result = collect_partition(spec, source, CollectionSettings())
        n_file_items = len(read_items(Path(d) / "sample" / "fuzz.json"))
    n_tweet_items = len(source.search_tweets(spec, CollectionSettings()))
    assert_accounted(result, n_tweet_items, n_file_items)
    codes = set(",".join(result.rejections["reasons"]).split(","))
    assert not codes & {"A", "B"}, codes
    assert_storable({"pairs": result.pairs, "rejections": result.rejections})


def _good_block(tid: str) -> list[dict]:
    return [tweet_item(tid)] + [reply_item(f"{tid}{i}", tid) for i in range(3)]


HOSTILE_FILES: dict[str, tuple[str, bytes]] = {
    "empty": (".json", b""),
    "whitespace": (".json", b"  \n\t "),
    "empty-jsonl": (".jsonl", b"\n\n"),
    "scalar-int": (".json", b"42"),
    "scalar-str": (".json", b'"just a string"'),
    "scalar-null": (".json", b"null"),
    "scalar-true": (".json", b"true"),
    "empty-array": (".json", b"[]"),
    "empty-object": (".json", b"{}"),
    "truncated": (".json", json.dumps(_good_block("31")).encode()[:-40]),
    "truncated-first": (".json", b'[{"id": "1", "text": "abc'),
    "not-json": (".json", b"<html>502 Bad Gateway</html>"),
    "invalid-utf8": (".json", b'[{"id": "1", "text": "caf\xe9 \xff\xfe"}]'),
    "invalid-utf8-lines": (".jsonl", b"\n".join(json.dumps(x).encode() for x in _good_block("32"))
                           + b'\n{"id": "2", "text": "\xff\xfe"}\n'),
    "lone-surrogates": (".json", json.dumps(_good_block("33") + [{**tweet_item("34"), "text": "a \ud800 b"},
                                                                  reply_item("3301", "33", "x \udc00 " * 10)]).encode()),
    "null-bytes-raw": (".json", b'[{"id": "1"}]\x00\x00\x00'),
    "null-escapes": (".json", json.dumps(_good_block("35") + [reply_item("3502", "35", "nul\u0000 " * 12)]).encode()),
    "bom": (".json", b"\xef\xbb\xbf" + json.dumps(_good_block("36")).encode()),
    "deep-json": (".json", b"[" * 100_000 + b"]" * 100_000),
    "deep-jsonl": (".jsonl", json.dumps(_good_block("37")[0]).encode() + b"\n" + b"[" * 100_000 + b"]" * 100_000),
    "deep-item": (".json", b'[{"id": "1", "entities": ' + b"[" * 5_000 + b"]" * 5_000 + b"}]"),
    "huge-text": (".json", json.dumps(_good_block("38") + [reply_item("3803", "38", "word " * 400_000),
                                                           {**tweet_item("39"), "text": "y" * 2_000_000}]).encode()),
    "sql": (".json", json.dumps([{**tweet_item("40"), "text": s + " and more words"} for s in SQL_STRINGS]
                                + [reply_item(f"40{i}", "40", s + " that is a long enough reply to keep it")
                                   for i, s in enumerate(SQL_STRINGS)]
                                + [{**tweet_item("41"), "author": {"userName": SQL_STRINGS[0], "followers": 9}}]).encode()),
    "wrapper": (".json", json.dumps({"tweets": _good_block("42"), "next": None}).encode()),
    "wrong-types": (".json", json.dumps([{"id": [1], "text": ["a"], "createdAt": {}, "likeCount": "x"},
                                         {"tweets": 5}, [1, [2, [3]]], 7, None]).encode()),
    "hand-made": (".json", json.dumps(hostile_items("43")[:-1]).encode()),  # the last one is deeper than json allows
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_collect_partition_on_hostile_files(tmp_path, name):
    suffix, data = HOSTILE_FILES[name]
    qname = re.sub(r"[^a-z0-9-]", "-", name)
    spec, source = _replay_query(tmp_path, qname, data, suffix)
    tally.add("inputs_tried")
    try:
        result = collect_partition(spec, source, CollectionSettings())
    except SourceError as exc:
        # A clear error naming the file, never an exception from deep inside.
        assert f"{qname}{suffix}" in str(exc), str(exc)
        assert name in {"not-json", "invalid-utf8", "deep-json", "deep-item", "truncated-first", "null-bytes-raw"}, (name, str(exc))
        return
    assert_accounted(result, len(source.search_tweets(spec, CollectionSettings())),
                     len(read_items(tmp_path / "sample" / f"{qname}{suffix}")))
    assert_storable({"pairs": result.pairs, "rejections": result.rejections})
    if name in {"truncated", "invalid-utf8-lines", "deep-jsonl"}:
        codes = ",".join(result.rejections["reasons"])
        assert "truncated_json" in codes or "bad_json_line" in codes
    if name in {"truncated", "lone-surrogates", "null-escapes", "bom", "huge-text", "wrapper", "sql", "invalid-utf8-lines"}:
        assert len(result.pairs) >= 1, "the well-formed items next to the hostile ones still become pairs"


def test_missing_and_escaping_replay_files_are_clear_errors(tmp_path):
    sample = tmp_path / "sample"
    sample.mkdir()
    (tmp_path / "secret.json").write_text(json.dumps(_good_block("1")))
    source = ReplaySource(sample)
    for rel, words in [("nope.json", "cannot read"), ("../secret.json", "escapes"), ("/etc/passwd", "relative"),
                       ("a/../../secret.json", "escapes")]:
        tally.add("inputs_tried")
        spec = QuerySpec(name="q", text="q", replay=[rel])
        with pytest.raises(SourceError, match=words):
            collect_partition(spec, ReplaySource(sample), CollectionSettings())
    assert source.stats()["files_read"] == 0


def test_hostile_collection_round_trips_through_project_storage(tmp_path):
    """Pairs and rejections of every hostile file, written twice through the transactional IO
    manager: the tables read back with the same rows (no duplicates), text verbatim."""
    frames_p, frames_r = [], []
    for name, (suffix, data) in sorted(HOSTILE_FILES.items()):
        qname = re.sub(r"[^a-z0-9-]", "-", name)
        spec, source = _replay_query(tmp_path, qname, data, suffix)
        try:
            res = collect_partition(spec, source, CollectionSettings())
        except SourceError:
            continue
        frames_p.append(res.pairs)
        frames_r.append(res.rejections)
    pairs = pd.concat(frames_p, ignore_index=True).assign(query="hostile")
    rej = pd.concat(frames_r, ignore_index=True).assign(query="hostile")
    assert len(pairs) > 5 and len(rej) > 50
    db = tmp_path / "store.duckdb"
    for _ in range(2):  # a re-materialization replaces the partition
        store_partitioned(db, {"raw_tweets": pairs, "raw_tweet_rejections": rej}, "hostile")
    integrity_ok(db)
    assert table_names(db) == ["raw_tweet_rejections", "raw_tweets"]  # no DROP TABLE ran
    back_p = read_table(db, "raw_tweets")
    back_r = read_table(db, "raw_tweet_rejections")
    assert len(back_p) == len(pairs) and len(back_r) == len(rej)
    assert sorted(back_p["reply"]) == sorted(pairs["reply"])
    assert sorted(back_r["detail"]) == sorted(rej["detail"])
    stored_text = set(back_p["tweet"]) | set(back_p["reply"])
    assert any(s in t for t in stored_text for s in SQL_STRINGS), "SQL-looking text is stored verbatim"


# ----------------------------------------------------------------------------- validators


@pytest.fixture(scope="module")
def scorers():
    from replyassets.scorers.language import LanguageScorer
    from replyassets.scorers.toxicity import make_toxicity_scorer

    return LanguageScorer(), make_toxicity_scorer("local")


def _hostile_pairs() -> pd.DataFrame:
    base = {
        "query": "q", "source": "replay", "tweet_id": "1", "tweet": "What did agents teach you?",
        "tweet_author": "a", "tweet_author_followers": 10, "tweet_likes": 500, "tweet_retweets": 50,
        "tweet_created_at": "2025-01-01T00:00:00", "reply_id": "r", "reply_author": "b",
        "reply_author_followers": 1000, "reply_likes": 20, "reply_retweets": 0,
        "reply_created_at": "2025-01-01T01:00:00", "reply_time_diff_seconds": 3600,
        "has_media": False, "has_urls": False, "lang": "en", "collected_at": "2025-01-02T00:00:00",
        "reply": "Planning with explicit checklists beat freeform prompting for long multi step coding tasks here",
    }
    texts = list(ODD_TEXTS + UNSTORABLE_TEXTS + SQL_STRINGS) + [None, 5, 3.5, ["a"], {"k": "v"}, b"\xff\xfe", "word " * 50_000]
    odd_values = {
        "reply_likes": ["abc", None, 3.5, 10**30, "7", 2**63, float("inf"), -1, True, [1]],
        "has_urls": ["abc", None, 3, "yes", [1], {}, 1.5, "false"],
        "reply_created_at": ["abc", None, 3, 10**20, [1], "9999-12-31T00:00:00", -5, "2025-02-30"],
        "reply_id": ["\ud800", None, 5, 1.5, b"\xff", ["a"], float("nan"), "'; DROP TABLE x;--"],
        "tweet": [None, 1, "\ud800", "x" * 100_000],
        "query": [None, 5, "'); DROP TABLE validated_pairs;--"],
    }
    rows = [{**base, "reply_id": f"t{i}", "reply": t} for i, t in enumerate(texts)]
    for col, values in odd_values.items():
        rows += [{**base, "reply_id": f"{col}{i}", col: v} for i, v in enumerate(values)]
    rows += [{k: v for k, v in base.items() if k not in ("reply_likes", "tweet", "reply_id")}]
    df = pd.DataFrame(rows, dtype=object)
    return df


@pytest.mark.slow
def test_validate_pairs_with_real_scorers_on_hostile_rows(tmp_path, scorers):
    from replyassets.core.validate import validate_pairs

    language, toxicity = scorers
    pairs = _hostile_pairs()
    tally.add("inputs_tried", len(pairs))
    out = validate_pairs(pairs, ValidationSettings(), language, toxicity)
    assert len(out) == len(pairs)
    assert out["valid"].dtype == bool
    bad = out[~out["valid"]]
    assert bad["reasons"].fillna("").str.len().gt(0).all()
    assert (out.loc[out["valid"], "reasons"].fillna("") == "").all()
    assert not out.loc[pairs["reply_likes"].map(lambda v: isinstance(v, float) and v == 3.5).to_numpy(), "valid"].any()
    # the frame is storable through the project's storage and reads back whole
    out = out.assign(query="hostile")
    db = tmp_path / "v.duckdb"
    store_partitioned(db, {"validated_pairs": out}, "hostile")
    integrity_ok(db)
    back = read_table(db, "validated_pairs")
    assert len(back) == len(out)
    assert sorted(back["reasons"].fillna("")) == sorted(out["reasons"].fillna(""))


@pytest.mark.slow  # over 3 s (make check is the fast tier)
@hsettings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.sampled_from(list(PAIR_COLUMNS)), leaf, max_size=8), min_size=1, max_size=6))
def test_validate_pairs_on_generated_frames(scorers, rows):
    from replyassets.core.validate import validate_pairs

    language, toxicity = scorers
    df = pd.DataFrame(rows, dtype=object)
    tally.add("inputs_tried", len(df))
    out = validate_pairs(df, ValidationSettings(), language, toxicity)
    assert len(out) == len(df)
    assert (out["valid"] | out["reasons"].fillna("").str.len().gt(0)).all()
    assert_storable({"validated": out})


# ----------------------------------------------------------------------------- SQL hygiene

# f-string SQL may only interpolate identifiers that come from code: UPPER_CASE module constants
# (and joins of them), the IO manager's table slice, names validated against an identifier regex
# (reviewed one by one below). Anything else fails here.
ALLOWED_SQL_INTERPOLATIONS = {
    "table",                # storage.py: f"{table_slice.schema}.{table_slice.table}", from the asset key
    "table_slice.schema",   # storage.py: the IO manager's schema (config, not user input)
    "schema",               # commands/review.py: checked against an identifier regex first
    "name", "col_type",     # storage.py ALTER TABLE: column names/types of a frame built by code
    "self.table",           # core/embedding_cache.py: checked against an identifier regex
    "column_defs",          # core/db.py create_table_sql: the stores' column definitions (code constants)
    "where", "cols",        # storage.py: partition WHERE from the assets' partition_expr, values as ?
                            # parameters; the `columns` metadata of an asset (code), quoted
    "scratch", "casts",     # core/db.py retype_columns: identifiers and types checked by regexes first
}
_CONSTANT_RE = re.compile(r"^(?:[A-Z][A-Z0-9_]*|'[^']*'\.join\([A-Z][A-Z0-9_]*\))$")


def _allowed(expr: str) -> bool:
    return expr in ALLOWED_SQL_INTERPOLATIONS or bool(_CONSTANT_RE.match(expr))
_SQL_RE = re.compile(r"\b(SELECT|INSERT|DELETE|UPDATE|CREATE|DROP|ALTER|ATTACH|COPY|PRAGMA)\b.*\b(FROM|INTO|TABLE|SET|SCHEMA|WHERE)\b|\bFROM\b\s*$|\bWHERE\b")


def sql_fstrings(root: Path) -> list[tuple[str, int, list[str]]]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.JoinedStr):
                continue
            const = " ".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if _SQL_RE.search(const):
                exprs = [ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]
                found.append((str(path.relative_to(root.parent)), node.lineno, exprs))
    return found


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_sql_never_interpolates_user_values():
    import replyassets

    root = Path(replyassets.__file__).parent
    found = sql_fstrings(root)
    assert found, "the scan found no SQL at all: the detector is broken"
    offenders = [(p, line, e) for p, line, e in found if not all(_allowed(x) for x in e)]
    assert not offenders, f"SQL built from non-constant values (use ? parameters): {offenders}"


def test_sql_scan_flags_a_user_value():
    src = 'def f(con, q):\n    return con.execute(f"SELECT * FROM raw_tweets WHERE query = \'{q}\'")\n'
    with tempfile.TemporaryDirectory() as d:
        pkg = Path(d) / "pkg"
        pkg.mkdir()
        (pkg / "m.py").write_text(src)
        found = sql_fstrings(pkg)
    assert found and not all(_allowed(x) for x in found[0][2])


# ----------------------------------------------------------------------------- CLI


def _cli(*args: str, stdin: bytes | None = None, timeout: float = 300) -> "subprocess.CompletedProcess[bytes]":
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "replyassets.cli", *args], input=stdin, capture_output=True,
                          timeout=timeout, env=env)


def _no_crash(proc, what: str) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, f"{what} crashed:\n{err[-3000:]}"
    assert proc.returncode in (0, 1, 2), (what, proc.returncode, err[-2000:])


@pytest.mark.slow
def test_cli_normalize_on_hostile_files(tmp_path):
    readable, broken = [], []
    for name, (suffix, data) in sorted(HOSTILE_FILES.items()):
        p = tmp_path / f"{re.sub(r'[^a-z0-9-]', '-', name)}{suffix}"
        p.write_bytes(data)
        spec, source = _replay_query(tmp_path / "probe", name.replace("_", "-"), data, suffix)
        try:
            source.search_tweets(spec, CollectionSettings())
            readable.append(str(p))
        except SourceError:
            broken.append(str(p))
    tally.add("inputs_tried", len(readable) + len(broken))
    for flags in ([], ["--rejected"], ["--no-filters"]):
        proc = _cli("normalize", *flags, *readable)
        _no_crash(proc, f"normalize {flags}")
        assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-2000:]
        lines = [ln for ln in proc.stdout.decode("utf-8").splitlines() if ln.strip()]
        for ln in lines:
            json.loads(ln)  # every output line is one JSON object
        if flags == ["--rejected"]:
            assert len(lines) > 50 and all(json.loads(ln).get("reasons") for ln in lines)
    for path in broken:  # one clear line naming the file, exit code 2
        proc = _cli("normalize", path)
        _no_crash(proc, f"normalize {path}")
        assert proc.returncode == 2 and Path(path).name in proc.stderr.decode("utf-8", "replace")


@pytest.mark.slow
def test_cli_validate_and_dedupe_on_hostile_pairs(tmp_path):
    pairs = _hostile_pairs()
    lines = [json.dumps({k: (v if not isinstance(v, bytes) else v.decode("latin-1")) for k, v in row.items()},
                        default=str, allow_nan=True)
             for row in pairs.to_dict("records")]
    lines += [json.dumps({"deep": json.loads("[" * 500 + "]" * 500), "reply": "a"}), "{}"]
    src = tmp_path / "pairs.jsonl"
    src.write_text("\n".join(lines) + "\n")
    tally.add("inputs_tried", len(lines))
    proc = _cli("validate", "--summary", str(src))
    _no_crash(proc, "validate")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-2000:]
    out = [json.loads(ln) for ln in proc.stdout.decode("utf-8").splitlines() if ln.strip()]
    assert len(out) == len(lines)
    assert all(r["valid"] or r["reasons"] for r in out)
    validated = tmp_path / "validated.jsonl"
    validated.write_bytes(proc.stdout)
    proc = _cli("dedupe", "--exact-only", str(validated))
    _no_crash(proc, "dedupe")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-2000:]
    deduped = [json.loads(ln) for ln in proc.stdout.decode("utf-8").splitlines() if ln.strip()]
    assert len(deduped) == len(out) and all("kept" in r for r in deduped)
    # a line that is not a JSON object: a clear error naming file and line, no traceback
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"reply": "ok"}\n\xff\xfe not json\n')
    tally.add("inputs_tried")
    for cmd in ("validate", "dedupe"):
        proc = _cli(cmd, *(["--exact-only"] if cmd == "dedupe" else []), str(bad))
        _no_crash(proc, cmd)
        assert proc.returncode == 2 and "bad.jsonl:2" in proc.stderr.decode("utf-8", "replace"), proc.stderr[-500:]
