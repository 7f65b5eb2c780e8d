"""The replyassets code location as a deployment loads it, with the production profile's tweet
source pointed at the loopback Apify server, for daemon-driven backfill tests and
benchmarks/backfill.py.

Everything is ``replyassets.definitions`` (assets, checks, pools, IO manager, sensors) except:

* ``tweet_source``: the production ``TweetSourceResource`` (``kind="apify"``, the token from
  ``APIFY_API_TOKEN``) with ``api_url`` from ``REPLYASSETS_TEST_APIFY_URL``;
* the declarative-automation sensor is stopped (same name and target, default status STOPPED,
  which also keeps Dagster from adding its default one): a collection backfill alone is
  measured, not the ``validated_pairs`` runs automation would add after each partition (the
  production toxicity scorer needs a model download).
"""

from __future__ import annotations

import os

import dagster as dg
from dagster._record import copy

import replyassets.definitions as project
from replyassets.defs.resources import TweetSourceResource

APIFY_URL_ENV = "REPLYASSETS_TEST_APIFY_URL"


def _definitions() -> dg.Definitions:
    project_defs = project.defs
    resources = dict(project_defs.resources or {})
    resources["tweet_source"] = TweetSourceResource(
        kind="apify", apify_token=dg.EnvVar("APIFY_API_TOKEN"), api_url=os.environ[APIFY_URL_ENV]
    )
    sensors = [
        dg.AutomationConditionSensorDefinition(
            s.name, target=dg.AssetSelection.all(include_sources=True), default_status=dg.DefaultSensorStatus.STOPPED
        )
        if isinstance(s, dg.AutomationConditionSensorDefinition)
        else s
        for s in project_defs.sensors or []
    ]
    return copy(project_defs, resources=resources, sensors=sensors)


defs = _definitions()
