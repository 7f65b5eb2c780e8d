"""Dagster wiring, one module per stage."""

import warnings

import dagster as dg

# dagster-pandera's type conversion is marked beta; we pin the version and test it.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
