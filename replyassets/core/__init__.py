"""Pure logic. Nothing in this package imports Dagster."""
