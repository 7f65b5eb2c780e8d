"""Dagster wiring, one module per stage."""
