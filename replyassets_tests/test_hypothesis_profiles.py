"""The hypothesis profiles: derandomized "ci" by default, "fuzz" on request."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import settings

from replyassets.settings import PROJECT_ROOT
from replyassets_tests import hypothesis_profiles as hp

PROBE = (
    "from replyassets_tests import hypothesis_profiles as hp; from hypothesis import settings; "
    "name = hp.register(); s = settings.default; "
    "print(name, s.derandomize, s.database is None, s.deadline, s.print_blob, hp.examples(10))"
)


def _probe(profile: str | None, ci_env: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if k not in (hp.PROFILE_ENV, "CI")}
    if ci_env:
        env["CI"] = "true"  # hypothesis changes its own defaults where CI is set
    if profile is not None:
        env[hp.PROFILE_ENV] = profile
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120,
                       check=False, cwd=PROJECT_ROOT)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_this_run_uses_the_profile_the_environment_names():
    s = settings.default
    if hp.profile_name() == "ci":
        assert s.derandomize and s.database is None and s.deadline is None and s.print_blob
        assert hp.examples(10) == 10
    else:
        assert not s.derandomize and hp.examples(10) == 10 * hp.FUZZ_FACTOR


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_ci_is_the_default_and_fuzz_is_opt_in():
    assert _probe(None) == "ci True True None True 10"
    assert _probe("ci") == "ci True True None True 10"
    for ci_env in (False, True):
        assert _probe(None, ci_env) == "ci True True None True 10"
        assert _probe("fuzz", ci_env) == f"fuzz False False None True {10 * hp.FUZZ_FACTOR}"
