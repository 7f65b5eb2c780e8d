"""The one strict JSONL reader used by the CLI subcommands and the training program."""

from __future__ import annotations

import io
import json

import pytest

from replyassets.core.jsonl import JSONLError, read_objects
from replyassets.training.data import DataError, read_jsonl


def test_reads_objects_skipping_blank_lines(tmp_path, monkeypatch):
    f = tmp_path / "a.jsonl"
    f.write_text('{"a": 1}\n\n  \n{"b": "é"}\n', encoding="utf-8")
    assert read_objects(f) == [{"a": 1}, {"b": "é"}]
    monkeypatch.setattr("sys.stdin", io.StringIO('{"c": 3}\n'))
    assert read_objects("-") == [{"c": 3}]


@pytest.mark.parametrize("body, message", [
    ('{"a": 1}\n{"a": \n', "x.jsonl:2: not valid JSON"),
    ('[1, 2]\n', "x.jsonl:1: expected a JSON object, got list"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, body, message):
    f = tmp_path / "x.jsonl"
    f.write_text(body)
    with pytest.raises(JSONLError, match=message):
        read_objects(f)
    with pytest.raises(DataError, match=message):  # the training program says the same
        read_jsonl(f)


def test_missing_file_empty_file_and_bad_bytes(tmp_path):
    with pytest.raises(JSONLError, match="none.jsonl: no such file"):
        read_objects(tmp_path / "none.jsonl")
    with pytest.raises(DataError, match="data file not found"):
        read_jsonl(tmp_path / "none.jsonl")
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    assert read_objects(empty) == []
    with pytest.raises(DataError, match="no rows"):
        read_jsonl(empty)
    bad = tmp_path / "b.jsonl"
    bad.write_bytes(json.dumps({"text": "ok"}).encode()[:-2] + b'\xff"}\n')
    assert read_objects(bad) == [{"text": "ok\ufffd"}]  # the CLI reads on, replacing the byte
    with pytest.raises(DataError, match="not UTF-8"):  # training stops instead of learning U+FFFD
        read_jsonl(bad)
