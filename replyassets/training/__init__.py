"""The training program run by the launcher. Imports only dagster_pipes, torch and HF libraries."""
