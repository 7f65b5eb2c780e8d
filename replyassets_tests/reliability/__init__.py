"""The reliability and security suite (issue 8): bad input, faults, kills, concurrency, secrets."""
