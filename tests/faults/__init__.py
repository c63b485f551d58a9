"""Faults of the network and of the database, with real processes (issue 16)."""
