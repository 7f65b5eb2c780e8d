"""Interrupted work: a materialization SIGKILLed at a random (seeded) point, then re-run.

For a raw_tweets partition, deduped_pairs and lora_adapter (with its training subprocess: the
whole process group is killed): no row lost, none duplicated, the DuckDB file opens, and the
final tables equal those of the uninterrupted run (content columns; collected_at differs).
"""

from __future__ import annotations

import json
import random
import time

import pytest

from replyassets_tests.reliability import tally
from replyassets_tests.reliability.hostile import make_dataset
from replyassets_tests.reliability.pipeline_proc import (
    Pipeline,
    processes_mentioning,
    step_start_marker,
)
from replyassets_tests.reliability.storage_io import (
    content_equal,
    integrity_ok,
    read_table,
)

SEED = 20261124
COLLECT = ["raw_tweets", "raw_tweet_rejections"]
TIMESTAMPS = ("collected_at",)
KEYS = {
    "raw_tweets": ["reply_id"],
    "raw_tweet_rejections": ["item_id", "stage"],
    "validated_pairs": ["reply_id"],
    "deduped_pairs": ["reply_id"],
    "curated_set": ["reply_id"],
}

pytestmark = pytest.mark.slow


def snapshot(pipe: Pipeline, tables=tuple(KEYS)) -> dict:
    return {t: read_table(pipe.database, t) for t in tables}


def compare(pipe: Pipeline, baseline: dict, tables) -> None:
    integrity_ok(pipe.database)
    for t in tables:
        after = read_table(pipe.database, t)
        key = KEYS[t]
        if t != "raw_tweet_rejections":
            base_ids = set(baseline[t][key[0]])
            ids = list(after[key[0]])
            lost = len(base_ids - set(ids))
            dup = len(ids) - len(set(ids))
            tally.add("rows_lost", lost)
            tally.add("rows_duplicated", dup)
            assert lost == 0 and dup == 0, (t, lost, dup)
        else:
            diff = len(baseline[t]) - len(after)
            tally.add("rows_lost", max(diff, 0))
            tally.add("rows_duplicated", max(-diff, 0))
        assert content_equal(baseline[t], after, key, ignore=TIMESTAMPS), f"{t} differs from the uninterrupted run"


def kill_during(pipe: Pipeline, rng: random.Random, select, step: str, step_seconds: float, partition=None,
                **kw) -> None:
    """Start a run, wait until ``step`` starts, SIGKILL its process group after a random delay
    within the step's measured duration. Retries with a shorter delay if the run won the race."""
    marker = step_start_marker(step)
    frac_hi = 0.9
    for _attempt in range(4):
        proc = pipe.start(select, partition, markers=(marker,), **kw)
        assert proc.wait_marker(marker), proc.output[-3000:]
        delay = rng.uniform(0.05, frac_hi) * step_seconds
        time.sleep(delay)
        if proc.kill_group():
            tally.add("runs_killed")
            return
        frac_hi /= 3  # it finished first: aim earlier
    pytest.fail(f"could not kill {step} before it finished")


def timed(pipe: Pipeline, select, step: str, partition=None, **kw) -> float:
    marker = step_start_marker(step)
    proc = pipe.start(select, partition, markers=(marker,), **kw)
    rc = proc.wait()
    assert rc == 0 and "RESULT ok" in proc.output, proc.output[-4000:]
    return time.monotonic() - proc.seen[marker]


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    """The whole graph up to lora_adapter, uninterrupted: the baseline, with step durations."""
    root = tmp_path_factory.mktemp("interrupted")
    p = Pipeline(root, {"ai-agents": make_dataset(10, 6, seed=1), "devops": make_dataset(10, 6, seed=2, prefix="9")})
    p.durations = {}
    for q in p.partitions:
        p.durations["raw_tweets"] = timed(p, COLLECT + ["validated_pairs"], "raw_tweets", q)
    p.durations["deduped_pairs"] = timed(p, ["deduped_pairs"], "deduped_pairs")
    # lora_adapter's inputs: the curated set, the base model and the preference tables (an
    # sft+dpo or kto recipe trains on them; an sft one receives them unused)
    p.run(["curated_set", "base_model", "preference_pairs", "preference_kto"])
    p.durations["lora_adapter"] = timed(p, ["lora_adapter"], "lora_adapter")
    p.baseline = snapshot(p)
    return p


def test_kill_raw_tweets_partition_then_rerun(pipe):
    rng = random.Random(SEED)
    kill_during(pipe, rng, COLLECT, "raw_tweets", pipe.durations["raw_tweets"], "ai-agents", refresh=True)
    integrity_ok(pipe.database)  # opens right after the kill
    pipe.run(COLLECT, "ai-agents", refresh=True)
    compare(pipe, pipe.baseline, ["raw_tweets", "raw_tweet_rejections", "validated_pairs"])


def test_kill_deduped_pairs_then_rerun(pipe):
    rng = random.Random(SEED + 1)
    kill_during(pipe, rng, ["deduped_pairs"], "deduped_pairs", pipe.durations["deduped_pairs"])
    integrity_ok(pipe.database)
    pipe.run(["deduped_pairs"])
    compare(pipe, pipe.baseline, ["raw_tweets", "validated_pairs", "deduped_pairs"])
    cache = read_table(pipe.database, "embedding_cache")
    dup = int(cache.duplicated(subset=[c for c in cache.columns if c in ("model_id", "text_sha256")]).sum())
    tally.add("rows_duplicated", dup)
    assert dup == 0


def test_kill_lora_adapter_and_its_trainer_then_rerun(pipe):
    rng = random.Random(SEED + 2)
    adapters = pipe.data / "adapters"
    before = {d.name: json.loads((d / "result.json").read_text()) for d in adapters.iterdir() if (d / "result.json").exists()}
    # remove the finished adapter so the rerun really trains (as after a changed curated set)
    import shutil

    for d in adapters.iterdir():
        shutil.rmtree(d)
    kill_during(pipe, rng, ["lora_adapter"], "lora_adapter", pipe.durations["lora_adapter"])
    time.sleep(0.5)
    orphans = processes_mentioning(str(pipe.data))
    assert not orphans, f"processes survived the kill of the run's process group: {orphans}"
    integrity_ok(pipe.database)
    pipe.run(["lora_adapter"])
    compare(pipe, pipe.baseline, ["curated_set"])
    after = {d.name: json.loads((d / "result.json").read_text()) for d in adapters.iterdir() if (d / "result.json").exists()}
    assert set(after) == set(before), (sorted(after), sorted(before))  # same curated set -> same adapter folder
    for name, res in after.items():
        assert (adapters / name / "adapter" / "adapter_model.safetensors").stat().st_size > 0
        b = before[name]
        for k in ("global_step", "train_rows", "eval_rows", "train_tokens", "curated_set_hash"):
            assert res[k] == b[k], (k, res[k], b[k])
        assert abs(res["final_eval_loss"] - b["final_eval_loss"]) < 0.05, (res["final_eval_loss"], b["final_eval_loss"])
