"""Real-shaped exports through Dagster: a first run where the default viral windows reject every
tweet (empty raw_tweets and validated_pairs whose failing checks name the setting, its value and
where it comes from), then a run with raised windows in the user's settings file."""

from __future__ import annotations

import pytest
import yaml

from replyassets_tests.defs.conftest import all_assets_and_checks
from replyassets_tests.fixtures.real_shapes import (
    PERMISSIVE_COLLECTION,
    queries_yaml,
    write_real_exports,
)

COLLECT = ["raw_tweets", "raw_tweet_rejections", "validated_pairs"]


def _checks(result):
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def _md(instance, key):
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=["viral-a"]), limit=1).records
    assert records, f"{key} was not materialized"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


@pytest.mark.slow
def test_viral_export_first_rejected_with_named_settings_then_collected(dagster_project, tmp_path, monkeypatch):
    import dagster as dg

    from replyassets.defs.collect import sync_query_partitions

    exports = tmp_path / "exports"
    queries = write_real_exports(exports)
    qfile = tmp_path / "queries.yaml"
    qfile.write_text(yaml.safe_dump(queries_yaml({"viral-a": queries["viral-a"]})))
    user_settings = tmp_path / "my-settings.yaml"
    user_settings.write_text(yaml.safe_dump({"paths": {"sample_dir": str(exports)}}))
    monkeypatch.setenv("REPLYASSETS_QUERIES", str(qfile))
    monkeypatch.setenv("REPLYASSETS_SETTINGS", str(user_settings))
    p = dagster_project
    assets = all_assets_and_checks()
    assert sync_query_partitions(p.instance)[0] == ["viral-a"]

    def run():
        result = dg.materialize(assets, selection=COLLECT, partition_key="viral-a", instance=p.instance,
                                resources=p.resources(), raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        return result

    # -- 1. the default windows: every viral tweet rejected, and the checks say by which setting
    first = run()
    checks = _checks(first)
    raw_check = checks[("raw_tweets", "non_empty")]
    assert not raw_check.passed
    named = "collection.tweet_max_likes = 2000 (default in replyassets/settings.py)"
    assert named in raw_check.description and "removed 6 items" in raw_check.description
    assert "items in 49 = pairs 0 + rejections 49 + tweets with pairs 0" in raw_check.description
    raw_md = _md(p.instance, "raw_tweets")
    assert raw_md["pairs"] == 0 and named in raw_md["top_rejection_rules"]
    assert raw_md["item_identity"] == "items in 49 = pairs 0 + rejections 49 + tweets with pairs 0"
    val_check = checks[("validated_pairs", "non_empty")]
    # validated_pairs decides on its input alone (no instance lookup): it points at the partition's
    # raw_tweets check, which names the setting.
    pointer = "raw_tweets[viral-a] is empty; its `non_empty` check"
    assert not val_check.passed and pointer in val_check.description, val_check.description
    assert pointer in _md(p.instance, "validated_pairs")["why_empty"]

    # -- 2. the user raises the windows in their settings file: the data comes through
    user_settings.write_text(yaml.safe_dump({"paths": {"sample_dir": str(exports)},
                                             "collection": PERMISSIVE_COLLECTION}))
    second = run()
    checks = _checks(second)
    assert checks[("raw_tweets", "non_empty")].passed
    raw_md = _md(p.instance, "raw_tweets")
    assert raw_md["pairs"] == 28
    assert raw_md["item_identity"] == "items in 49 = pairs 28 + rejections 18 + tweets with pairs 3"
    assert checks[("validated_pairs", "non_empty")].passed, checks[("validated_pairs", "non_empty")].description
    funnel = [r.data["stage"] for r in raw_md["funnel"].records]
    assert "rejected: self_reply [reply_filter]: collection.allow_self_replies = false " \
           "(default in replyassets/settings.py)" in funnel
