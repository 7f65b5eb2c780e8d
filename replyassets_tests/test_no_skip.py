"""The suite's own rule: a skipped test fails, with its reason (replyassets_tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_a_skip_is_reported_as_a_failure_with_its_reason(tmp_path):
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\ndef test_needs_a_browser():\n    pytest.skip('chromium is not installed')\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "replyassets_tests.conftest",
         "--rootdir", str(tmp_path), "-c", "/dev/null", "--basetemp", str(tmp_path / "inner"), str(tmp_path / "test_skips.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout and "chromium is not installed" in run.stdout, run.stdout


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_a_file_left_beside_tracked_files_fails_the_session(tmp_path):
    """The suite's other rule: a test that leaves something `git status` shows fails the run."""
    from replyassets.settings import PROJECT_ROOT

    leak = PROJECT_ROOT / "data" / "sample" / f"zz-leak-{tmp_path.name}.json"
    (tmp_path / "test_leaks.py").write_text(
        f"from pathlib import Path\n\ndef test_writes_beside_the_sample():\n    Path({str(leak)!r}).write_text('{{}}')\n"
    )
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "replyassets_tests.conftest",
             "--rootdir", str(tmp_path), "-c", "/dev/null", "--basetemp", str(tmp_path / "inner"), str(tmp_path / "test_leaks.py")],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )
    finally:
        leak.unlink(missing_ok=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout and "left files that git status shows" in run.stdout, run.stdout
    assert leak.name in run.stdout
