"""Materialize a selection in its own process, as a run launcher would (used by the kill,
concurrency and secrets tests).

    python -m replyassets_tests.reliability.run_pipeline --select raw_tweets,raw_tweet_rejections \
        --partition ai-agents --sample /tmp/x/sample [--apify-url http://127.0.0.1:PORT] [--refresh]

The environment picks the rest: DAGSTER_HOME, REPLYASSETS_DATABASE, REPLYASSETS_DATA_DIR,
REPLYASSETS_QUERIES, REPLYASSETS_SETTINGS, APIFY_API_TOKEN. Prints ``RESULT ok`` or
``RESULT failed: <messages>`` as its last line; exit code 0 / 1.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--select", required=True)
    ap.add_argument("--partition")
    ap.add_argument("--sample", required=True)
    ap.add_argument("--apify-url")
    ap.add_argument("--refresh", action="store_true")
    ap.add_argument("--tag", action="append", default=[])
    args = ap.parse_args(argv)

    import dagster as dg

    from replyassets.definitions import defs
    from replyassets.defs.resources import TweetSourceResource, resources_for_profile

    resources = resources_for_profile()
    if args.apify_url:
        resources["tweet_source"] = TweetSourceResource(
            kind="apify", apify_token=dg.EnvVar("APIFY_API_TOKEN"), api_url=args.apify_url, backoff_s=0.01)
    else:
        resources["tweet_source"] = TweetSourceResource(kind="replay", sample_dir=args.sample)
    selection = args.select.split(",")
    partition = args.partition
    if partition is None and {"lora_adapter", "eval_report"} & set(selection):
        partition = "default"  # the experiment partition of the default recipe
    run_config = {"ops": {"raw_tweets": {"config": {"refresh": True}}}} if args.refresh else None
    instance = dg.DagsterInstance.get()
    result = dg.materialize(
        list(defs.assets or []) + list(defs.asset_checks or []),
        selection=selection,
        partition_key=partition,
        instance=instance,
        resources=resources,
        run_config=run_config,
        tags=dict(t.split("=", 1) for t in args.tag),
        raise_on_error=False,
    )
    if result.success:
        print("RESULT ok", flush=True)
        return 0
    msgs = []
    for ev in result.all_events:
        if ev.is_step_failure:
            msgs.append(ev.step_failure_data.error.message.strip()[:500])
    print("RESULT failed: " + " | ".join(msgs), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
