"""Shared fixtures. Every test works in its own temporary folders, never in ./data."""

from __future__ import annotations

import os

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
    """One models folder for the whole session (and every xdist worker and subprocess, through the
    environment): the tiny base model and the embedding exports are content-addressed, so a test
    that needs them builds them once per session instead of once per data folder."""
    if hasattr(config, "workerinput") or os.environ.get(MODELS_ENV):
        return  # an xdist worker inherits the controller's folder; a developer's own folder is kept
    import tempfile

    os.environ[MODELS_ENV] = tempfile.mkdtemp(prefix="replyassets-test-models-")
    config._replyassets_models_dir = os.environ[MODELS_ENV]


def pytest_unconfigure(config):
    folder = getattr(config, "_replyassets_models_dir", None)
    if folder:
        import shutil

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


def pytest_collection_modifyitems(session, config, items):
    """Modules with slow tests first (a stable sort): under xdist's ``--dist loadfile`` each
    module runs on one worker, so its module fixtures are built once, and the long ones start at
    once instead of closing the run. (``--dist loadgroup``, which would keep the modules sharing
    ``ui/conftest.sample_demo`` on one worker, groups nothing with pytest 9.2 and xdist 3.8:
    pytest-xdist issue 1386; their ``xdist_group`` marks wait for that fix.)"""
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow_modules)


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
