"""scripts/make_sample.py is deterministic and writes every export format it promises."""

from __future__ import annotations

import subprocess
import sys

from replyassets.core.normalize import normalize_item
from replyassets.settings import PROJECT_ROOT, load_queries
from replyassets.sources.replay import ReplaySource, read_items

SCRIPT = PROJECT_ROOT / "scripts" / "make_sample.py"


def generate(out):
    p = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--queries", str(out / "queries.yaml"),
                        "--no-embed-check"], capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr
    return {f.name: f.read_bytes() for f in sorted(out.iterdir())}


def test_generator_is_deterministic_and_covers_every_format(tmp_path):
    a = generate(tmp_path / "a")
    b = generate(tmp_path / "b")
    assert a == b
    assert sum(len(v) for v in a.values()) < 8 * 1024 * 1024
    formats = set()
    for name in a:
        if name.endswith((".json", ".jsonl")) and name != "malformed.jsonl":
            for item in read_items(tmp_path / "a" / name):
                rec, reasons = normalize_item(item)
                assert not reasons, (name, reasons)
                formats.add(rec["format"])
    assert formats == {"apidojo", "legacy", "twscrape", "twitterapi"}
    queries = load_queries(tmp_path / "a" / "queries.yaml")
    assert len(queries) >= 5
    src = ReplaySource(tmp_path / "a")
    for q in queries:
        assert src.search_tweets(q, None)  # every replay file exists and has tweets
