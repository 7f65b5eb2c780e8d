"""Shared fixtures. Every test works in its own temporary folders, never in ./data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Hypothesis: the derandomized "ci" profile unless HYPOTHESIS_PROFILE=fuzz (hypothesis_profiles.py).
# Loaded here, before any test module builds its @settings (they inherit from the profile).
from replyassets_tests import hypothesis_profiles

hypothesis_profiles.register()


MODELS_ENV = "REPLYASSETS_MODELS_DIR"


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        import tempfile

        config._replyassets_units_dir = tempfile.mkdtemp(prefix="replyassets-xdist-units-")
    _models_folder(config)


def _models_folder(config):
    """One models folder for the whole session (and every xdist worker and subprocess, through the
    environment): the tiny base model and the embedding exports are content-addressed, so a test
    that needs them builds them once per session instead of once per data folder."""
    if hasattr(config, "workerinput") or os.environ.get(MODELS_ENV):
        return  # an xdist worker inherits the controller's folder; a developer's own folder is kept
    import tempfile

    os.environ[MODELS_ENV] = tempfile.mkdtemp(prefix="replyassets-test-models-")
    config._replyassets_models_dir = os.environ[MODELS_ENV]


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(getattr(config, "_replyassets_units_dir", "/nonexistent"), ignore_errors=True)
    folder = getattr(config, "_replyassets_models_dir", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(MODELS_ENV, None)


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """Point the project's data dir and DuckDB file at a temporary folder."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("REPLYASSETS_DATA_DIR", str(data))
    monkeypatch.setenv("REPLYASSETS_DATABASE", str(data / "replyassets.duckdb"))
    monkeypatch.setenv("REPLYASSETS_PROFILE", "local")
    from replyassets import settings

    settings.get_settings.cache_clear()
    yield data
    settings.get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """One real PostgreSQL server for the session (replyassets_tests/postgres.py); each test that
    needs isolation creates its own database with ``postgres_server.create_database(name)``."""
    import shutil
    import tempfile

    from replyassets_tests.postgres import PostgresServer

    # Its own folder under /tmp, not under pytest's basetemp: the server runs as the `postgres`
    # user, and any pytest session started meanwhile (a nested one in a test, a developer's)
    # resets pytest's root folder to mode 0700, which would lock the server out of its data.
    root = tempfile.mkdtemp(prefix="replyassets-pg-")
    server = PostgresServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def lake_storage(postgres_server, tmp_path, monkeypatch):
    """A fresh DuckLake (its own PostgreSQL catalog database and data folder) as a
    ``replyassets.core.db.Storage``; the catalog's libpq string is in the environment variable
    the ducklake backend reads."""
    import uuid

    from replyassets.core import db

    dsn = postgres_server.create_database(f"lake_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv(db.CATALOG_ENV, dsn)
    yield db.Storage("ducklake", data_path=str(tmp_path / "lake"))
    db.reset()


@pytest.fixture(params=["duckdb", "ducklake"])
def any_storage(request, tmp_path):
    """Each store test once per backend: a DuckDB file, then a DuckLake."""
    from replyassets.core import db

    if request.param == "duckdb":
        return db.Storage("duckdb", database=tmp_path / "db" / "replyassets.duckdb")
    return request.getfixturevalue("lake_storage")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Nothing skips silently: a skipped test is reported as failed, with the skip's reason
    (a missing browser, package or server is a broken test machine, not a pass)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"this suite allows no skipped test: {reason}"


# --- Scheduling under xdist (`make test`, `make check`: `-n N --dist loadfile --no-loadscope-reorder`).
# A work unit is a test module (its module fixtures built once on one worker) unless its tests
# name an ``xdist_group``: the modules sharing ``ui/conftest.sample_demo`` (one `make demo` of the
# sample) name the same group and run on one worker after one build. A module whose long tests
# share nothing says ``XDIST_EACH_TEST = True`` (the benchmarks): each test is its own unit.
# xdist's own ``--dist loadgroup`` reads the groups from a nodeid suffix that pytest 9.2 no longer
# keeps (pytest-xdist issue 1386: it grouped nothing), so the workers write each test's unit to a
# file the controller's scheduler (``GroupScheduling`` below) reads.
#
# The units whose tests take longest, longest first (measured on a fresh clone's `make test`: its
# slowest-25 list and test-artifacts/junit.xml); units go out in collection order, so these start
# at once instead of closing the run. A scheduling hint only: a stale entry costs minutes, never
# a result.
LONGEST_FIRST = (
    "replyassets_tests.defs.test_staleness",
    "sample_demo",  # ui/conftest.sample_demo: one `make demo` of the sample, then the pages
    "replyassets_tests.reliability.test_interrupted",
    "replyassets_tests.ui.test_experiment_backfill",
    "replyassets_tests.reliability.test_concurrent_backends",
    "replyassets_tests.dedup.test_embedding_backends",
    "replyassets_tests.scale.test_postgres_instance",
    "replyassets_tests.ui.test_browser",
    "replyassets_tests.dedup.test_cascade",
    "replyassets_tests.defs.test_lake_pipeline",
    "replyassets_tests.training.test_preference",
    "replyassets_tests.defs.test_real_shapes_demo",
)
_UNITS_KEY = "replyassets_xdist_units"


def _unit(item) -> str:
    marks = [m.args[0] for m in item.iter_markers("xdist_group") if m.args]
    if marks:
        return marks[0]
    if getattr(item.module, "XDIST_EACH_TEST", False):
        return item.nodeid
    return item.module.__name__


def pytest_collection_modifyitems(session, config, items):
    """Order the tests as the work units go out: ``LONGEST_FIRST``, then the other modules with
    slow tests, then the rest (a stable sort); on an xdist worker, write each test's unit for the
    controller's scheduler."""
    import json

    strays = sorted({item.module.__name__ for item in items
                     if "sample_demo" in item.fixturenames and _unit(item) != "sample_demo"})
    if strays:
        raise pytest.UsageError(f"{strays} use the sample_demo fixture without its xdist group "
                                "(ui/conftest.SAMPLE_DEMO_GROUP): each would build the sample demo again")
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}

    def rank(item) -> tuple[int, bool]:
        names = {item.module.__name__, _unit(item)}
        hinted = [LONGEST_FIRST.index(n) for n in names if n in LONGEST_FIRST]
        return (min(hinted), False) if hinted else (len(LONGEST_FIRST), item.module.__name__ not in slow_modules)

    items.sort(key=rank)
    target = getattr(config, "workerinput", {}).get(_UNITS_KEY)
    if target:
        Path(target).write_text(json.dumps({item.nodeid: _unit(item) for item in items}))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Controller: each xdist worker writes its tests' work units to its own file."""
    folder = node.config._replyassets_units_dir
    node.workerinput[_UNITS_KEY] = str(Path(folder) / f"{node.gateway.id}.json")


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the work units above (xdist's own scheduler otherwise)."""
    if config.getvalue("dist") != "loadfile":
        return None
    import json

    from xdist.scheduler import LoadScopeScheduling

    folder = Path(config._replyassets_units_dir)

    class GroupScheduling(LoadScopeScheduling):
        units: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            # first called once every worker has collected (and so written its file)
            if self.units is None:
                self.units = {}
                for path in sorted(folder.glob("*.json")):
                    self.units.update(json.loads(path.read_text()))
            unit = self.units.get(nodeid)
            if unit is None:
                raise RuntimeError(f"no work unit recorded for {nodeid} in {folder}")
            return unit

    return GroupScheduling(config, log)


def _git_status() -> set[str] | None:
    import subprocess

    from replyassets.settings import PROJECT_ROOT

    try:
        proc = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(proc.stdout.splitlines()) if proc.returncode == 0 else None


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):
        session.config._replyassets_git_status = _git_status()


def pytest_sessionfinish(session, exitstatus):
    """A user's data never lands beside tracked files: the suite fails when it leaves anything
    that `git status` shows and that was not there when it started."""
    before = getattr(session.config, "_replyassets_git_status", None)
    if before is None:
        return
    after = _git_status() or set()
    new = sorted(after - before)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("the suite left files that git status shows:\n  " + "\n  ".join(new), red=True)
        session.exitstatus = 1
