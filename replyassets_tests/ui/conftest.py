"""A real `dg dev` (webserver + daemon, what `make ui` runs) in a temporary project, for the UI and backfill tests.

`ui_project` builds the project: a temporary DAGSTER_HOME holding a copy of the repository's
dagster.yaml (the "duckdb" pool and the queued run coordinator), a temporary DuckDB file and
data dir, and a small queries file (a subset of config/queries.yaml reading the bundled sample).
Its query partitions are registered before the server starts. `build_ui_project` builds such a
project with another queries file (a test module overriding `ui_project`).

`dagster_ui` starts `dg dev` on a free loopback port in that project, waits until the code
location is loaded, and always stops it at teardown by killing its process group. A test module
may override the `ui_prepare` fixture to put state in place before the server starts.

`sample_demo` is the one project of the session where `make demo` (`python -m replyassets.demo`)
has built the whole graph of the shipped sample (six queries, the default recipe, short
trainings) and one review decision was written after it; `sample_demo_ui` is `dg dev` on it.
The modules that only read what the demo left (the decision pages, in the browser and from the
instance, and the review sensor) share them: once per session and xdist worker, not once per
module. They name one xdist group (``SAMPLE_DEMO_GROUP``): ``make test``'s scheduler
(replyassets_tests/conftest.py) runs them on one worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
# Two small queries (each collects in a few seconds from data/sample): every step of a
# partition costs a Dagster step subprocess, so the backfill stays short on a 2-core machine.
UI_QUERIES = ("startup-advice", "devops-lessons")

# `dagster dev` started from a non-interactive shell inherits SIGINT as ignored and then ignores
# SIGTERM too: reset SIGINT to its default before exec so SIGTERM stops it cleanly.
_EXEC_WRAPPER = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


SAMPLE_DEMO_GROUP = pytest.mark.xdist_group("sample_demo")
SAMPLE_DEMO_TIMEOUT_S = 1500


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_small_queries(path: Path, names: tuple[str, ...] = UI_QUERIES) -> Path:
    import yaml

    entries = yaml.safe_load((ROOT / "config" / "queries.yaml").read_text())["queries"]
    chosen = [e for e in entries if e["name"] in names]
    missing = set(names) - {e["name"] for e in chosen}
    assert not missing, f"queries {sorted(missing)} are not in config/queries.yaml"
    path.write_text(yaml.safe_dump({"queries": chosen}, sort_keys=False))
    return path


@dataclass
class UIProject:
    root: Path
    home: Path
    data: Path
    database: Path
    queries: Path
    partitions: list[str]
    env: dict[str, str] = field(default_factory=dict)
    demo: dict = field(default_factory=dict)  # sample_demo: what `make demo` printed, the review decision

    @contextlib.contextmanager
    def in_process(self):
        """This process pointed at the project (env vars, fresh settings), for dg.materialize."""
        from replyassets import settings as settings_mod

        with pytest.MonkeyPatch.context() as mp:
            for k, v in self.env.items():
                mp.setenv(k, v)
            settings_mod.get_settings.cache_clear()
            try:
                yield
            finally:
                settings_mod.get_settings.cache_clear()
        settings_mod.get_settings.cache_clear()

    def instance(self):
        import dagster as dg
        from dagster._core.instance.ref import InstanceRef

        # The same instance `dg dev` uses: the copied dagster.yaml in the temp DAGSTER_HOME.
        return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(self.home)))


@dataclass
class DagsterDev:
    project: UIProject
    port: int
    proc: subprocess.Popen
    log_path: Path
    started_at: float = field(default_factory=time.time)  # epoch seconds, when `dg dev` was started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"GraphQL HTTP {exc.code}: {exc.read()[:2000]!r}") from None
        if payload.get("errors"):
            raise AssertionError(f"GraphQL errors: {json.dumps(payload['errors'])[:2000]}")
        return payload["data"]

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def build_ui_project(root: Path, queries: Path, extra_env: dict[str, str] | None = None) -> UIProject:
    """A project under ``root`` reading ``queries`` (a file already written there), with its
    query partitions registered. `ui_project` uses the small queries file; a test module may
    build one with another (e.g. the full config/queries.yaml)."""
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    data = root / "data"
    data.mkdir()
    env = {
        "DAGSTER_HOME": str(home),
        "REPLYASSETS_DATA_DIR": str(data),
        "REPLYASSETS_DATABASE": str(data / "replyassets.duckdb"),
        "REPLYASSETS_QUERIES": str(queries),
        "REPLYASSETS_PROFILE": "local",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    project = UIProject(root, home, data, data / "replyassets.duckdb", queries, [], {**env, **(extra_env or {})})
    with project.in_process():
        from replyassets.defs.collect import sync_query_partitions

        instance = project.instance()
        try:
            sync_query_partitions(instance)
            from replyassets.defs.experiments import sync_experiment_partitions

            sync_experiment_partitions(instance)
            project.partitions = sorted(instance.get_dynamic_partitions("query"))
        finally:
            instance.dispose()
    return project


@pytest.fixture(scope="module")
def ui_project(tmp_path_factory) -> UIProject:
    root = tmp_path_factory.mktemp("ui_project")
    project = build_ui_project(root, write_small_queries(root / "queries.yaml"))
    assert project.partitions == sorted(UI_QUERIES), project.partitions
    return project


@pytest.fixture(scope="module")
def ui_prepare(ui_project):
    """State to put in place before the server starts; a test module may override it."""
    return


@contextlib.contextmanager
def run_dagster_dev(project: UIProject, startup_timeout: float = 240):
    dg_cli = Path(sys.executable).parent / "dg"  # `make ui` runs the same command
    assert dg_cli.exists(), f"{dg_cli} is not installed (dagster-dg-cli is a dependency)"
    port = free_port()
    log_path = project.root / f"dagster_dev_{port}.log"
    env = {**os.environ, **project.env}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _EXEC_WRAPPER, str(dg_cli), "dev",
             "-h", "127.0.0.1", "-p", str(port), "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = DagsterDev(project, port, proc, log_path)
        try:
            _wait_until_loaded(server, startup_timeout)
            yield server
        finally:
            _stop_group(proc)


def _wait_until_loaded(server: DagsterDev, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(
                f"dg dev exited with {server.proc.returncode} before serving:\n{server.log_tail()}"
            )
        try:
            version = server.graphql("{ version }", timeout=5)["version"]
            entries = server.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                "locationOrLoadError { __typename ... on PythonError { message } } } } } }",
                timeout=10,
            )["workspaceOrError"]["locationEntries"]
            last = f"version {version}, locations {entries}"
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                assert not errors, f"code location failed to load: {errors}"
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = repr(exc)
        time.sleep(1)
    raise AssertionError(f"dg dev did not serve within {timeout}s ({last}):\n{server.log_tail()}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left after `timeout`."""
    pgid = proc.pid  # start_new_session=True: the group id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not _group_alive(pgid):
            return
        time.sleep(0.25)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def dagster_ui(ui_project, ui_prepare):
    with run_dagster_dev(ui_project) as server:
        yield server


