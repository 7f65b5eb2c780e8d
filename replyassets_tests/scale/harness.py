"""Daemon-driven collection backfills: production ``raw_tweets`` partitions (the Apify source)
against the loopback Apify server, launched through a real Dagster instance the way the UI
launches them. Shared by the PostgreSQL instance test (``test_postgres_instance.py``) and
``benchmarks/backfill.py``.

A :class:`BackfillProject` is a temporary project: a DAGSTER_HOME holding the given
``dagster.yaml`` (the shipped one, or ``deploy/dagster.yaml`` for PostgreSQL), a DuckDB file, a
queries file with one query per synthetic dataset entry, and a workspace loading
``replyassets_tests/scale/location.py`` (the project's definitions, production profile, with the
tweet source's ``api_url`` pointed at the fake server). :func:`run_dagster_dev` starts `dg dev`
(webserver + daemon + code server: what `make ui` runs) in it; :func:`launch_backfill` sends the
``launchPartitionBackfill`` mutation the UI's "Materialize all partitions" dialog sends;
:func:`collect_report` reads back what happened from the instance: each run's start and end, each
``raw_tweets`` step's start and end, and every lock error in the event logs, the captured step
output and the server's log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from replyassets_tests.fakes import FakeApifyServer
from replyassets_tests.ui.conftest import (
    _EXEC_WRAPPER,
    DagsterDev,
    _stop_group,
    _wait_until_loaded,
    free_port,
)

ROOT = Path(__file__).resolve().parents[2]
COLLECT_ASSETS = ("raw_tweets", "raw_tweet_rejections")
# What DuckDB says when a writer finds the file taken, and what the storage lock says when it gave
# up waiting (replyassets/core/db.py, StorageBusy): none may reach a user.
LOCK_ERRORS = ("could not set lock", "conflicting lock", "database is locked", "storagebusy", "stayed busy",
               "stayed locked", "is locked by")
APIFY_TOKEN = "fake-apify-token-scale"
T0 = datetime(2025, 10, 2, 7, 11, 55, tzinfo=UTC)
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions partitionNames error { message } }
    ... on PythonError { message }
  }
}
"""


# ----------------------------------------------------------------------------- synthetic data


def _twitter_date(dt: datetime) -> str:
    return dt.strftime("%a %b %d %H:%M:%S +0000 %Y")


@dataclass
class QueryData:
    name: str
    text: str
    tweets: list[dict]
    replies: dict[str, list[dict]]  # conversation id -> reply items

    @property
    def reply_ids(self) -> set[str]:
        return {r["id"] for items in self.replies.values() for r in items}


def make_dataset(n_queries: int, tweets_per_query: int = 4, replies_per_tweet: int = 5) -> list[QueryData]:
    """``n_queries`` queries of apidojo tweet-scraper items that all pass the default collection
    filters: each query ``tweets_per_query`` tweets, each tweet ``replies_per_tweet`` replies by
    distinct authors. Deterministic."""
    out = []
    for q in range(n_queries):
        tweets, replies = [], {}
        for t in range(tweets_per_query):
            tid = str(1975_000_000_000_000_000 + q * 1_000_000 + t * 1000)
            text = f"Topic {q} question {t}: what is the hardest part of shipping agents to production?"
            tweets.append({
                "type": "tweet", "id": tid, "text": text, "fullText": text,
                "createdAt": _twitter_date(T0), "likeCount": 640 + t, "retweetCount": 55, "replyCount": 90,
                "quoteCount": 3, "lang": "en", "isReply": False, "isRetweet": False, "isQuote": False,
                "conversationId": tid, "entities": {"urls": [], "hashtags": []},
                "author": {"userName": f"builder_{q}_{t}", "followers": 12000},
            })
            items = []
            for r in range(replies_per_tweet):
                rid = str(int(tid) + r + 1)
                body = (f"Query {q} tweet {t} reply {r}: evaluation harnesses that replay real traffic "
                        "caught most of our regressions before users did.")
                items.append({
                    "type": "tweet", "id": rid, "text": body, "fullText": body,
                    "createdAt": _twitter_date(T0 + timedelta(hours=1, minutes=r)), "likeCount": 12 + r,
                    "retweetCount": 1, "lang": "en", "isReply": True, "isRetweet": False, "isQuote": False,
                    "conversationId": tid, "inReplyToId": tid, "entities": {"urls": []},
                    "author": {"userName": f"dev_{q}_{t}_{r}", "followers": 900 + r},
                })
            replies[tid] = items
        out.append(QueryData(f"scale-q{q}", f"scale topic {q} agents in production", tweets, replies))
    return out


