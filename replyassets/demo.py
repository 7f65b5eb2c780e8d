"""``make demo``: materialize what is missing or stale, offline, on the bundled sample.

Dagster decides what to recompute, exactly as the UI's "Unsynced"/"Missing" badges show it:

1. query partitions are registered from ``config/queries.yaml`` and the observed sources
   (``query_inputs``, ``review_decisions``) record a new data version where their content
   changed (``replyassets/defs/sources.py``);
2. walking the asset graph in dependency order, the first asset with missing or stale
   partitions (Dagster's own stale status: a new code version, i.e. changed logic or a
   changed setting it reads, or an upstream data version that changed) is materialized,
   one run per partition, and the status is asked again. Because data versions are content
   hashes, a recomputation that produces the same data marks nothing downstream stale.

A second ``make demo`` therefore materializes nothing. Each run is a real run of the code
location's asset job (``__ASSET_JOB`` with its asset selection, tagged
``replyassets/launched_by=make-demo``): the UI lists it with its assets and can re-execute it.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from replyassets.settings import PROJECT_ROOT

LOCATION_NAME = "replyassets"
DEFINITIONS_MODULE = "replyassets.definitions"
ASSET_JOB = "__ASSET_JOB"
REPOSITORY = "__repository__"
TAGS = {"replyassets/launched_by": "make-demo"}
# In-process execution (one process per run, not per step) and quiet console logs.
RUN_CONFIG = {
    "execution": {"config": {"in_process": {}}},
    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
}


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


class AssetRunner:
    """Runs asset selections as runs of the code location's asset job, in this process.

    The run records the code location's origin (location ``replyassets``, as in
    ``workspace.yaml`` and ``[tool.dg]``), so the UI shows it with its asset selection and
    can re-execute it.
    """

    def __init__(self, instance):
        from dagster._core.definitions.reconstruct import ReconstructableRepository
        from dagster._core.remote_origin import (
            ManagedGrpcPythonEnvCodeLocationOrigin,
            RemoteJobOrigin,
            RemoteRepositoryOrigin,
        )
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

        self.instance = instance
        self.repo = ReconstructableRepository.for_module(DEFINITIONS_MODULE, "defs", working_directory=str(PROJECT_ROOT))
        location = ManagedGrpcPythonEnvCodeLocationOrigin(
            LoadableTargetOrigin(
                executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=str(PROJECT_ROOT)
            ),
            location_name=LOCATION_NAME,
        )
        self.remote_origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY), ASSET_JOB)

    def run(self, keys: Iterable, partition: str | None = None):
        """Materialize ``keys`` (one partition or none); returns the finished DagsterRun."""
        from dagster._core.execution.api import execute_run

        keys = frozenset(keys)
        # The whole asset job: create_run_for_job and execute_run subset it to ``keys`` themselves,
        # so the run's snapshot names the loaded job's snapshot as its parent, as a launch from the
        # UI does (a job subset here first would be subset twice, and the UI would warn on
        # re-execution that the loaded job "may be different than the one used for the original run").
        job = self.repo.get_reconstructable_job(ASSET_JOB)
        job_def = job.get_definition()
        tags = dict(TAGS)
        if partition is not None:
            tags.update(job_def.get_tags_for_partition_key(partition, selected_asset_keys=keys))
        run = self.instance.create_run_for_job(
            job_def=job_def,
            run_config=RUN_CONFIG,
            tags=tags,
            asset_selection=keys,
            job_code_origin=job.get_python_origin(),
            remote_job_origin=self.remote_origin,
        )
        result = execute_run(job, run, self.instance, raise_on_error=False)
        return result.dagster_run if hasattr(result, "dagster_run") else self.instance.get_run_by_id(run.run_id)


def _partition_keys(instance, node) -> list:
    if not node.is_partitioned:
        return [None]
    return sorted(instance.get_dynamic_partitions(node.partitions_def.name))


def stale_plan(instance, asset_graph) -> list[tuple[list, list, list[str]]]:
    """Every materializable asset that is missing or stale, in dependency order.

    Returns ``[(execution set keys, partitions (or [None]), reasons)]``; an asset with several
    outputs that materialize together (``raw_tweets`` + ``raw_tweet_rejections``) is one entry.
    """
    import dagster as dg
    from dagster._core.asset_graph_view.asset_graph_view import (
        AssetGraphView,
        TemporalContext,
    )
    from dagster._core.definitions.data_version import (
        CachingStaleStatusResolver,
        StaleStatus,
    )
    from dagster._time import get_current_datetime

    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=asset_graph,
    )
    resolver = CachingStaleStatusResolver(instance, asset_graph, view)
    plan, seen = [], set()
    for key in asset_graph.toposorted_asset_keys:
        node = asset_graph.get(key)
        if node.is_external or key in seen:
            continue
        group = sorted(node.execution_set_asset_keys, key=lambda k: k.to_user_string())
        seen.update(group)
        todo, reasons = [], []
        for p in _partition_keys(instance, node):
            statuses = {k: resolver.get_status(k, p) for k in group}
            if any(st == StaleStatus.MISSING for st in statuses.values()):
                todo.append(p)
                reasons.append(f"{p + ': ' if p else ''}missing")
            elif any(st == StaleStatus.STALE for st in statuses.values()):
                todo.append(p)
                causes = sorted({f"{c.key.asset_key.to_user_string()} {c.reason}" for k in group
                                 for c in resolver.get_stale_root_causes(k, p)})
                reasons.append(f"{p + ': ' if p else ''}" + "; ".join(causes))
        if todo:
            plan.append((group, todo, reasons))
    assert all(isinstance(k, dg.AssetKey) for g, _, _ in plan for k in g)
    return plan


def asset_statuses(instance) -> dict[str, str]:
    """Dagster's stale status of every materializable asset (partition), e.g.
    ``{"validated_pairs[ai-agents]": "FRESH", "deduped_pairs": "STALE"}``, after registering
    partitions and observing the sources (what ``python -m replyassets.demo --status`` prints).
    """
    from dagster._core.asset_graph_view.asset_graph_view import (
        AssetGraphView,
        TemporalContext,
    )
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._time import get_current_datetime

    from replyassets.definitions import defs
    from replyassets.defs.collect import sync_query_partitions
    from replyassets.defs.experiments import sync_experiment_partitions
    from replyassets.defs.sources import observe_now

    sync_query_partitions(instance)
    sync_experiment_partitions(instance)
    observe_now(instance)
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance, graph, view)
    out = {}
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if node.is_external:
            continue
        for p in _partition_keys(instance, node):
            out[key.to_user_string() + (f"[{p}]" if p else "")] = resolver.get_status(key, p).value
    return out


def materialize_stale(instance, say=_say, max_runs: int = 200) -> tuple[bool, list[tuple[str, str | None, str]]]:
    """Materialize what Dagster says is missing or stale until nothing is. Returns (ok, runs).

    ``runs`` lists ``(asset keys, partition, run id)`` of every run launched.
    """
    from replyassets.definitions import defs
    from replyassets.defs.collect import sync_query_partitions
    from replyassets.defs.experiments import sync_experiment_partitions
    from replyassets.defs.sources import observe_now

    added, orphaned = sync_query_partitions(instance)
    if added:
        say(f"registered {len(added)} new query partitions: {', '.join(added)}")
    if orphaned:
        say(f"partitions no longer in the queries file (data kept): {orphaned}")
    added, orphaned = sync_experiment_partitions(instance)
    if added:
        say(f"registered {len(added)} new experiment partitions: {', '.join(added)}")
    if orphaned:
        say(f"experiments no longer in the experiments file (adapters and reports kept): {orphaned}")
    observed, problems = observe_now(instance)
    for problem in problems:
        say(f"warning: {problem}")
    if observed:
        say(f"observed {observed} changed source(s) (queries, replay files, review decisions)")
    asset_graph = defs.resolve_asset_graph()
    runner = AssetRunner(instance)
    done: set = set()
    launched: list[tuple[str, str | None, str]] = []
    while True:
        plan = stale_plan(instance, asset_graph)
        if not plan:
            return True, launched
        group, todo, reasons = plan[0]
        names = ", ".join(k.to_user_string() for k in group)
        for p, why in zip(todo, reasons, strict=True):
            if (names, p) in done or len(launched) >= max_runs:
                say(f"  STILL STALE after materializing {names} {p or ''}: {why}")
                return False, launched
            done.add((names, p))
            start = time.monotonic()
            run = runner.run(group, partition=p)
            launched.append((names, p, run.run_id))
            took = time.monotonic() - start
            label = f"{names}{f' [{p}]' if p else ''}"
            if run.is_success:
                say(f"  ok   {label} ({took:.1f}s, run {run.run_id[:8]}) — {why}")
                continue
            if names == "champion" and _only_the_gate_failed(instance, run.run_id):
                # The gate refused: the champion stays as it was; that is a result, not an error.
                say(f"  ok   {label} ({took:.1f}s, run {run.run_id[:8]}) — {why}; the promotion gate refused")
                continue
            say(f"  FAILED {label} ({took:.1f}s, run {run.run_id[:8]}) — {why}")
            for line in _failure_lines(instance, run.run_id):
                say(f"       {line}")
            return False, launched


def _only_the_gate_failed(instance, run_id: str) -> bool:
    """The champion run failed only because its blocking promotion_gate check did."""
    from dagster import DagsterEventType

    failed_checks, failed_steps = set(), set()
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_FAILURE:
            failed_steps.add(event.step_key)
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = getattr(event.event_specific_data, "evaluation", event.event_specific_data)
            if not getattr(evaluation, "passed", True):
                failed_checks.add(evaluation.check_name)
    return failed_checks == {"promotion_gate"} and failed_steps <= {"champion"}


def _failure_lines(instance, run_id: str) -> list[str]:
    from dagster import DagsterEventType

    lines = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_FAILURE:
            lines.append(f"{event.step_key}: {(record.message or '')[:400]}")
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            evaluation = getattr(data, "evaluation", data)
            if not getattr(evaluation, "passed", True):
                lines.append(f"check {evaluation.check_name} failed: {(evaluation.description or '')[:300]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("REPLYASSETS_PROFILE", "local")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    home = _ensure_dagster_home()
    t0 = time.monotonic()

    import dagster as dg

    from replyassets.defs.common import latest_materialization
    from replyassets.settings import get_settings

    s = get_settings()
    instance = dg.DagsterInstance.get()
    if argv and argv[0] == "--status":
        import json

        print(json.dumps(asset_statuses(instance), indent=1))
        return 0
    _say(f"profile {s.profile}; Dagster instance {home}; materializing what Dagster reports missing or stale")
    ok, runs = materialize_stale(instance)
    if not ok:
        _say("stopped: fix what failed above (the UI shows the details: make ui)")
        return 1
    if not runs:
        _say("nothing is missing or stale: every asset is up to date")

    print()
    print("=" * 72)
    print(f"replyassets demo finished in {time.monotonic() - t0:.0f}s ({len(runs)} runs)")
    from replyassets.core import db

    print(f"  storage     : {db.storage_from_settings(s).describe()}")
    for part in sorted(instance.get_dynamic_partitions("experiment")):
        report = latest_materialization(instance, "eval_report", part)
        md = {k: v.value for k, v in (report.metadata.items() if report else [])}
        print(f"  report [{part}]: {md.get('report_html', '?')}")
    print("  open the UI : make ui   (then http://127.0.0.1:3000)")
    pref = latest_materialization(instance, "preference_pairs")
    if pref is not None:
        pm = {k: v.value for k, v in pref.metadata.items()}
        print(f"  preference pairs: {pm.get('pairs')} over {pm.get('tweets_with_pairs')} tweets "
              f"({pm.get('pairs_per_tweet')} per tweet); files {pm.get('preference_train_file')}")
    report = latest_materialization(instance, "eval_report", "default")
    if report is not None and "judge_likes_agreement" in report.metadata:
        rm = {k: v.value for k, v in report.metadata.items()}
        print(f"  judge vs real likes: agreement {rm.get('judge_likes_agreement')} "
              f"[{rm.get('judge_likes_ci_low')}, {rm.get('judge_likes_ci_high')}] on {rm.get('judge_likes_tweets')} "
              f"test tweets (0.5 = chance; flag: {rm.get('judge_flag')})")
    board = latest_materialization(instance, "leaderboard")
    champ = latest_materialization(instance, "champion")
    for line in closing_lines(
        board.metadata["markdown"].value if board is not None and "markdown" in board.metadata else None,
        champ.metadata["decision"].value if champ is not None and "decision" in champ.metadata else None,
    ):
        print(line)
    return 0


def closing_lines(leaderboard_markdown: str | None, champion_decision: str | None) -> list[str]:
    """The end of the demo's output: the leaderboard (its markdown table), then the champion
    decision, then the closing rule."""
    lines: list[str] = []
    if leaderboard_markdown:
        lines += ["", "Leaderboard (win rate against the base model, the test tweet as unit):",
                  *leaderboard_markdown.splitlines()]
    if champion_decision:
        lines += ["", f"Champion: {champion_decision}"]
    return [*lines, "=" * 72]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
