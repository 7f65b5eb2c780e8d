"""Three experiments trained and evaluated by a backfill over the experiment partitions, launched
through the running webserver and executed by the daemon, with the local launcher allowed two
trainings at once: every run succeeds, no DuckDB lock error, two trainings overlap in time (their
recorded start/end), every adapter has its own folder, and the leaderboard then has one row per
experiment with the numbers the reports hold."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from replyassets_tests.fast_settings import write_settings
from replyassets_tests.ui.conftest import (
    ROOT,
    UIProject,
    run_event_texts,
    runs_with_tag,
)
from replyassets_tests.ui.test_backfill import BACKFILL, LAUNCH, LOCK_ERRORS, TERMINAL

pytestmark = [pytest.mark.slow]

EXPERIMENTS = ("default", "default-seed43", "r8")

_PREPARE = r"""
import dagster as dg
from replyassets.demo import AssetRunner
from replyassets.defs.collect import sync_query_partitions
from replyassets.defs.experiments import sync_experiment_partitions
from replyassets.defs.sources import observe_now
i = dg.DagsterInstance.get()
sync_query_partitions(i); sync_experiment_partitions(i); observe_now(i)
runner = AssetRunner(i)
def run(keys, p=None):
    r = runner.run([dg.AssetKey(k) for k in keys], p)
    assert r.is_success, (keys, p)
for q in sorted(i.get_dynamic_partitions("query")):
    run(["raw_tweets", "raw_tweet_rejections"], q)
    run(["validated_pairs"], q)
for keys in (["deduped_pairs"], ["curated_set"], ["preference_pairs", "preference_kto"], ["reward_model"], ["base_model"]):
    run(keys)
