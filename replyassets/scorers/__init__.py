"""Scorers: language, toxicity, embeddings (no Dagster)."""