def load_dataset(api: FakeApifyServer, dataset: list[QueryData]) -> None:
    for q in dataset:
        api.add_search(q.text, q.tweets)
        for conv, items in q.replies.items():
            api.add_replies(conv, items)


def run_query(run) -> str | None:
    """The search text or ``conversation_id:<id>`` an actor run of the fake server was started with."""
    terms = run.run_input.get("searchTerms") if isinstance(run.run_input, dict) else None
    return terms[0] if terms else None


# ----------------------------------------------------------------------------- the project


@dataclass
class BackfillProject:
    root: Path
    home: Path
    data: Path
    database: Path
    queries_file: Path
    workspace: Path
    partitions: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def instance(self):
        import dagster as dg
        from dagster._core.instance.ref import InstanceRef

        with _env(self.env):  # a dagster.yaml reading its settings from env vars (PostgreSQL)
            return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(self.home)))


@contextlib.contextmanager
def _env(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build_project(root: Path, dagster_yaml: str, dataset: list[QueryData], apify_url: str,
                  extra_env: dict[str, str] | None = None) -> BackfillProject:
    """A project under ``root`` whose instance is ``dagster_yaml`` (text), collecting ``dataset``
    through the production Apify source at ``apify_url``; its query partitions registered."""
    root.mkdir(parents=True, exist_ok=True)
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    data.mkdir()
    (home / "dagster.yaml").write_text(dagster_yaml)
    queries = root / "queries.yaml"
    queries.write_text(yaml.safe_dump({"queries": [{"name": q.name, "text": q.text} for q in dataset]},
                                      sort_keys=False))
    workspace = root / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "replyassets_tests.scale.location", "location_name": "replyassets",
        "working_directory": str(ROOT)}}]}))
    env = {
        "DAGSTER_HOME": str(home),
        "REPLYASSETS_PROFILE": "production",
        "REPLYASSETS_DATA_DIR": str(data),
        "REPLYASSETS_DATABASE": str(data / "replyassets.duckdb"),
        "REPLYASSETS_QUERIES": str(queries),
        # The production profile keeps its tables on DuckLake; a project here uses the DuckDB
        # file unless extra_env says ducklake (and names a catalog).
        "REPLYASSETS_STORAGE_BACKEND": "duckdb",
        "APIFY_API_TOKEN": APIFY_TOKEN,
        "REPLYASSETS_TEST_APIFY_URL": apify_url,
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        **(extra_env or {}),
    }
    project = BackfillProject(root, home, data, data / "replyassets.duckdb", queries, workspace,
                              sorted(q.name for q in dataset), env)
    instance = project.instance()
    try:
        instance.add_dynamic_partitions("query", project.partitions)
    finally:
        instance.dispose()
    return project


@contextlib.contextmanager
def run_dagster_dev(project: BackfillProject, startup_timeout: float = 300):
    """`dg dev` (webserver + daemon) on a free loopback port in ``project``; stopped by its process
    group at exit (started from a non-interactive shell it ignores SIGINT/SIGTERM otherwise)."""
    dg_cli = Path(sys.executable).parent / "dg"
    port = free_port()
    log_path = project.root / f"dagster_dev_{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _EXEC_WRAPPER, str(dg_cli), "dev", "-h", "127.0.0.1", "-p", str(port),
             "-w", str(project.workspace)],
            cwd=ROOT, env={**os.environ, **project.env}, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        server = DagsterDev(project, port, proc, log_path)  # type: ignore[arg-type]  # duck-typed project
        try:
            _wait_until_loaded(server, startup_timeout)
            yield server
        finally:
            _stop_group(proc)


# ----------------------------------------------------------------------------- backfill


