"""What the decision pages show after `make demo` on the sample, read from the instance (no browser).

`python -m replyassets.demo` (what `make demo` runs) materializes the whole graph of the session's
``sample_demo`` project (ui/conftest.py: the sample's six queries, the default recipe, short
trainings; shared with the browser tests of the same pages); then the latest
materialization of ``eval_report``, ``leaderboard``, ``champion`` and ``lora_adapter`` is read
back from the instance, as the UI reads it. Dagster's UI shows a markdown metadata value inline
only under 1,000 characters (a longer one is behind "[Show Markdown]") and a JSON value as a
collapsed blob, so on these pages:

- no metadata value is JSON;
- no markdown value that holds an image is over the inline limit (a plot behind a click);
- every page shows at least one plot inline;
- generations carry no chat-template tags and the page says they come from the tiny local model;
- every check result of a partitioned asset names its partition, and its message the partition.
"""

from __future__ import annotations

import os

import dagster as dg
import pytest

from replyassets.core.plots import INLINE_MD_LIMIT
from replyassets_tests.ui.conftest import SAMPLE_DEMO_GROUP

pytestmark = [pytest.mark.slow, SAMPLE_DEMO_GROUP]

PAGES = ("eval_report", "leaderboard", "champion", "lora_adapter")
PARTITIONED_CHECKS = {("eval_report", "forgetting"), ("eval_report", "perplexity"),
                      ("lora_adapter", "train_eval_gap"), ("raw_tweets", "non_empty"),
                      ("validated_pairs", "non_empty")}
IMAGE = "data:image/"


@pytest.fixture(scope="module")
def demo_project(sample_demo):
    """The session's `make demo` project (ui/conftest.py) and its instance."""
    instance = sample_demo.instance()
    yield sample_demo, instance
    instance.dispose()


def _latest(instance, key: str) -> dict[str, dg.MetadataValue]:
    partitions = [None]
    if key in ("eval_report", "lora_adapter"):
        partitions = ["default"]
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    for part in partitions:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[part] if part else None), limit=1
        ).records
        if records:
            event = records[0].event_log_entry
    assert event is not None and event.asset_materialization is not None, f"{key} was not materialized"
    return dict(event.asset_materialization.metadata)


def page_problems(metadata: dict[str, dg.MetadataValue]) -> list[str]:
    """What makes a user click or squint on the page: JSON values, plots behind a click."""
    problems = []
    for k, v in metadata.items():
        if isinstance(v, dg.JsonMetadataValue):
            problems.append(f"{k}: a JSON value")
        if isinstance(v, dg.MarkdownMetadataValue) and IMAGE in (v.value or "") and len(v.value) >= INLINE_MD_LIMIT:
            problems.append(f"{k}: a plot behind [Show Markdown] ({len(v.value)} characters)")
    return problems


def inline_plots(metadata: dict[str, dg.MetadataValue]) -> list[str]:
    return [k for k, v in metadata.items() if isinstance(v, dg.MarkdownMetadataValue)
            and IMAGE in (v.value or "") and len(v.value) < INLINE_MD_LIMIT]


def test_decision_pages_hold_no_json_and_show_their_plots_inline(demo_project):
    _, instance = demo_project
    pages = {key: _latest(instance, key) for key in PAGES}
    problems = {key: page_problems(md) for key, md in pages.items()}
    assert not any(problems.values()), problems
    shown = {key: inline_plots(md) for key, md in pages.items()}
    assert all(shown.values()), shown
    # the table as DuckDB names it, not the database file's absolute path
    stored = {key: md["dagster/table_name"] for key, md in pages.items() if "dagster/table_name" in md}
    assert set(stored) == {"eval_report", "leaderboard", "champion"}, set(stored)  # lora_adapter: files
    for key, value in stored.items():
        name = str(getattr(value, "value", value))
        assert "/" not in name and name.endswith(f".main.{key}"), (key, name)
    # the full-size plots stay in the report folder, linked beside the inline ones
    report = pages["eval_report"]
    assert "report_folder" in report and os.path.isdir(str(report["report_folder"].value))
    assert "shown in this asset's metadata above" not in (report["report"].value if "report" in report else "")


def test_generations_are_shown_without_template_tags_and_framed(demo_project):
    _, instance = demo_project
    adapter = _latest(instance, "lora_adapter")
    samples = adapter["sample_generations_table"]
    assert isinstance(samples, dg.TableMetadataValue) and samples.records
    replies = [str(r.data.get("reply", "")) for r in samples.records]
    assert not any("<think>" in r or "</think>" in r for r in replies), replies[:3]
    assert "latest_samples" not in adapter  # the same samples, once
    note = str(getattr(adapter.get("samples_note"), "value", adapter.get("samples_note")))
    assert "tiny local" in note, note


def test_check_results_of_partitioned_assets_name_their_partition(demo_project):
    _, instance = demo_project
    seen = set()
    for asset, check in PARTITIONED_CHECKS:
        records = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(asset), check), limit=20)
        for rec in records:
            evaluation = rec.event.dagster_event.event_specific_data if rec.event and rec.event.dagster_event else None
            if evaluation is None or not hasattr(evaluation, "passed"):
                continue  # planned, not evaluated yet
            seen.add((asset, check))
            assert rec.partition and evaluation.partition == rec.partition, f"{asset}.{check}: no partition"
            assert rec.partition in (evaluation.description or ""), (asset, check, evaluation.description)
    assert seen == PARTITIONED_CHECKS, PARTITIONED_CHECKS - seen
