"""Hypothesis profiles: one result per commit in CI, a randomized search on demand.

* ``ci`` (the default): ``derandomize=True`` (the examples are a function of the test, so
  ``make test`` gives the same result for the same commit), no example database, no
  deadline, and ``print_blob=True`` so a failure prints the blob that reproduces it.
* ``fuzz`` (``HYPOTHESIS_PROFILE=fuzz``, ``make fuzz``): random seeds, the local example
  database (``.hypothesis/``, git-ignored) and :data:`FUZZ_FACTOR` times the examples.

Tests that set their own ``max_examples`` wrap it in :func:`examples`, so ``fuzz`` scales
them too. Every failure fuzzing finds is added to its test as an ``@example(...)``: the
``ci`` profile then checks it on every commit.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE_ENV = "HYPOTHESIS_PROFILE"
FUZZ_FACTOR = 20
# Named explicitly: a new profile inherits the current default, and where the ``CI``
# variable is set hypothesis's own default has no database.
EXAMPLE_DB = Path(__file__).resolve().parents[1] / ".hypothesis" / "examples"


def profile_name() -> str:
    return os.environ.get(PROFILE_ENV, "ci").strip() or "ci"


def register() -> str:
    """Register ``ci`` and ``fuzz`` and load the one ``HYPOTHESIS_PROFILE`` names (``ci``)."""
    settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
    settings.register_profile("fuzz", derandomize=False, deadline=None, print_blob=True,
                              database=DirectoryBasedExampleDatabase(EXAMPLE_DB),
                              max_examples=100 * FUZZ_FACTOR)
    name = profile_name()
    settings.load_profile(name)  # an unknown name raises InvalidArgument: no silent fallback
    return name


def examples(n: int) -> int:
    """A test's own ``max_examples``: ``n`` under ``ci``, ``n * FUZZ_FACTOR`` under ``fuzz``."""
    return n * FUZZ_FACTOR if profile_name() == "fuzz" else n
