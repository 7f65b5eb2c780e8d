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

The console carries only the demo's own lines: progress, each run with its reason and outcome,
every failed asset check of ERROR severity (blocking or not, with its asset, partition and
message), and the summary. Library output (warnings, ``logging``, progress bars, the training
subprocesses' output) goes to ``<data dir>/logs/demo-<timestamp>.log``, whose path is printed.

Dagster 1.13 has no public API for two things this needs; the private symbols used for them are
listed, with the reason, in docs/design.md ("Private Dagster APIs") and checked by
``replyassets_tests/defs/test_private_apis.py``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from replyassets.settings import PROJECT_ROOT

LOCATION_NAME = "replyassets"
DEFINITIONS_MODULE = "replyassets.definitions"
ASSET_JOB = "__ASSET_JOB"
REPOSITORY = "__repository__"
TAGS = {"replyassets/launched_by": "make-demo"}
# Steps run in this process (the in_process executor), one run after another: the multiprocess
# executor would start a process per step, each loading the definitions again (tens of seconds
# on a loaded 2-core machine); training still runs in its own process (the Pipes launcher).
# Dagster's console logger only at WARNING (into the log file, see quiet_console).
RUN_CONFIG = {
    "execution": {"config": {"in_process": {}}},
    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
}
ROW_COUNT_KEYS = ("dagster/partition_row_count", "dagster/row_count")
# Set (unless the user set them) before any library loads; subprocesses inherit them.
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}
# Where the demo's own lines go: the real stdout, also after quiet_console() pointed the
# process's stdout and stderr at the log file.
_console: TextIO | None = None
_log = logging.getLogger("replyassets.demo")


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
    _log.info(msg)
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", file=_console or sys.stdout, flush=True)


def _out(line: str = "") -> None:
    """One line of the summary: on the console, and in the log for context."""
    _log.info(line)
    print(line, file=_console or sys.stdout, flush=True)


def quiet_console(log_dir: Path) -> Path:
    """Send everything but the demo's own lines to ``log_dir/demo-<timestamp>.log``; return its path.

    File descriptors 1 and 2 are pointed at the log, so library prints, Dagster's console
    logger, tracebacks and the output of every subprocess (the training workers inherit them)
    land there; the demo keeps a duplicate of the real stdout for its own lines. Warnings are
    routed through ``logging`` (``logging.captureWarnings``), not filtered: each is in the log.
    """
    global _console
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.log"
    sys.stdout.flush()
    sys.stderr.flush()
    _console = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    return path


