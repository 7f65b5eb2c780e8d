"""A small Dagster project in temp folders: its own queries file, replay sample and DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replyassets_tests.reliability.hostile import write_replay_project

COLLECT = ["raw_tweets", "raw_tweet_rejections"]


def use_queries(project, monkeypatch, queries: dict[str, list[Any]]) -> Path:
    """Write the replay sample + queries file under the project's temp dir, point the settings
    at it and register the partitions. Returns the sample dir."""
    from replyassets import settings as settings_mod

    root = Path(project.home).parent / "replay"
    qfile = write_replay_project(root, queries)
    monkeypatch.setenv("REPLYASSETS_QUERIES", str(qfile))
    settings_mod.get_settings.cache_clear()
    existing = set(project.instance.get_dynamic_partitions("query"))
    new = [q for q in queries if q not in existing]
    if new:
        project.instance.add_dynamic_partitions("query", new)
    project.sample = root / "sample"
    return project.sample


def replay_resources(project) -> dict[str, Any]:
    from replyassets.defs.resources import TweetSourceResource

    res = project.resources()
    res["tweet_source"] = TweetSourceResource(kind="replay", sample_dir=str(project.sample))
    return res


def apify_resources(project, api_url: str, token: str, **kw) -> dict[str, Any]:
    from replyassets.defs.resources import TweetSourceResource

    res = project.resources()
    res["tweet_source"] = TweetSourceResource(kind="apify", apify_token=token, api_url=api_url,
                                              backoff_s=kw.pop("backoff_s", 0.01), **kw)
    return res


def materialize(project, resources, selection, partition: str | None = None, **kw):
    import dagster as dg

    from replyassets_tests.defs.conftest import all_assets_and_checks

    if partition is None and {"lora_adapter", "eval_report"} & set(selection):
        partition = "default"  # the experiment partition of the default recipe
        project.instance.add_dynamic_partitions("experiment", ["default"])
    return dg.materialize(all_assets_and_checks(), selection=selection, partition_key=partition,
                          instance=project.instance, resources=resources, raise_on_error=False, **kw)


def failure_messages(result) -> list[str]:
    out = []
    for ev in result.all_events:
        if ev.is_step_failure:
            err = ev.step_failure_data.error
            while err is not None:
                out.append(err.message)
                err = err.cause
    return out
