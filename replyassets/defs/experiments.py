"""Experiment partitions: one per named recipe of ``config/experiments.yaml``.

``lora_adapter`` and ``eval_report`` are partitioned by experiment. The partitions follow the
file as the query partitions follow the queries file: ``experiment_partitions_sensor`` (and
``make demo``) adds a partition for each new experiment; a partition whose experiment left the
file is reported, never deleted (its adapters and reports stay). Nothing trains by itself.
"""

from collections.abc import Callable

import dagster as dg

from replyassets.defs.partitions import EXPERIMENT_PARTITIONS
from replyassets.defs.settings_access import settings
from replyassets.experiments import Experiment, load_experiments
from replyassets.settings import EvaluationSettings


def experiments() -> list[Experiment]:
    s = settings()
    return load_experiments(s.experiments_path, s)


def experiment(name: str) -> Experiment:
    for exp in experiments():
        if exp.name == name:
            return exp
    raise dg.Failure(
        f"experiment {name!r} is a partition but is not in {settings().experiments_path}; "
        "add it back to the experiments file or delete the partition"
    )


def evaluation_settings_for(base: EvaluationSettings) -> Callable[[str], EvaluationSettings]:
    """``name -> the evaluation settings that experiment is judged by`` (``base`` with its
    overrides; ``base`` for a partition no longer in the experiments file)."""
    by_name = {exp.name: exp for exp in experiments()}
    return lambda name: by_name[name].evaluation_settings(base) if name in by_name else base


def sync_experiment_partitions(instance: dg.DagsterInstance) -> tuple[list[str], list[str]]:
    """Add a partition for every experiment of the file. Returns (added, orphaned)."""
    names = [e.name for e in experiments()]
    existing = set(instance.get_dynamic_partitions(EXPERIMENT_PARTITIONS.name))
    added = [n for n in names if n not in existing]
    if added:
        instance.add_dynamic_partitions(EXPERIMENT_PARTITIONS.name, added)
    return added, sorted(existing - set(names))


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers a partition of lora_adapter/eval_report for each new experiment in config/experiments.yaml.",
)
def experiment_partitions_sensor(context: dg.SensorEvaluationContext):
    try:
        names = [e.name for e in experiments()]
    except Exception as exc:  # noqa: BLE001 - a broken experiments file must not crash the daemon
        return dg.SkipReason(f"experiments file unreadable: {exc}")
    existing = set(context.instance.get_dynamic_partitions(EXPERIMENT_PARTITIONS.name))
    new = [n for n in names if n not in existing]
    if not new:
        return dg.SkipReason(f"{len(names)} experiments, all registered")
    return dg.SensorResult(dynamic_partitions_requests=[EXPERIMENT_PARTITIONS.build_add_request(new)])
