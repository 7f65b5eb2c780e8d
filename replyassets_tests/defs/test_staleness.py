"""Dagster's own staleness decides what ``make demo`` recomputes (one source of truth).

Every step runs in its own process, as a user's would: ``python -m replyassets.demo`` (what
``make demo`` runs) and ``python -m replyassets.demo --status`` (Dagster's stale status of
every asset and partition) against one temporary Dagster instance, DuckDB file and data dir.
A changed setting reaches the code through ``REPLYASSETS_SETTINGS`` (a settings file layered
over the profile file), exactly as an edit of ``config/profiles/local.yaml`` would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from replyassets_tests.fast_settings import write_settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class Project:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.home = tmp / "dagster_home"
        self.data = tmp / "data"
        self.data.mkdir()
        self.queries = tmp / "queries.yaml"
        shutil.copyfile(ROOT / "config" / "queries.yaml", self.queries)
        # Two experiments keep these runs short: the default SFT recipe and the shipped sft-dpo
        # (SFT, then DPO on preference_pairs); the others are tested elsewhere.
        self.experiments = tmp / "experiments.yaml"
        self.experiments.write_text("experiments:\n  - name: default\n  - name: sft-dpo\n    training: {method: sft+dpo}\n")
        self.overrides: dict = {}

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            DAGSTER_HOME=str(self.home),
            REPLYASSETS_PROFILE="local",
            REPLYASSETS_DATA_DIR=str(self.data),
            REPLYASSETS_DATABASE=str(self.data / "replyassets.duckdb"),
            REPLYASSETS_QUERIES=str(self.queries),
            REPLYASSETS_EXPERIMENTS=str(self.experiments),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )
        # The test's own overrides over the short-training settings every step shares.
        env["REPLYASSETS_SETTINGS"] = str(write_settings(self.tmp / "overrides.yaml", self.overrides))
        return env

    def py(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def demo(self) -> list[str]:
        """Run `make demo`'s program; return the labels of the runs it launched (``ok`` lines)."""
        out = self.py("-m", "replyassets.demo").stdout
        return re.findall(r"\bok\s+(.+?) \(\d", out)

    def statuses(self) -> dict[str, str]:
        out = self.py("-m", "replyassets.demo", "--status").stdout
        return json.loads(out[out.index("{"): out.rindex("}") + 1])

    def run_assets(self, keys: list[str], partition: str | None = None, check: bool = True):
        code = (
            "import sys, dagster as dg\n"
            "from replyassets.demo import AssetRunner\n"
            f"run = AssetRunner(dg.DagsterInstance.get()).run([dg.AssetKey(k) for k in {keys!r}], {partition!r})\n"
            "print('RUN', run.run_id, run.status.value)\n"
            "sys.exit(0 if run.is_success else 3)\n"
        )
        return self.py("-c", code, check=check)

    def instance(self):
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.home))


TRAIN_AND_EVALUATE = ["lora_adapter [default]", "lora_adapter [sft-dpo]", "reward_model", "eval_report [default]",
                      "eval_report [sft-dpo]", "champion", "champion_export", "leaderboard"]
# what must come before what (the lineage): adapters and the reward model before the reports,
# the reports before the decision, the decision before what ships and the board that shows it
BEFORE = [("lora_adapter [default]", "eval_report [default]"), ("lora_adapter [sft-dpo]", "eval_report [sft-dpo]"),
          ("reward_model", "eval_report [default]"), ("reward_model", "eval_report [sft-dpo]"),
          ("eval_report [default]", "champion"), ("eval_report [sft-dpo]", "champion"),
          ("champion", "champion_export"), ("champion", "leaderboard")]


def train_and_evaluate_in_order(launched: list[str]) -> None:
    """Every training and decision run launched once, in an order the lineage allows."""
    for label in TRAIN_AND_EVALUATE:
        assert launched.count(label) == 1, (label, launched)
    for first, then in BEFORE:
        assert launched.index(first) < launched.index(then), (first, then, launched)


def stale(statuses: dict[str, str]) -> set[str]:
    return {k for k, v in statuses.items() if v != "FRESH"}


