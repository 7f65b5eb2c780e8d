"""`replyassets normalize` run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from replyassets.core.columns import PAIR_COLUMNS
from replyassets.settings import PROJECT_ROOT

from .shapes import T0, apidojo, conversation, write_json, write_jsonl


def run_cli(*args, cwd: Path):
    env = dict(os.environ, REPLYASSETS_PROFILE="local", PYTHONIOENCODING="utf-8")
    env.pop("REPLYASSETS_SETTINGS", None)
    return subprocess.run([sys.executable, "-m", "replyassets.cli", "normalize", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_pairs_jsonl_and_summary(tmp_path):
    write_json(tmp_path / "a.json", {"tweets": conversation("twitterapi", 2, 3, id_base=100)})
    write_jsonl(tmp_path / "sub" / "b.jsonl", conversation("twscrape", 1, 2, id_base=900) + [
        apidojo(999, "too short", parent=900, at=T0 + timedelta(hours=1))])
    p = run_cli(tmp_path / "a.json", tmp_path / "sub" / "b.jsonl", cwd=PROJECT_ROOT)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 8 and all(list(r) == list(PAIR_COLUMNS) for r in rows)
    assert {r["query"] for r in rows} == {"cli"}
    assert rows[0]["tweet_created_at"].startswith("2025-10-02T")
    assert "pairs kept: 8" in p.stderr and "too_short" in p.stderr


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_rejected_items_with_reasons(tmp_path):
    items = [apidojo(1, "tweet"), apidojo(2, "short", parent=1, at=T0 + timedelta(seconds=10), likes=0),
             None, {"id": "3", "text": "bad \ud800", "createdAt": "nope"}]
    (tmp_path / "x.json").write_text(json.dumps(items))
    p = run_cli("x.json", "--rejected", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    by_id = {r["item_id"]: r for r in rows}
    assert by_id["2"]["reasons"] == ["likes_below_min", "too_early", "too_short"]
    assert by_id["2"]["item"]["id"] == "2" and by_id["2"]["stage"] == "reply_filter"
    assert by_id[None]["reasons"] == ["not_an_object"]
    assert set(by_id["3"]["reasons"]) >= {"bad_text", "bad_created_at"}


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_hostile_input_exits_zero(tmp_path):
    (tmp_path / "h.jsonl").write_bytes(b'null\n[1,2]\n{"id": {}}\n\xff\xfe\n{"tweets": [{"id": "1"}]}\n{"cut": ')
    (tmp_path / "h2.json").write_text(json.dumps([{"text": "x" * 200_000}] * 3))
    p = run_cli(tmp_path / "h.jsonl", tmp_path / "h2.json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and "pairs kept: 0" in p.stderr and "bad_json_line" in p.stderr


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_unreadable_file_exits_non_zero(tmp_path):
    (tmp_path / "broken.json").write_text("{ definitely not json")
    p = run_cli(tmp_path / "broken.json", cwd=tmp_path)
    assert p.returncode == 2 and "broken.json" in p.stderr and "Traceback" not in p.stderr
    p = run_cli(tmp_path / "missing.json", cwd=tmp_path)
    assert p.returncode == 2 and "missing.json" in p.stderr


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_round_trip_of_its_own_output(tmp_path):
    write_json(tmp_path / "a.json", conversation("apidojo", 3, 3, id_base=100))
    first = run_cli(tmp_path / "a.json", cwd=tmp_path)
    (tmp_path / "pairs.jsonl").write_text(first.stdout)
    second = run_cli(tmp_path / "pairs.jsonl", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    strip = lambda out: [{k: v for k, v in json.loads(l).items() if k != "collected_at"} for l in out.splitlines()]
    assert strip(second.stdout) == strip(first.stdout) and len(strip(first.stdout)) == 9


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_an_export_of_replies_only_accounts_for_every_item(tmp_path):
    """Replies whose tweets are not in the export used to vanish ("items in: 0")."""
    text = "A considered reply with more than enough characters to pass every filter."
    replies = [apidojo(100 + i, f"{text} ({i})", parent=1, at=T0 + timedelta(hours=1), author=f"u{i}")
               for i in range(4)]
    replies.append(apidojo(200, f"{text} (to a reply)", parent=100, conversation=1, at=T0 + timedelta(hours=2)))
    write_json(tmp_path / "replies.json", replies)
    p = run_cli("replies.json", "--rejected", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert sorted(r["item_id"] for r in rows) == sorted(str(r["id"]) for r in replies)
    by_id = {r["item_id"]: r for r in rows}
    assert all(by_id[str(100 + i)]["reasons"] == ["orphan_reply"] for i in range(4))
    assert by_id["200"]["reasons"] == ["reply_to_reply"] and by_id["200"]["stage"] == "pairing"
    assert "items in: 5" in p.stderr and "pairs kept: 0  rejected: 5" in p.stderr
    assert "orphan_reply" in p.stderr and "reply_to_reply" in p.stderr
    plain = run_cli("replies.json", cwd=tmp_path)
    assert plain.returncode == 0 and plain.stdout == "" and "items in: 5" in plain.stderr
