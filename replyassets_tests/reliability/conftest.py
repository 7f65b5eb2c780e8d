"""Reliability suite plumbing: the end-of-session summary of the figures in ``tally``.

At the end of a session that collected this folder, pytest prints one line such as
``reliability: inputs tried 812, faults injected 14, runs killed 3, rows lost 0, ...``
and writes the same figures as JSON to ``test-artifacts/reliability-summary.json`` (and to
the session's pytest base temp dir). Under pytest-xdist the workers' figures are summed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from replyassets_tests.reliability import tally

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SUMMARY_FILE = "reliability-summary.json"


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if _is_worker(config):  # xdist worker: hand the figures to the controller
        config.workeroutput["reliability_figures"] = dict(tally.FIGURES)
        return
    figures = dict(tally.FIGURES)
    payload = json.dumps({"figures": figures, "summary": tally.summary_line(figures)}, indent=2)
    targets = [Path(os.environ.get("REPLYASSETS_TEST_ARTIFACTS", ARTIFACTS))]
    try:
        targets.append(Path(config._tmp_path_factory.getbasetemp()))
    except Exception:  # noqa: BLE001 - no tmp dir was created in this session
        pass
    written = []
    for folder in targets:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / SUMMARY_FILE).write_text(payload + "\n")
            written.append(str(folder / SUMMARY_FILE))
        except OSError:
            continue
    config._reliability_written = written


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    figures = getattr(node, "workeroutput", {}).get("reliability_figures")
    if figures:
        tally.merge(figures)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _is_worker(config):
        return
    terminalreporter.write_sep("=", "reliability summary")
    terminalreporter.write_line(tally.summary_line())
    for path in getattr(config, "_reliability_written", []):
        terminalreporter.write_line(f"figures written to {path}")


# The Dagster fixtures of the wiring tests (temp DAGSTER_HOME, temp DuckDB, resources()).
from replyassets_tests.defs.conftest import dagster_project  # noqa: E402,F401
