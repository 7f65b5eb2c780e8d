"""The one ``Definitions`` of the replyassets code location.

Every module of ``replyassets/defs`` is loaded with ``load_from_defs_folder`` (``[tool.dg]``
in ``pyproject.toml`` names the folder): assets, checks, observed sources, sensors,
schedules and jobs are found where they are defined, and ``defs/resources.py`` contributes
the resources of the active profile (``REPLYASSETS_PROFILE``).
"""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).resolve().parent)