print("PREPARED", sorted(i.get_dynamic_partitions("experiment")))
"""


@pytest.fixture(scope="module")
def ui_project(tmp_path_factory) -> UIProject:
    root = tmp_path_factory.mktemp("ui_experiments")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    data = root / "data"
    data.mkdir()
    queries = root / "queries.yaml"
    shutil.copyfile(ROOT / "config" / "queries.yaml", queries)
    settings = root / "settings.yaml"
    # Short trainings, but long enough (24 steps) that two of them overlap in time.
    write_settings(settings, {"training": {"local_max_concurrent": 2, "max_steps": 24}})
    # The three SFT recipes of the shipped file, as shipped (sft-dpo is trained by the demo tests).
    shipped = yaml.safe_load((ROOT / "config" / "experiments.yaml").read_text())
    experiments = root / "experiments.yaml"
    experiments.write_text(yaml.safe_dump(
        {"experiments": [e for e in shipped["experiments"] if e["name"] in EXPERIMENTS]}, sort_keys=False))
    env = {
        "DAGSTER_HOME": str(home), "REPLYASSETS_DATA_DIR": str(data),
        "REPLYASSETS_DATABASE": str(data / "replyassets.duckdb"), "REPLYASSETS_QUERIES": str(queries),
        "REPLYASSETS_SETTINGS": str(settings), "REPLYASSETS_PROFILE": "local",
        "REPLYASSETS_EXPERIMENTS": str(experiments),
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
    }
    project = UIProject(root, home, data, data / "replyassets.duckdb", queries, [], env)
    import os

    proc = subprocess.run([sys.executable, "-c", _PREPARE], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    project.partitions = sorted(EXPERIMENTS)
    return project


@pytest.fixture(scope="module")
def ui_prepare(ui_project):
    return


def _latest(instance, key: str, partition: str | None = None) -> dict:
    import dagster as dg

    recs = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    assert recs, (key, partition)
    return {k: v.value for k, v in recs[0].asset_materialization.metadata.items()}


@pytest.mark.timeout(2400)
def test_experiment_backfill_through_the_daemon_trains_in_parallel(dagster_ui, ui_project):
    server = dagster_ui
    launched = server.graphql(LAUNCH, {"params": {
        "assetSelection": [{"path": ["lora_adapter"]}, {"path": ["eval_report"]}],
        "allPartitions": True,
        "fromFailure": False,
        "tags": [{"key": "replyassets/launched_by", "value": "test_experiment_backfill"}],
    }})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    started = time.monotonic()
    deadline = started + 1500
    backfill = {}
    while time.monotonic() < deadline:
        backfill = server.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill.get("status") in TERMINAL:
            break
        time.sleep(5)
    assert backfill.get("status") in TERMINAL, f"backfill still {backfill} after 1500s:\n{server.log_tail()}"

    runs = runs_with_tag(server, "dagster/backfill", backfill_id)
    lock_errors, failures = [], []
    for r in runs:
        texts = run_event_texts(server, r["runId"])
        lock_errors += [t[:300] for t in texts if any(e in t for e in LOCK_ERRORS)]
        if r["status"] != "SUCCESS":
            failures.append(f"{r['runId'][:8]} {r['status']}: " + " | ".join(t[:300] for t in texts if "rror" in t)[:1500])
    print(f"experiment backfill {backfill['status']} after {time.monotonic() - started:.0f}s, {len(runs)} runs")
    assert not lock_errors, lock_errors
    assert not failures, failures
    assert sorted(backfill["partitionNames"]) == sorted(EXPERIMENTS)

    instance = ui_project.instance()
    try:
        adapters = {e: _latest(instance, "lora_adapter", e) for e in EXPERIMENTS}
        reports = {e: _latest(instance, "eval_report", e) for e in EXPERIMENTS}
    finally:
        instance.dispose()
    # Each experiment in its own folder, trained with its recipe.
    folders = {e: Path(str(md["adapter_path"])).parent for e, md in adapters.items()}
    assert len(set(folders.values())) == 3 and all(f"/adapters/{e}/" in str(f) for e, f in folders.items())
    assert adapters["r8"]["recipe"] == "training.lora.r=8, training.lora.alpha=8"
    cfg = json.loads((folders["r8"] / "train_config.json").read_text())
    assert cfg["lora"]["r"] == 8 and cfg["seed"] == 42
    assert json.loads((folders["default-seed43"] / "train_config.json").read_text())["seed"] == 43
    # With two local slots, two trainings overlapped in time. The spans are taken inside the
    # slot (when the worker ran, not while a step waited for a slot), so never three at once.
    spans = sorted((md["train_started_at"], md["train_ended_at"]) for md in adapters.values())
    overlaps = [a for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1]]
    print(f"training spans (s): {[(round(s - spans[0][0], 1), round(e - spans[0][0], 1)) for s, e in spans]}")
    assert overlaps, spans
    assert max(sum(s <= t < e for s, e in spans) for t, _ in spans) <= 2, spans
    # Every report judged its experiment on the same test tweets against the base model and the
    # retrieval baseline.
    n = {e: md["n_tweets"] for e, md in reports.items()}
    assert len(set(n.values())) == 1 and next(iter(n.values())) > 0, n
    figures = {e: json.loads((Path(str(md["report_folder"])) / "comparisons.json").read_text()) for e, md in reports.items()}
    assert all({"base", "retrieval"} <= set(f["stats"]) for f in figures.values())

    # The leaderboard: one row per experiment with the numbers the reports hold.
    import os

    code = ("import dagster as dg\nfrom replyassets.demo import AssetRunner\n"
            "r = AssetRunner(dg.DagsterInstance.get()).run([dg.AssetKey('champion'), dg.AssetKey('leaderboard')])\nassert r.is_success\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **ui_project.env},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import duckdb

    con = duckdb.connect(str(ui_project.database), read_only=True)
    try:
        board = con.execute("SELECT experiment, win_rate, win_rate_ci_low, p_raw, n_tweets FROM main.leaderboard").df()
    finally:
        con.close()
    assert sorted(board["experiment"]) == sorted(EXPERIMENTS)
    for row in board.itertuples():
        base = figures[row.experiment]["stats"]["base"]
        assert row.win_rate == pytest.approx(base["win_rate"]) and row.n_tweets == base["n_tweets"]
        assert row.p_raw == pytest.approx(figures[row.experiment]["p_raw"])