class AssetRunner:
    """Runs asset selections as runs of the code location's asset job, in this process.

    The run records the code location's origin (location ``replyassets``, as in
    ``workspace.yaml`` and ``[tool.dg]``), so the UI shows it with its asset selection and
    can re-execute it. The UI's re-execution starts from that origin; the public ways to run
    assets (``dg.materialize``, ``JobDefinition.execute_in_process``, ``dg.execute_job``,
    ``dg launch``) create runs without one, which the UI cannot re-execute. Hence the private
    imports here (docs/design.md, "Private Dagster APIs").
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


def stale_status_resolver(instance, asset_graph):
    """Dagster's stale-status resolver: what the UI's "Unsynced"/"Missing" badges show.

    Dagster 1.13 exposes stale status only through its GraphQL API (the UI), so this uses the
    private resolver (docs/design.md, "Private Dagster APIs").
    """
    from dagster._core.asset_graph_view.asset_graph_view import (
        AssetGraphView,
        TemporalContext,
    )
    from dagster._core.definitions.data_version import CachingStaleStatusResolver

    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=datetime.now(UTC), last_event_id=None),
        instance=instance,
        asset_graph=asset_graph,
    )
    return CachingStaleStatusResolver(instance, asset_graph, view)


def _partition_keys(instance, node) -> list:
    if not node.is_partitioned:
        return [None]
    return sorted(instance.get_dynamic_partitions(node.partitions_def.name))


def stale_plan(instance, asset_graph) -> list[tuple[list, list, list[str]]]:
    """Every materializable asset that is missing or stale, in dependency order.

    Returns ``[(execution set keys, partitions (or [None]), reasons)]``; an asset with several
    outputs that materialize together (``raw_tweets`` + ``raw_tweet_rejections``) is one entry.
    """
    from dagster._core.definitions.data_version import StaleStatus

    resolver = stale_status_resolver(instance, asset_graph)
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
    return plan


def register_and_observe(instance, say: Callable[[str], None] = _say) -> None:
    """Register query/experiment partitions and observe the sources, saying what changed."""
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


def asset_statuses(instance) -> dict[str, str]:
    """Dagster's stale status of every materializable asset (partition), e.g.
    ``{"validated_pairs[ai-agents]": "FRESH", "deduped_pairs": "STALE"}``, after registering
    partitions and observing the sources (what ``python -m replyassets.demo --status`` prints).
    """
    from replyassets.definitions import defs

    register_and_observe(instance, say=_log.info)
    graph = defs.resolve_asset_graph()
    resolver = stale_status_resolver(instance, graph)
    out = {}
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if node.is_external:
            continue
        for p in _partition_keys(instance, node):
            out[key.to_user_string() + (f"[{p}]" if p else "")] = resolver.get_status(key, p).value
    return out


@dataclass(frozen=True)
class FailedCheck:
    """One failed asset check evaluation of a run."""

    asset: str
    partition: str | None
    check: str
    message: str
    blocking: bool
    error: bool  # severity ERROR (else WARN)

    def line(self) -> str:
        where = f"{self.asset}[{self.partition}]" if self.partition else self.asset
        return (f"CHECK FAILED {where} {self.check} ({'blocking' if self.blocking else 'non-blocking'}, "
                f"{'ERROR' if self.error else 'WARN'}): {self.message}")


@dataclass(frozen=True)
class RunOutcome:
    """What one run did, read back from its events in the instance (``run_outcome``)."""

    label: str
    run_id: str
    success: bool
    partition: str | None
    failed_checks: tuple[FailedCheck, ...]
    rows: tuple[tuple[str, int], ...]  # (asset, rows written) where the materialization records a row count
    step_failures: tuple[tuple[str, str], ...]  # (step key, message)

    @property
    def error_checks(self) -> list[FailedCheck]:
        return [c for c in self.failed_checks if c.error]

    @property
    def produced_nothing(self) -> bool:
        """A partition whose every table output wrote 0 rows."""
        return self.partition is not None and bool(self.rows) and all(n == 0 for _, n in self.rows)

    @property
    def ok(self) -> bool:
        return self.success and not self.produced_nothing and not self.error_checks


def run_outcome(instance, run, label: str) -> RunOutcome:
    """Read a finished run's failed steps, failed asset checks and row counts from the instance."""
    import dagster as dg

    partition = run.tags.get("dagster/partition")
    checks, rows, failures = [], [], []
    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION,
             dg.DagsterEventType.ASSET_MATERIALIZATION}
    for record in instance.all_logs(run.run_id, of_type=kinds):
        event = record.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failures.append((event.step_key, _failure_message(event.step_failure_data) or record.message or ""))
        elif (evaluation := record.asset_check_evaluation) is not None:
            if not evaluation.passed:
                checks.append(FailedCheck(
                    asset=evaluation.asset_key.to_user_string(), partition=evaluation.partition or partition,
                    check=evaluation.check_name, message=(evaluation.description or "")[:300],
                    blocking=bool(evaluation.blocking), error=evaluation.severity == dg.AssetCheckSeverity.ERROR))
        elif (materialization := record.asset_materialization) is not None:
            # Dagster's documented row-count metadata keys (what the DuckDB IO manager records).
            count = next((materialization.metadata[k] for k in ROW_COUNT_KEYS if k in materialization.metadata), None)
            if count is not None:
                rows.append((materialization.asset_key.to_user_string(), int(count.value)))
    return RunOutcome(label=label, run_id=run.run_id, success=run.is_success, partition=partition,
                      failed_checks=tuple(checks), rows=tuple(rows), step_failures=tuple(failures))


def _failure_message(data) -> str:
    """The reason a step failed: a ``dg.Failure``'s description, else the error's message (with its class)."""
    if data is None:
        return ""
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description[:400]
    return " ".join(data.error.message.split())[:400] if data.error is not None else ""