@pytest.fixture(scope="session")
def sample_demo():
    """``build_sample_demo`` in a folder as deep as a clone's data folder (the pages show
    paths: pytest's own temporary root adds some 30 characters no user has), removed after."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="replyassets-demo-"))
    try:
        yield build_sample_demo(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def build_sample_demo(root: Path) -> UIProject:
    """The shipped sample's whole graph built by `python -m replyassets.demo` (what `make demo`
    runs) in a fresh project (the full config/queries.yaml: enough pairs for curated_set's
    blocking checks), then one review decision for a reply of the curated set (the daemon's
    sensor observes it once `sample_demo_ui` runs). ``project.demo`` holds what it printed and
    the decision count."""
    import duckdb

    from replyassets.core.review import ReviewStore
    from replyassets_tests.fast_settings import write_settings

    queries = root / "queries.yaml"
    shutil.copyfile(ROOT / "config" / "queries.yaml", queries)
    # One experiment (the default recipe) keeps the demo short; experiments have their own test.
    experiments = root / "experiments.yaml"
    experiments.write_text("experiments:\n  - name: default\n")
    settings = write_settings(root / "settings.yaml")  # short trainings: the pages are the point
    project = build_ui_project(root, queries, extra_env={"REPLYASSETS_EXPERIMENTS": str(experiments),
                                                         "REPLYASSETS_SETTINGS": str(settings)})
    assert len(project.partitions) == 6, project.partitions
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "replyassets.demo"], cwd=ROOT, env={**os.environ, **project.env},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SAMPLE_DEMO_TIMEOUT_S,
                          check=False)
    took = time.monotonic() - started
    output = proc.stdout + proc.stderr
    (project.root / "demo.log").write_text(output)
    print(f"make demo: {took:.0f}s, rc {proc.returncode}\n{proc.stdout[-1500:]}")
    assert proc.returncode == 0, f"python -m replyassets.demo failed ({proc.returncode}):\n{output[-6000:]}"
    assert "Leaderboard" in proc.stdout and "Champion:" in proc.stdout, proc.stdout[-3000:]

    with duckdb.connect(str(project.database), read_only=True) as con:
        reply_id = con.execute("SELECT reply_id FROM main.curated_set ORDER BY reply_id LIMIT 1").fetchall()[0][0]
    store = ReviewStore(project.database)
    before = len(store.decisions())
    store.record(str(reply_id), "reject", note="browser test: observed by the sensor", reviewer="ui-test")
    decisions = len(store.decisions())
    assert decisions == before + 1, (before, decisions)
    project.demo = {"stdout": proc.stdout, "reply_id": str(reply_id), "decisions": decisions}
    return project


@pytest.fixture(scope="session")
def sample_demo_ui(sample_demo):
    """`dg dev` on ``sample_demo``, for the whole session."""
    with run_dagster_dev(sample_demo) as server:
        yield server


# ----------------------------------------------------------------------------- GraphQL helpers

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status startTime endTime tags { key value } } }
    ... on PythonError { message }
  }
}
"""

RUN_EVENTS_QUERY = """
query Events($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ExecutionStepFailureEvent { error { message } }
        ... on RunFailureEvent { pipelineRunError: error { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""


def runs_with_tag(server: DagsterDev, key: str, value: str) -> list[dict]:
    data = server.graphql(RUNS_QUERY, {"filter": {"tags": [{"key": key, "value": value}]}})
    runs = data["runsOrError"]
    assert runs["__typename"] == "Runs", runs
    return runs["results"]


def run_event_texts(server: DagsterDev, run_id: str) -> list[str]:
    texts, cursor = [], None
    for _ in range(100):
        conn = server.graphql(RUN_EVENTS_QUERY, {"runId": run_id, "cursor": cursor})["logsForRun"]
        assert conn["__typename"] == "EventConnection", conn
        for e in conn["events"]:
            texts.append(e.get("message") or "")
            for k in ("error", "pipelineRunError"):
                if e.get(k):
                    texts.append(e[k].get("message") or "")
        cursor = conn["cursor"]
        if not conn["hasMore"]:
            break
    return texts
