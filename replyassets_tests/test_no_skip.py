"""The suite's own rule: a skipped test fails, with its reason (replyassets_tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys


def test_a_skip_is_reported_as_a_failure_with_its_reason(tmp_path):
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\ndef test_needs_a_browser():\n    pytest.skip('chromium is not installed')\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "replyassets_tests.conftest",
         "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path / "test_skips.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout and "chromium is not installed" in run.stdout, run.stdout
