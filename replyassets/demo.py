"""``make demo``: materialize the whole graph offline on the bundled sample.

Runs go through the project's Dagster instance (``DAGSTER_HOME=.dagster_home``), so they
appear in the UI (``make ui``). Steps whose inputs, settings and code have not changed since
their latest materialization are skipped (see ``defs/fingerprint.py``): a second demo is fast
and leaves the data exactly as the first did.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from replyassets.settings import PROJECT_ROOT


def _ensure_dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    src = PROJECT_ROOT / "dagster.yaml"
    dst = home / "dagster.yaml"
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("REPLYASSETS_PROFILE", "local")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    home = _ensure_dagster_home()
    t0 = time.monotonic()

    import dagster as dg

    from replyassets.definitions import defs
    from replyassets.defs import collect, curate, dedupe, evaluate, train, validate
    from replyassets.defs.collect import sync_query_partitions
    from replyassets.defs.fingerprint import fingerprint, recorded_fingerprint
    from replyassets.settings import get_settings

    s = get_settings()
    instance = dg.DagsterInstance.get()
    added, orphaned = sync_query_partitions(instance)
    partitions = sorted(instance.get_dynamic_partitions("query"))
    _say(f"profile {s.profile}; Dagster instance {home}; {len(partitions)} query partitions"
         + (f" ({len(added)} new)" if added else ""))
    if orphaned:
        _say(f"partitions no longer in the queries file (data kept): {orphaned}")

    assets = list(defs.assets or [])
    checks = list(defs.asset_checks or [])
    resources = dict(defs.resources or {})

    def run(selection: list[str], partition: str | None = None, label: str = "") -> bool:
        start = time.monotonic()
        result = dg.materialize(
            assets + checks,
            selection=selection,
            partition_key=partition,
            instance=instance,
            resources=resources,
            run_config=QUIET,
            tags={"replyassets/launched_by": "make-demo"},
            raise_on_error=False,
        )
        took = time.monotonic() - start
        if result.success:
            _say(f"  ok   {label or ', '.join(selection)} ({took:.1f}s, run {result.run_id[:8]})")
            return True
        _say(f"  FAILED {label or ', '.join(selection)} ({took:.1f}s, run {result.run_id[:8]})")
        for event in result.all_events:
            if event.is_failure or event.event_type_value == "ASSET_CHECK_EVALUATION":
                data = event.event_specific_data
                if event.event_type_value == "ASSET_CHECK_EVALUATION" and getattr(data, "passed", True):
                    continue
                _say(f"       {event.step_key or ''}: {event.message[:400]}")
        return False

    def fresh(key: str, code_version: str, partition: str | None = None) -> bool:
        return recorded_fingerprint(instance, key, partition) == fingerprint(instance, key, code_version, partition)

    _say("collect + validate each query partition (raw_tweets, raw_tweet_rejections, validated_pairs)")
    for p in partitions:
        todo = []
        if not fresh("raw_tweets", collect.COLLECT_CODE_VERSION, p):
            todo += ["raw_tweets", "raw_tweet_rejections"]
        if todo or not fresh("validated_pairs", validate.VALIDATE_CODE_VERSION, p):
            todo += ["validated_pairs"]
        if not todo:
            _say(f"  skip {p}: unchanged")
            continue
        if not run(todo, partition=p, label=f"{p}: {', '.join(todo)}"):
            return 1

    downstream = [
        ("deduped_pairs", dedupe.DEDUP_CODE_VERSION),
        ("curated_set", curate.CURATE_CODE_VERSION),
        ("base_model", train.TRAIN_CODE_VERSION),
        ("lora_adapter", train.TRAIN_CODE_VERSION),
        ("eval_report", evaluate.EVAL_CODE_VERSION),
    ]
    for key, code_version in downstream:
        if fresh(key, code_version):
            _say(f"  skip {key}: unchanged")
            continue
        _say(f"materialize {key}")
        if not run([key], label=key):
            _say("stopped: fix what failed above (the UI shows the details: make ui)")
            return 1

    from replyassets.defs.fingerprint import latest_materialization

    report = latest_materialization(instance, "eval_report")
    adapter = latest_materialization(instance, "lora_adapter")
    md = {k: v.value for k, v in (report.metadata.items() if report else [])}
    amd = {k: v.value for k, v in (adapter.metadata.items() if adapter else [])}
    print()
    print("=" * 72)
    print(f"replyassets demo finished in {time.monotonic() - t0:.0f}s")
    print(f"  DuckDB file : {s.database_path}")
    print(f"  adapter     : {amd.get('adapter_path', '?')}")
    print(f"  report      : {md.get('report_html', md.get('report_md', '?'))}")
    print(f"  verdict     : {md.get('verdict', '?')}")
    print("  open the UI : make ui   (then http://127.0.0.1:3000)")
    print("=" * 72)
    return 0


if __name__ == "__main__":
    sys.exit(main())
