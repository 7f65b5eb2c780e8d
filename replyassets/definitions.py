"""The one ``Definitions`` of the replyassets code location.

Assets, checks, resources (chosen by ``REPLYASSETS_PROFILE``) and sensors come from the
per-stage modules in ``replyassets/defs``.
"""

from __future__ import annotations

import dagster as dg

from replyassets.defs import collect
from replyassets.defs.resources import resources_for_profile

defs = dg.Definitions(
    assets=[collect.raw_tweets],
    sensors=[collect.query_partitions_sensor],
    resources=resources_for_profile(),
)
