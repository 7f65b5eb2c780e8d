"""``make demo``'s path on real-shaped exports, from an empty run to a full one.

Every process is what a user runs (``python -m replyassets.demo``) against one temporary
Dagster instance, DuckDB file and data dir. First with the default settings: the viral tweets
exceed ``collection.tweet_max_likes`` and every item is rejected, so the demo says where (the
failed check on each ``raw_tweets`` partition, with the rule and setting that removed most
items) while ``deduped_pairs`` and ``curated_set`` are written empty. Then with the user's
settings file raising the windows: the same instance and tables take the data (an empty
first run must not poison the typed tables), with no crash and nothing lost: items in =
pairs + rejections + tweets with pairs, per partition, from the tables themselves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from replyassets_tests.fast_settings import write_settings
from replyassets_tests.fixtures.real_shapes import (
    PERMISSIVE_COLLECTION,
    queries_yaml,
    write_real_exports,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _demo(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "replyassets.demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1500, check=False)


@pytest.mark.timeout(3000)
def test_demo_from_an_all_rejected_run_to_a_full_one(tmp_path):
    exports = tmp_path / "exports"
    queries = write_real_exports(exports)
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(queries_yaml(queries)))
    (tmp_path / "experiments.yaml").write_text("experiments:\n  - name: default\n")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    data = tmp_path / "data"
    database = data / "replyassets.duckdb"
    settings = tmp_path / "my-settings.yaml"
    env = {**os.environ, "DAGSTER_HOME": str(home), "REPLYASSETS_PROFILE": "local",
           "REPLYASSETS_DATA_DIR": str(data), "REPLYASSETS_DATABASE": str(database),
           "REPLYASSETS_QUERIES": str(tmp_path / "queries.yaml"),
           "REPLYASSETS_EXPERIMENTS": str(tmp_path / "experiments.yaml"),
           "REPLYASSETS_SETTINGS": str(settings), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    # -- 1. default windows: everything rejected, said where it happens
    write_settings(settings, {"paths": {"sample_dir": str(exports)}})
    first = _demo(env)
    out = first.stdout
    assert "Traceback" not in out + first.stderr, out[-4000:] + first.stderr[-4000:]
    for name in queries:
        assert f"CHECK FAILED raw_tweets[{name}] non_empty" in out, out[-4000:]
    assert "collection.tweet_max_likes = 2000 (default in replyassets/settings.py)" in out, out[-4000:]
    con = duckdb.connect(str(database), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM main.raw_tweets").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM main.deduped_pairs").fetchone()[0] == 0
    finally:
        con.close()

    # -- 2. the user raises the windows (and scales the curated set to this small scrape)
    write_settings(settings, {
        "paths": {"sample_dir": str(exports)},
        "collection": PERMISSIVE_COLLECTION,
        "curation": {"min_pairs": 10, "target_pairs": 30, "max_pairs": 40, "min_unique_tweets": 3,
                     "min_unique_authors": 10},
    })
    second = _demo(env)
    out = second.stdout
    assert "Traceback" not in out + second.stderr and "ConversionException" not in out, out[-4000:]
    assert "CHECK FAILED raw_tweets" not in out, out[-4000:]
    for label in ("deduped_pairs", "curated_set"):
        assert f"ok   {label}" in out or f"WARN {label}" in out, out[-4000:]
    con = duckdb.connect(str(database), read_only=True)
    try:
        for name, q in queries.items():
            pairs = con.execute("SELECT count(*) FROM main.raw_tweets WHERE query = ?", [name]).fetchone()[0]
            tweets = con.execute("SELECT count(DISTINCT tweet_id) FROM main.raw_tweets WHERE query = ?",
                                 [name]).fetchone()[0]
            rejected = con.execute("SELECT count(*) FROM main.raw_tweet_rejections WHERE query = ?",
                                   [name]).fetchone()[0]
            assert pairs > 0, name
            assert q.items == pairs + rejected + tweets, (name, q.items, pairs, rejected, tweets)
        assert con.execute("SELECT count(*) FROM main.curated_set").fetchone()[0] > 0
    finally:
        con.close()
