"""Judges: anthropic and offline (no Dagster)."""
