"""Dagster wiring, one module per stage."""

import re
import warnings

import dagster as dg

# The beta APIs this project uses on purpose (the versions are pinned and the tests cover them):
# dagster-pandera's type conversion, the automation target that includes observed sources, and
# the content-hash data versions the assets' outputs carry.
# Only their beta warnings are silenced; any other warning, another API's beta warning included,
# stays visible.
BETA_APIS_USED = (
    "Function `pandera_schema_to_dagster_type`",
    "Parameter `include_sources` of function `AssetSelection.all`",
    "Parameter `data_version` of initializer `Output.__init__`",
)
for _api in BETA_APIS_USED:
    warnings.filterwarnings("ignore", message=re.escape(_api) + " is currently in beta", category=dg.BetaWarning)
# Asset checks evaluated per partition (a check result names the partition it judged): a preview
# API; only its own warning is silenced.
PREVIEW_APIS_USED = ("Specifying a partitions_def on an AssetCheckSpec",)
for _api in PREVIEW_APIS_USED:
    warnings.filterwarnings("ignore", message=re.escape(_api) + " is currently in preview", category=dg.PreviewWarning)