def outcome_lines(outcome: RunOutcome, took: float, why: str) -> list[str]:
    """The console lines for one run: ``ok``, ``WARN`` (it ran, but a check of ERROR severity
    failed or the partition produced nothing) or ``FAILED``, then every failed step and every
    failed ERROR check with its asset, partition and message."""
    head = f"{outcome.label} ({took:.1f}s, run {outcome.run_id[:8]}) — {why}"
    errors = outcome.error_checks
    if not outcome.success:
        first = f"  FAILED {head}"
    elif not outcome.ok:
        notes = [f"{len(errors)} failed ERROR check(s)"] if errors else []
        if outcome.produced_nothing:
            notes.append("produced nothing (0 rows: " + ", ".join(a for a, _ in outcome.rows) + ")")
        first = f"  WARN {head}; " + "; ".join(notes)
    else:
        first = f"  ok   {head}"
    lines = [first]
    if not outcome.success:
        lines += [f"       {step}: {message}" for step, message in outcome.step_failures]
    return [*lines, *(f"       {c.line()}" for c in errors)]


def summary_counts(outcomes: list[RunOutcome]) -> str:
    """``"26 runs; 2 failed ERROR checks; 1 partition produced nothing"`` (the summary's counts)."""
    checks = [c for o in outcomes for c in o.error_checks]
    empty = sum(o.produced_nothing for o in outcomes)
    parts = [f"{len(outcomes)} run{'s' * (len(outcomes) != 1)}",
             f"{len(checks)} failed ERROR check{'s' * (len(checks) != 1)}",
             f"{empty} partition{'s' * (empty != 1)} produced nothing"]
    return "; ".join(parts)


def materialize_stale(instance, say=_say, max_runs: int = 200) -> tuple[bool, list[RunOutcome]]:
    """Materialize what Dagster says is missing or stale until nothing is.

    Returns ``(ok, outcomes)``: ``ok`` is False when a run failed or something stayed stale
    (the champion gate refusing a candidate is an outcome: its run succeeds); ``outcomes``
    lists every run launched.
    """
    from replyassets.definitions import defs

    register_and_observe(instance, say)
    asset_graph = defs.resolve_asset_graph()
    runner = AssetRunner(instance)
    done: set = set()
    outcomes: list[RunOutcome] = []
    while True:
        plan = stale_plan(instance, asset_graph)
        if not plan:
            return True, outcomes
        group, todo, reasons = plan[0]
        names = ", ".join(k.to_user_string() for k in group)
        for p, why in zip(todo, reasons, strict=True):
            if (names, p) in done or len(outcomes) >= max_runs:
                say(f"  STILL STALE after materializing {names} {p or ''}: {why}")
                return False, outcomes
            done.add((names, p))
            start = time.monotonic()
            run = runner.run(group, partition=p)
            outcome = run_outcome(instance, run, f"{names}{f' [{p}]' if p else ''}")
            outcomes.append(outcome)
            for line in outcome_lines(outcome, time.monotonic() - start, why):
                say(line)
            if not outcome.success:
                return False, outcomes


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("REPLYASSETS_PROFILE", "local")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    home = _ensure_dagster_home()
    from replyassets.settings import get_settings

    log_path = quiet_console(get_settings().data_dir / "logs")
    try:
        return _run(argv or [], home, log_path)
    except Exception as exc:
        _say(f"crashed: {type(exc).__name__}: {exc} (traceback in {log_path})")
        raise  # the traceback goes to stderr: the log


def _run(argv: list[str], home: Path, log_path: Path) -> int:
    t0 = time.monotonic()
    import dagster as dg

    from replyassets.settings import get_settings

    s = get_settings()
    instance = dg.DagsterInstance.get()
    if argv[:1] == ["--status"]:
        import json

        _out(json.dumps(asset_statuses(instance), indent=1))
        return 0
    _say(f"profile {s.profile}; Dagster instance {home}; materializing what Dagster reports missing or stale")
    _say(f"library output and warnings: {log_path}")
    ok, outcomes = materialize_stale(instance)
    if not ok:
        _say(f"stopped ({summary_counts(outcomes)}): fix what failed above (the UI shows the details: make ui)")
        _say(f"library output and warnings: {log_path}")
        return 1
    if not outcomes:
        _say("nothing is missing or stale: every asset is up to date")
    _out()
    _out("=" * 72)
    _out(f"replyassets demo finished in {time.monotonic() - t0:.0f}s ({summary_counts(outcomes)})")
    failed = [c for o in outcomes for c in o.error_checks]
    for check in failed:
        _out(f"  {check.line()}")
    for o in outcomes:
        if o.produced_nothing:
            _out(f"  EMPTY {o.label}: 0 rows written (" + ", ".join(a for a, _ in o.rows) + ")")
    _out(f"  log         : {log_path} (library warnings, logs and progress)")
    for line in result_lines(instance, s):
        _out(line)
    return 0


