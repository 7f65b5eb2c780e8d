"""Settings that keep the system tests' whole-graph runs short without changing what they test.

The tests that run ``make demo``'s path end to end (staleness, the browser reports, the
experiment backfill) check orchestration, lineage, staleness and what the pages show, not how
well an adapter trains: a few optimizer steps and short generations exercise the same code
(Pipes launch, the loss curve, every judge and statistic) at a fraction of the local profile's
~120 steps and 48-token replies. Layered over the profile with ``REPLYASSETS_SETTINGS``,
exactly as a user's own settings file is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FAST: dict[str, dict[str, Any]] = {
    "training": {"max_steps": 8, "eval_steps": 4},
    "evaluation": {"max_new_tokens": 16, "bootstrap_resamples": 500},
}


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Section-wise merge: a later layer's keys win inside each section."""
    out: dict[str, Any] = {}
    for layer in layers:
        for section, values in layer.items():
            if isinstance(values, dict) and isinstance(out.get(section), dict):
                out[section] = {**out[section], **values}
            else:
                out[section] = values
    return out


def write_settings(path: Path, *layers: dict[str, Any]) -> Path:
    """``FAST`` under the given layers, written as a settings file; returns its path."""
    path.write_text(yaml.safe_dump(merged(FAST, *layers), sort_keys=False))
    return path