def launch_backfill(server: DagsterDev, assets=COLLECT_ASSETS, tag: str = "scale") -> str:
    launched = server.graphql(LAUNCH, {"params": {
        "assetSelection": [{"path": [key]} for key in assets],
        "allPartitions": True,
        "fromFailure": False,
        "tags": [{"key": "replyassets/launched_by", "value": tag}],
    }})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def wait_backfill(server: DagsterDev, backfill_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    backfill: dict = {}
    while time.monotonic() < deadline:
        backfill = server.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in TERMINAL:
            return backfill
        time.sleep(2)
    raise AssertionError(f"backfill still {backfill} after {timeout:.0f}s:\n{server.log_tail()}")


@dataclass
class Interval:
    key: str  # run id, or the partition for a step
    start: float  # epoch seconds
    end: float


@dataclass
class BackfillReport:
    runs: dict[str, dict[str, Any]]  # run id -> {status, partition, start, end}
    steps: list[Interval]  # one per raw_tweets step (partition, start, end)
    lock_errors: list[str]
    failures: list[str]

    @property
    def run_intervals(self) -> list[Interval]:
        return [Interval(r, v["start"], v["end"]) for r, v in self.runs.items() if v["start"] and v["end"]]


def max_overlap(intervals: list[Interval]) -> int:
    """The most intervals open at one instant."""
    points = sorted([(i.start, 1) for i in intervals] + [(i.end, -1) for i in intervals])
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


def _lock_lines(text: str) -> list[str]:
    return [line.strip()[:300] for line in text.splitlines() if any(e in line.lower() for e in LOCK_ERRORS)]


def collect_report(project: BackfillProject, backfill_id: str, server: DagsterDev | None = None) -> BackfillReport:
    """Runs, raw_tweets steps and lock errors of the backfill, from the instance's run and event
    storage, the captured step output under DAGSTER_HOME and the server's log."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    instance = project.instance()
    runs: dict[str, dict[str, Any]] = {}
    steps: list[Interval] = []
    lock_errors: list[str] = []
    failures: list[str] = []
    try:
        records = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        for rec in records:
            run = rec.dagster_run
            runs[run.run_id] = {"status": run.status.value, "partition": run.tags.get("dagster/partition"),
                                "start": rec.start_time, "end": rec.end_time}
            starts: dict[str, float] = {}
            texts = []
            for entry in instance.all_logs(run.run_id):
                ev = entry.dagster_event
                texts.append(entry.user_message or "")
                if ev is not None and ev.event_type == DagsterEventType.STEP_FAILURE:
                    texts.append(str(ev.event_specific_data.error.to_string()) if ev.event_specific_data else "")
                if ev is not None and ev.event_type == DagsterEventType.RUN_FAILURE and ev.event_specific_data:
                    err = getattr(ev.event_specific_data, "error", None)
                    texts.append(err.to_string() if err else "")
                if ev is not None and ev.step_key == "raw_tweets":
                    if ev.event_type == DagsterEventType.STEP_START:
                        starts[run.run_id] = entry.timestamp
                    elif ev.event_type == DagsterEventType.STEP_SUCCESS and run.run_id in starts:
                        steps.append(Interval(run.tags.get("dagster/partition", run.run_id), starts[run.run_id],
                                              entry.timestamp))
            lock_errors += [f"{run.run_id[:8]} event log: {t}" for text in texts for t in _lock_lines(text)]
            if run.status != dg.DagsterRunStatus.SUCCESS:
                failures.append(f"{run.run_id[:8]} {run.status.value}: "
                                + " | ".join(t[:400] for t in texts if "rror" in t)[:2000])
    finally:
        instance.dispose()
    for path in sorted(project.home.rglob("*")):  # captured stdout/stderr of every step
        if path.is_file() and path.suffix in (".out", ".err", ".log"):
            lock_errors += [f"{path.name}: {t}" for t in _lock_lines(path.read_text(errors="replace"))]
    if server is not None:
        lock_errors += [f"dg dev log: {t}" for t in _lock_lines(server.log_tail(10**9))]
    return BackfillReport(runs, sorted(steps, key=lambda s: s.start), lock_errors, failures)


def read_rows(project: BackfillProject | Path, table: str = "raw_tweets", timeout: float = 120):
    """The table's rows without ``collected_at`` (it differs between two collections), sorted.

    ``project``: a project (its storage backend: the DuckDB file, or the DuckLake its environment
    names) or a DuckDB file's path."""
    from replyassets.core import db

    if isinstance(project, BackfillProject) and project.env.get("REPLYASSETS_STORAGE_BACKEND") == "ducklake":
        target = db.Storage("ducklake", data_path=project.env["REPLYASSETS_DUCKLAKE_DATA_PATH"],
                            catalog_env=db.CATALOG_ENV)
        env = project.env
    else:
        target = project.database if isinstance(project, BackfillProject) else Path(project)
        env = {}
    with _env(env):
        try:
            with db.connect(target, timeout_s=timeout, purpose="scale harness read") as con:
                df = con.execute(f"SELECT * EXCLUDE (collected_at) FROM main.{table}").df()  # fixed table names
        finally:
            if env:
                db.reset()  # the process-wide lake attachment belongs to this project's catalog
    keys = [c for c in ("query", "reply_id", "item_id", "stage") if c in df.columns]
    return df.sort_values(keys).reset_index(drop=True)


def dagster_yaml_with_runs(text: str, max_concurrent_runs: int) -> str:
    """``text`` (a dagster.yaml) with ``concurrency.runs.max_concurrent_runs`` replaced, the rest
    (pools, tag limits, coordinator, storage) kept."""
    doc = yaml.safe_load(text)
    doc.setdefault("concurrency", {}).setdefault("runs", {})["max_concurrent_runs"] = int(max_concurrent_runs)
    return yaml.safe_dump(doc, sort_keys=False)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
