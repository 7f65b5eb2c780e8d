"""A user's data stays out of git: only shipped inputs are tracked under data/, and every folder
the platform writes there is ignored."""

from __future__ import annotations

import subprocess

from replyassets.settings import PROJECT_ROOT

# What the platform writes under the data dir (grep `data_dir /` in replyassets/), plus the
# DuckDB file with its side files, the lake, and the logs of `make demo`.
WRITTEN = [
    "replyassets.duckdb", "replyassets.duckdb.wal", "replyassets.duckdb.lock", "lake/x.parquet",
    "models/tiny-qwen3-abc/model.safetensors", "models/embeddings/x/export.json",
    "adapters/default/abc/adapter_model.safetensors", "curated/abc/train.jsonl",
    "preference/abc/preference_train.jsonl", "reports/run/report.md", "champions/x/README.md",
    "shared/x", "logs/demo.log", "runs/x", "exports/x.json", "checkpoints/x", ".training_slots/0",
]


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)


def test_only_the_shipped_sample_is_tracked_under_data():
    tracked = _git("ls-files", "data").stdout.split()
    assert tracked and all(p.startswith("data/sample/") for p in tracked), tracked


def test_every_file_the_platform_writes_under_data_is_ignored():
    paths = [f"data/{p}" for p in WRITTEN]
    ignored = set(_git("check-ignore", "--no-index", *paths).stdout.split())
    assert ignored == set(paths), sorted(set(paths) - ignored)
    sample = _git("check-ignore", "--no-index", "data/sample/new.apidojo.json")
    assert sample.returncode == 1, "the shipped sample folder must stay tracked"
