"""The code location loads the Dagster 1.13 way: from the defs folder, with no deprecated API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Loads the definitions in a fresh interpreter and lists every warning raised from our code.
_PROBE = r"""
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    # Import every defs module first: load_from_defs_folder itself silences Dagster's warnings.
    import importlib, pkgutil, replyassets.defs as pkg
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
    from replyassets.definitions import defs
    graph = defs.resolve_asset_graph()
    jobs = [j.name for j in defs.resolve_all_job_defs()]
ours = [
    {"category": w.category.__name__, "file": w.filename, "message": str(w.message)[:300]}
    for w in caught
    if "/replyassets/" in w.filename.replace("\\", "/")
]
print(json.dumps({
    "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
    "external": sorted(k.to_user_string() for k in graph.external_asset_keys),
    "sensors": sorted(s.name for s in defs.sensors or []),
    "schedules": sorted(s.name for s in defs.schedules or []),
    "resources": sorted(defs.resources or {}),
    "warnings": ours,
}))
"""


def _probe() -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_definitions_come_from_the_defs_folder_without_deprecated_api():
    found = _probe()
    assert {"raw_tweets", "raw_tweet_rejections", "validated_pairs", "deduped_pairs", "curated_set",
            "base_model", "lora_adapter", "eval_report", "leaderboard", "champion",
            "champion_export"} <= set(found["assets"])
    assert found["external"] == ["experiment_specs", "query_inputs", "review_decisions"]
    assert {"observe_sources", "query_partitions_sensor", "experiment_partitions_sensor",
            "replyassets_automation"} <= set(found["sensors"])
    assert found["schedules"] == ["weekly_recollection", "weekly_snapshot_expiry"]
    assert {"io_manager", "tweet_source", "language", "toxicity", "embedder", "launcher", "judge"} <= set(found["resources"])
    deprecated = [w for w in found["warnings"] if w["category"] in ("DeprecationWarning", "SupersessionWarning")]
    assert deprecated == [], deprecated


def test_automation_targets_the_observed_sources_too():
    import dagster as dg

    from replyassets.definitions import defs

    sensor = next(s for s in defs.sensors if s.name == "replyassets_automation")
    graph = defs.resolve_asset_graph()
    targeted = sensor.asset_selection.resolve(graph, allow_missing=True)
    assert {dg.AssetKey("review_decisions"), dg.AssetKey("query_inputs"), dg.AssetKey("experiment_specs")} <= targeted


@pytest.mark.slow
def test_dg_check_defs_passes(tmp_path):
    dg_cli = Path(sys.executable).parent / "dg"
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path),
           "DAGSTER_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([str(dg_cli), "check", "defs"], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr


# Imports the defs package in a fresh interpreter (its warning filters installed), then raises
# the beta warnings of the three beta APIs the project uses on purpose, another API's beta warning
# and a plain UserWarning, recording what gets through.
_BETA_PROBE = r"""
import json, warnings
import dagster as dg
import replyassets.defs
from dagster._annotations import beta
from dagster_pandera import pandera_schema_to_dagster_type
from replyassets.schemas import CuratedSet

@beta
def some_other_beta_api():
    return 1

with warnings.catch_warnings(record=True) as caught:   # keeps the filters the import installed
    pandera_schema_to_dagster_type(CuratedSet)
    dg.AssetSelection.all(include_sources=True)
    dg.Output(1, data_version=dg.DataVersion("v"))
    some_other_beta_api()
    warnings.warn("an ordinary warning", UserWarning)
print(json.dumps([[w.category.__name__, str(w.message)[:120]] for w in caught]))
"""


@pytest.mark.slow  # over 3 s (make check is the fast tier)
def test_only_the_beta_apis_used_on_purpose_are_silenced():
    proc = subprocess.run([sys.executable, "-c", _BETA_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    caught = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [c for c, _ in caught] == ["BetaWarning", "UserWarning"], caught
    assert "some_other_beta_api" in caught[0][1]
