"""Fixtures for tests of the Dagster wiring: a real instance in a temp folder, a temp DuckDB file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def dagster_project(tmp_path, monkeypatch):
    """A temporary DAGSTER_HOME, DuckDB file and data dir; returns a namespace with helpers."""
    import dagster as dg

    from replyassets import settings as settings_mod

    home = tmp_path / "dagster_home"
    home.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("REPLYASSETS_DATA_DIR", str(data))
    monkeypatch.setenv("REPLYASSETS_DATABASE", str(data / "replyassets.duckdb"))
    monkeypatch.setenv("REPLYASSETS_PROFILE", "local")
    settings_mod.get_settings.cache_clear()
    instance = dg.DagsterInstance.local_temp(str(home))

    class Project:
        pass

    p = Project()
    p.home, p.data, p.instance = home, data, instance
    p.database = data / "replyassets.duckdb"

    def resources():
        from replyassets.defs.resources import resources_for_profile

        settings_mod.get_settings.cache_clear()
        return resources_for_profile()

    p.resources = resources
    yield p
    instance.dispose()
    settings_mod.get_settings.cache_clear()


def all_assets_and_checks():
    from replyassets.definitions import defs

    return list(defs.assets or []) + list(defs.asset_checks or [])


def write_queries(path: Path, entries: list[dict]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"queries": entries}))
    return path


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