@pytest.mark.timeout(2400)
def test_dagster_staleness_drives_make_demo(tmp_path):
    import dagster as dg

    project = Project(tmp_path)

    # 1. A fresh project: everything is missing; the demo materializes the whole graph.
    first = project.demo()
    assert first[0] == "base_model" or "raw_tweet" in first[0]
    train_and_evaluate_in_order(first)
    assert "preference_kto, preference_pairs" in first  # make demo builds the pairs and trains sft-dpo on them
    assert stale(project.statuses()) == set()

    # 2. Nothing changed: a further demo materializes nothing.
    assert project.demo() == []

    # 3. Deterministic data versions: re-collect and re-validate one partition in another
    #    process; the same inputs give the same data versions, so nothing downstream is stale.
    instance = project.instance()

    def latest_version(key: str, partition: str | None = None) -> str:
        rec = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None),
            limit=1,
        ).records[0]
        return rec.asset_materialization.tags["dagster/data_version"], rec.storage_id

    before = latest_version("validated_pairs", "ai-agents")
    project.run_assets(["raw_tweets", "raw_tweet_rejections"], "ai-agents")
    project.run_assets(["validated_pairs"], "ai-agents")
    after = latest_version("validated_pairs", "ai-agents")
    assert after[1] != before[1], "validated_pairs[ai-agents] was not materialized again"
    assert after[0] == before[0], "the same partition validated in two processes gave two data versions"
    assert stale(project.statuses()) == set()

    # 4. An edited query makes exactly its partition stale (and the local base model, whose
    #    tokenizer corpus is the queries' tweets); the replayed data is the same, so the
    #    recomputation stops there.
    doc = yaml.safe_load(project.queries.read_text())
    doc["queries"][0]["text"] += " lang:en"
    project.queries.write_text(yaml.safe_dump(doc))
    name = doc["queries"][0]["name"]
    assert stale(project.statuses()) == {f"raw_tweets[{name}]", f"raw_tweet_rejections[{name}]", "base_model"}
    assert sorted(project.demo()) == ["base_model", f"raw_tweet_rejections, raw_tweets [{name}]"]
    assert project.demo() == []

    # 5. One threshold changes: exactly the assets that read it are stale (deduped_pairs, and
    #    curated_set whose near-duplicate check re-applies it), by Dagster's own status. The demo
    #    that rebuilds them and what their new data makes stale is step 8 (one retraining for both).
    project.overrides = {"dedup": {"similarity_threshold": 0.85}}
    assert stale(project.statuses()) == {"deduped_pairs", "curated_set"}

    # 6. Runs started by the demo are real runs of the code location's asset job: the UI shows
    #    their asset selection and can re-execute them from the location `replyassets`.
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"replyassets/launched_by": "make-demo"}))
    assert runs and all(r.job_name == "__ASSET_JOB" and r.asset_selection for r in runs)
    origin = runs[0].remote_job_origin
    assert origin is not None and origin.location_name == "replyassets"
    assert origin.repository_origin.repository_name == "__repository__"

    # 7. Immutable artifacts: training the same data and recipe again writes a new folder; the
    #    folder the earlier materialization recorded is left as it was.
    def adapter_md() -> dict:
        rec = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("lora_adapter"), asset_partitions=["default"]), limit=1
        ).records[0]
        return {k: v.value for k, v in rec.asset_materialization.metadata.items()}

    first_md = adapter_md()
    first_dir = Path(first_md["adapter_path"]).parent
    first_files = {p: p.stat().st_mtime_ns for p in first_dir.rglob("*") if p.is_file()}
    # ...under the settings the stored curated set was built with: lora_adapter's guard re-runs
    # curated_set's blocking checks on its input with the current settings, and under step 5's
    # threshold the stored set (deduplicated at 0.9) fails its near-duplicate check.
    step5, project.overrides = project.overrides, {}
    project.run_assets(["lora_adapter"], "default")
    project.overrides = step5
    second_md = adapter_md()
    assert Path(second_md["adapter_path"]).parent != first_dir
    assert {p: p.stat().st_mtime_ns for p in first_dir.rglob("*") if p.is_file()} == first_files

    # 8. Evaluation integrity: re-curate (step 5's threshold, another target size) without
    #    retraining, then ask for the report: it refuses, naming both curated sets.
    trained_on = second_md["curated_set_hash"]
    project.overrides = {**project.overrides, "curation": {"target_pairs": 500}}
    project.run_assets(["deduped_pairs", "curated_set"])
    proc = project.run_assets(["eval_report"], "default", check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    run_id = re.search(r"RUN (\S+)", proc.stdout).group(1)
    failures = [
        rec.dagster_event.step_failure_data.user_failure_data.description
        for rec in instance.all_logs(run_id)
        if rec.dagster_event is not None and rec.dagster_event.event_type_value == "STEP_FAILURE"
    ]
    current = instance.fetch_materializations(dg.AssetKey("curated_set"), limit=1).records[0] \
        .asset_materialization.metadata["content_hash"].value
    assert not current.startswith(trained_on)  # the page shows the first 16 digits of the hash
    message = failures[0]
    assert trained_on[:16] in message and current[:16] in message, message
    assert "Materialize lora_adapter again" in message

    # The demo repairs it in graph order, and materializes what the new data makes stale, nothing
    # else: the pairs (split by the new set) and the adapters are rebuilt, retrained, evaluated.
    again = project.demo()
    assert sorted(again) == sorted(["preference_kto, preference_pairs", *TRAIN_AND_EVALUATE]), again
    assert again[0] == "preference_kto, preference_pairs"
    train_and_evaluate_in_order(again)
    assert project.demo() == []
    instance.dispose()


def test_a_retrain_never_rewrites_a_recorded_adapter_folder(tmp_path):
    from replyassets.defs.train import COMPLETE_MARKER, unused_output_dir

    base = tmp_path / "adapters" / "abc-123"
    assert unused_output_dir(base) == base
    base.mkdir(parents=True)
    assert unused_output_dir(base) == base  # a crashed training resumes in its folder
    (base / COMPLETE_MARKER).write_text("run-1\n")
    second = unused_output_dir(base)
    assert second == base.with_name("abc-123-2")
    second.mkdir()
    (second / COMPLETE_MARKER).write_text("run-2\n")
    assert unused_output_dir(base) == base.with_name("abc-123-3")
