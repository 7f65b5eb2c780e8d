"""`make ui` starts quietly: no warning about the instance configuration.

`dg dev` warns "Found a dagster instance configuration value (dagster.yaml) in the current
folder..." when it starts beside a dagster.yaml that is not DAGSTER_HOME's, which the repository's
top-level template is. The test runs the Makefile's own `ui` recipe (install left out: `-o
install`) against a temporary project's DAGSTER_HOME on a free port, waits until the code
location is loaded, stops it and reads everything it printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from replyassets_tests.ui.conftest import (
    ROOT,
    DagsterDev,
    _stop_group,
    _wait_until_loaded,
    build_ui_project,
    free_port,
    write_small_queries,
)

pytestmark = pytest.mark.slow

INSTANCE_WARNING = "Found a dagster instance configuration value"
WARNING_LINE = re.compile(r" - (WARNING|ERROR) - ")


def test_make_ui_starts_without_instance_configuration_warnings(tmp_path):
    assert shutil.which("make"), "make is needed to run the Makefile's ui recipe"
    project = build_ui_project(tmp_path, write_small_queries(tmp_path / "queries.yaml"))
    port = free_port()
    log_path = tmp_path / "make_ui.log"
    env = {**os.environ, **project.env}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["make", "-s", "-o", "install", "ui", f"DAGSTER_HOME={project.home}", f"UI_PORT={port}"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_until_loaded(DagsterDev(project, port, proc, log_path), 300)
        finally:
            _stop_group(proc)
    output = log_path.read_text(errors="replace")
    assert "Serving dagster-webserver" in output, output[-3000:]
    assert INSTANCE_WARNING not in output, output[-3000:]
    warnings = [ln for ln in output.splitlines() if WARNING_LINE.search(ln)]
    assert not warnings, warnings
