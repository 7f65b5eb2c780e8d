"""The whole graph on two sample queries, through a real Dagster instance and DuckDB file.

Covers: every partition materializes; re-materializing a partition keeps the same rows;
a new partition makes deduped_pairs embed only the new replies; curated_set passes its
checks on the sample and its JSONL loads with `datasets` and renders through the chat
template; lora_adapter trains through the local Pipes launcher and reports metrics and the
adapter hash; eval_report writes a report whose verdict follows from its numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from replyassets.settings import PROJECT_ROOT
from replyassets_tests.defs.conftest import all_assets_and_checks

QUERIES = ["ai-agents", "python-tips"]


def _md(instance, key):
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    assert event is not None, f"{key} was not materialized"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _count(database, sql, params=None):
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture
def two_query_project(dagster_project, tmp_path, monkeypatch):
    doc = yaml.safe_load((PROJECT_ROOT / "config" / "queries.yaml").read_text())
    entries = [q for q in doc["queries"] if q["name"] in QUERIES]
    queries = tmp_path / "queries.yaml"
    queries.write_text(yaml.safe_dump({"queries": entries[:1]}))
    overrides = tmp_path / "settings.yaml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "curation": {"min_pairs": 100, "min_unique_tweets": 40, "min_unique_authors": 80},
                "training": {"max_steps": 12, "eval_steps": 4},
                "evaluation": {"max_new_tokens": 16, "bootstrap_resamples": 500},
            }
        )
    )
    monkeypatch.setenv("REPLYASSETS_QUERIES", str(queries))
    monkeypatch.setenv("REPLYASSETS_SETTINGS", str(overrides))
    dagster_project.queries_file = queries
    dagster_project.all_entries = entries
    return dagster_project


@pytest.mark.slow
def test_whole_graph_on_the_sample(two_query_project):
    import dagster as dg

    from replyassets.defs.collect import sync_query_partitions

    p = two_query_project
    inst = p.instance
    assets = all_assets_and_checks()

    def run(selection, partition=None):
        result = dg.materialize(
            assets, selection=selection, partition_key=partition, instance=inst, resources=p.resources(),
            raise_on_error=False,
        )
        failures = [e.message for e in result.all_events if e.is_failure]
        assert result.success, failures
        return result

    # -- one partition, twice: same rows
    added, _ = sync_query_partitions(inst)
    assert added == ["ai-agents"]
    run(["raw_tweets", "raw_tweet_rejections", "validated_pairs"], "ai-agents")
    first = _count(p.database, "SELECT count(*), count(DISTINCT reply_id) FROM main.raw_tweets")[0]
    run(["raw_tweets", "raw_tweet_rejections", "validated_pairs"], "ai-agents")
    second = _count(p.database, "SELECT count(*), count(DISTINCT reply_id) FROM main.raw_tweets")[0]
    assert first == second and first[0] == first[1] > 0
    rejected = _count(p.database, "SELECT count(*) FROM main.raw_tweet_rejections WHERE reasons <> ''")[0][0]
    assert rejected > 0
    funnel = _md(inst, "raw_tweets")["funnel"]
    assert any(r.data["stage"].startswith("rejected:") for r in funnel.records)

    run(["deduped_pairs"])
    md1 = _md(inst, "deduped_pairs")
    valid_1 = _count(p.database, "SELECT count(DISTINCT reply_clean) FROM main.validated_pairs WHERE valid")[0][0]
    assert md1["texts_embedded"] == valid_1 and md1["embedding_cache_hits"] == 0
    assert md1["semantic_method"] == "exact"  # under ann_threshold_rows: the exact greedy

    # -- a new query in the file is a new partition; dedup then embeds only its replies
    p.queries_file.write_text(yaml.safe_dump({"queries": p.all_entries}))
    added, _ = sync_query_partitions(inst)
    assert added == ["python-tips"]
    run(["raw_tweets", "raw_tweet_rejections", "validated_pairs"], "python-tips")
    run(["deduped_pairs"])
    md2 = _md(inst, "deduped_pairs")
    valid_all = _count(p.database, "SELECT count(DISTINCT reply_clean) FROM main.validated_pairs WHERE valid")[0][0]
    assert md2["embedding_cache_hits"] >= valid_1
    assert md2["texts_embedded"] == valid_all - valid_1 > 0

    # -- curated_set passes its blocking checks on the sample; the export loads and renders
    result = run(["curated_set"])
    # every blocking (ERROR) check passes; the WARN check test_power says two queries give too
    # few test tweets to decide, as it should
    evaluations = result.get_asset_check_evaluations()
    checks = {e.check_name: e.passed for e in evaluations if e.severity == dg.AssetCheckSeverity.ERROR}
    assert checks and all(checks.values()), checks
    power = [e for e in evaluations if e.check_name == "test_power"]
    assert len(power) == 1 and power[0].severity == dg.AssetCheckSeverity.WARN
    curated = _md(inst, "curated_set")
    # the DuckDB file has no versions: the snapshot is recorded as null, clearly
    assert curated["storage_backend"] == "duckdb" and curated["lake_snapshot_id"] is None
    splits = _count(p.database, "SELECT count(DISTINCT split) FROM (SELECT tweet_id, split FROM main.curated_set GROUP BY ALL) GROUP BY tweet_id HAVING count(*) > 1")
    assert splits == []
    from datasets import load_dataset

    ds = load_dataset("json", data_files={"train": str(curated["train_file"]), "eval": str(curated["eval_file"])})
    assert len(ds["train"]) > len(ds["eval"]) > 0
    assert {r.data["split"]: r.data["pairs"] for r in curated["splits"].records}.keys() == {"train", "eval", "test"}

    # -- preference pairs from likes: the curated set's splits by tweet, blocking checks pass
    result = run(["preference_pairs", "preference_kto"])
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"no_tweet_in_two_splits": True, "chosen_differs_from_rejected": True, "min_pairs": True}
    pref = _md(inst, "preference_pairs")
    assert pref["pairs"] == _count(p.database, "SELECT count(*) FROM main.preference_pairs")[0][0] > 0
    moved = _count(p.database, "SELECT count(*) FROM main.preference_pairs pp JOIN "
                               "(SELECT DISTINCT tweet_id, split FROM main.curated_set) c USING (tweet_id) "
                               "WHERE pp.split <> c.split")[0][0]
    assert moved == 0
    test_tweets = {r[0] for r in _count(p.database, "SELECT DISTINCT tweet_id FROM main.curated_set WHERE split = 'test'")}
    trained_on = {json.loads(line)["tweet_id"] for f in ("preference_train_file", "kto_train_file")
                  for line in Path(str(pref[f])).read_text().splitlines()}
    assert trained_on and not trained_on & test_tweets

    # -- the reward model: trained on the train split's pairs, checked on the test split's
    run(["reward_model"])
    rm = _md(inst, "reward_model")
    from replyassets.core.reward_model import RewardModel

    (model_json,), = _count(p.database, "SELECT model_json FROM main.reward_model")
    model = RewardModel.from_json(model_json)
    pref_test = _count(p.database, "SELECT count(*), count(DISTINCT tweet_id) FROM main.preference_pairs WHERE split = 'test'")[0]
    assert (rm["heldout_pairs"], rm["heldout_tweets"]) == pref_test and rm["train_pairs"] + rm["train_pairs_left_out_shared_text"] == pref["splits"].records[0].data["pairs"]
    assert not set(model.training_tweet_ids) & test_tweets and model.sha256 == rm["model_sha256"]
    assert rm["heldout_ci_low"] <= rm["heldout_agreement"] <= rm["heldout_ci_high"]

    # -- base model + adapter through the local Pipes launcher
    run(["base_model"])
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(_md(inst, "base_model")["model_path"]))
    row = ds["train"][0]
    rendered = tok.apply_chat_template(row["messages"], tokenize=False, enable_thinking=False)
    assert "<think>\n\n</think>" in rendered and row["messages"][1]["content"] in rendered

    inst.add_dynamic_partitions("experiment", ["default"])
    result = run(["lora_adapter"], "default")
    lora = _md(inst, "lora_adapter")
    adapter = Path(str(lora["adapter_path"]))
    assert (adapter / "adapter_config.json").exists()
    # the page shows the hashes' first 16 digits; its consumers get them whole (the artifact)
    from replyassets.core.artifact import Artifact

    art = Artifact.from_json((p.data / "artifacts" / "lora_adapter" / "default.json").read_text())
    assert len(art.sha256) == 64 and lora["adapter_sha256"] == art.sha256[:16]
    assert art.attrs["curated_set_hash"] == curated["content_hash"] and lora["curated_set_hash"] == curated["content_hash"][:16]
    assert lora["curated_set_snapshot"] is None
    assert lora["final_eval_loss"] > 0 and lora["train_tokens_per_s"] > 0
    assert list(lora)[:2] == ["loss", "loss_curve_plot"] and Path(str(lora["loss_curve_plot"])).is_file()
    assert lora["loss"].startswith("![loss") and len(lora["loss"]) < 1000   # shown inline by the UI
    gap = [e for e in result.get_asset_check_evaluations() if e.check_name == "train_eval_gap"]
    assert len(gap) == 1

    # -- evaluation: report files, verdict consistent with the criteria
    run(["eval_report"], "default")
    report = _md(inst, "eval_report")
    folder = Path(str(report["report_folder"]))
    # the page names the folder once and what each of its files holds
    assert all(f"`{name}`" in str(report["report_files"]) for name in
               ("report.html", "report.md", "report.json", "comparisons.json", "human_eval_sheet.csv", "human_eval_key.csv"))
    assert (folder / "report.html").exists() and (folder / "report.md").exists()
    assert list(report)[:3] == ["verdict", "outcomes_plot", "criteria"]
    criteria = report["criteria"]  # a table: criterion, pass, value, needs
    all_passed = all(r.data["pass"] for r in criteria.records)
    assert report["success"] == all_passed
    assert "data:image/png;base64," in report["score_distribution"]
    # The tweet is the unit: one generation and one judged item per test tweet and opponent (the
    # base model and the retrieval baseline), every curated test tweet among them.
    rows = _count(p.database, "SELECT comparison, count(*), count(DISTINCT tweet_id) FROM main.eval_report "
                              "GROUP BY comparison ORDER BY comparison")
    assert [(c, n) for c, n, _ in rows] == [("base", report["n_tweets"]), ("retrieval", report["n_tweets"])]
    assert all(n == distinct for _, n, distinct in rows)
    curated_test = {r[0] for r in _count(p.database, "SELECT DISTINCT tweet_id FROM main.curated_set WHERE split = 'test'")}
    judged = {r[0] for r in _count(p.database, "SELECT DISTINCT tweet_id FROM main.eval_report")}
    assert curated_test and curated_test <= judged
    report_text = (folder / "report.md").read_text()
    assert "OFFLINE" in report_text
    # The judge checked against real likes on the test tweets of preference_pairs.
    likes_tweets = _count(p.database, "SELECT count(DISTINCT tweet_id) FROM main.preference_pairs WHERE split = 'test'")[0][0]
    assert report["judge_likes_tweets"] == likes_tweets > 0
    assert report["judge_likes_ci_low"] <= report["judge_likes_agreement"] <= report["judge_likes_ci_high"]
    assert "## The judge against real likes" in report_text
    assert ("JUDGE FLAG" in report_text) == (not report["judge_better_than_chance"])
    # The report holds its comparisons (base model, retrieval baseline); comparisons between
    # experiments are champion's, made from the table, which stores every generation judged per
    # test tweet and decoding seed with the adapter's hash (the report no longer reads other
    # experiments' reports or the champion from the instance).
    assert "## Comparisons (the test tweet is the unit)" in report_text and "retrieval baseline" in report_text
    assert "champion and leaderboard pages" in report_text
    gens = _count(p.database, "SELECT experiment, tweet_id, decoding_seed, adapter_reply, adapter_sha256 "
                              "FROM main.eval_report WHERE comparison = 'base'")
    assert len(gens) == report["n_tweets"] and {g[0] for g in gens} == {"default"}
    assert {g[4] for g in gens} == {art.sha256} and all(isinstance(g[3], str) for g in gens)
    # Every judge of evaluation.judges (local: reward_model, offline) against likes and each other;
    # the reward model decides only above chance, and the report says which judge decided and why.
    assert "## Judges against held-out likes" in report_text and "## Judges against each other" in report_text
    assert report["reward_model_trained_on"] == model.training_set_hash[:16]
    assert model.training_set_hash[:16] in report_text
    decides = "reward_model" if rm["heldout_ci_low"] > 0.5 else "offline"
    assert report["judge_decides"] == decides
    assert report["judge_selection"].startswith("reward_model:") if decides == "reward_model" else \
        "reward_model not used" in report["judge_selection"]
    assert {r.data["judge"] for r in report["judges_likes"].records} == {"reward_model", "offline"}

    # -- human raters: fill the blinded sheet, import it through the CLI, agreement is reported
    import subprocess
    import sys

    import pandas as pd

    assert report["judge_human_agreement"] == "no human ratings imported yet"
    sheet = pd.read_csv(str(folder / "human_eval_sheet.csv"), dtype=str, keep_default_na=False)
    assert {"reply_1", "reply_2", "preferred"} <= set(sheet.columns) and "item_id" not in sheet.columns
    sheet["preferred"] = ["1", "2", "tie"] * (len(sheet) // 3) + ["tie"] * (len(sheet) % 3)
    sheet["rater_id"] = "rater-a"
    filled = p.data / "filled.csv"
    sheet.to_csv(filled, index=False)
    cli = subprocess.run(
        [sys.executable, "-m", "replyassets.cli", "human-eval", "import", str(filled),
         "--key", str(folder / "human_eval_key.csv"), "--db", str(p.database)],
        capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["stored"] == len(sheet)
    run(["eval_report"], "default")
    report = _md(inst, "eval_report")
    agreement = {r.data["judge-human agreement"]: r.data["value"] for r in report["judge_human_agreement"].records}
    assert agreement["n"] == str(len(sheet)) and agreement["n_raters"] == "1"
    assert Path(str(report["report_folder"])) != folder  # a new run, a new report folder
    report_md = (Path(str(report["report_folder"])) / "report.md").read_text()
    assert "percent_agreement" in report_md and "No human ratings imported yet" not in report_md
    assert 0.0 <= float(agreement["percent_agreement"]) <= 1.0
    shutil.rmtree(adapter.parent, ignore_errors=True)
