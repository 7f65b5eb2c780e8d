"""Figures the reliability tests count themselves; ``conftest.py`` prints and saves them.

Tests call :func:`add` with what they actually tried or measured, *before* asserting on it
(``add("rows_lost", lost); assert lost == 0``), so a failure still shows in the figures.
"""

from __future__ import annotations

FIGURE_NAMES: tuple[str, ...] = (
    "inputs_tried",
    "faults_injected",
    "runs_killed",
    "rows_lost",
    "rows_duplicated",
    "secrets_leaked",
)

FIGURES: dict[str, int] = {name: 0 for name in FIGURE_NAMES}


def add(name: str, n: int = 1) -> None:
    if name not in FIGURES:
        raise KeyError(f"unknown reliability figure {name!r}; one of {FIGURE_NAMES}")
    FIGURES[name] += int(n)


def merge(other: dict[str, int]) -> None:
    for name in FIGURE_NAMES:
        FIGURES[name] += int(other.get(name, 0))


def summary_line(figures: dict[str, int] | None = None) -> str:
    f = figures or FIGURES
    return "reliability: " + ", ".join(f"{name.replace('_', ' ')} {f[name]}" for name in FIGURE_NAMES)