def result_lines(instance, s) -> list[str]:
    """Where the results are: storage, each experiment's report, preference pairs, the judge's
    agreement with real likes, then the leaderboard and the champion decision."""
    from replyassets.core import db
    from replyassets.defs.common import latest_materialization

    def md(materialization) -> dict:
        return {k: v.value for k, v in (materialization.metadata.items() if materialization else [])}

    lines = [f"  storage     : {db.storage_from_settings(s).describe()}"]
    for part in sorted(instance.get_dynamic_partitions("experiment")):
        folder = md(latest_materialization(instance, "eval_report", part)).get("report_folder")
        lines.append(f"  report [{part}]: {Path(str(folder)) / 'report.html' if folder else '?'}")
    lines.append("  open the UI : make ui   (then http://127.0.0.1:3000)")
    pref = latest_materialization(instance, "preference_pairs")
    if pref is not None:
        pm = md(pref)
        lines.append(f"  preference pairs: {pm.get('pairs')} over {pm.get('tweets_with_pairs')} tweets "
                     f"({pm.get('pairs_per_tweet')} per tweet); files {pm.get('preference_train_file')}")
    rm = md(latest_materialization(instance, "eval_report", "default"))
    if "judge_likes_agreement" in rm:
        lines.append(f"  judge vs real likes: agreement {rm.get('judge_likes_agreement')} "
                     f"[{rm.get('judge_likes_ci_low')}, {rm.get('judge_likes_ci_high')}] on {rm.get('judge_likes_tweets')} "
                     f"test tweets (0.5 = chance; flag: {rm.get('judge_flag')})")
    board = leaderboard_markdown_of(s)
    champ = md(latest_materialization(instance, "champion"))
    shipped = md(latest_materialization(instance, "champion_export"))
    candidates = [r.data for r in champ["candidates"].records] if "candidates" in champ else []
    return [*lines, *closing_lines(board, champ.get("headline") or champ.get("decision"),
                                   shipped.get("shipped"), candidates)]


def leaderboard_markdown_of(s) -> str | None:
    """The stored leaderboard table (gate order) as markdown, or None before its first build."""
    from replyassets.core import db
    from replyassets.core.leaderboard import GATE_RANK, leaderboard_markdown

    with db.connect(db.storage_from_settings(s), purpose="make demo: the leaderboard") as con:
        if not db.table_exists(con, "leaderboard"):
            return None
        df = con.execute("SELECT * FROM main.leaderboard").df()
    # gate order, as stored (a stable sort: the order within a gate class is the asset's)
    df = df.sort_values("gate", key=lambda g: g.map(GATE_RANK).fillna(len(GATE_RANK)), kind="stable")
    return leaderboard_markdown(df) if len(df) else None


def closing_lines(leaderboard_markdown: str | None, champion_decision: str | None,
                  shipped: str | None = None, candidates: list[dict] | None = None) -> list[str]:
    """The end of the demo's output: the leaderboard (its markdown table), then the champion
    decision as an outcome ("promoted X" or "stays with Y / the base model"), each candidate's
    outcome and reason (``{"experiment", "outcome", "reason"}``, the champion's ``candidates``),
    what ``champion_export`` shipped, then the closing rule."""
    lines: list[str] = []
    if leaderboard_markdown:
        lines += ["", "Leaderboard (win rate against the base model, the test tweet as unit):",
                  *leaderboard_markdown.splitlines()]
    if champion_decision:
        lines += ["", f"Champion: {champion_decision}",
                  *(f"  {c['experiment']} {c['outcome']}: {c['reason']}" for c in candidates or [])]
    if shipped:
        lines += [f"Shipped : {shipped}"]
    return [*lines, "=" * 72]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
