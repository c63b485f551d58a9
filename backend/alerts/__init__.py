"""The alert engine: pure rules (rules.py) and the store that opens and resolves alerts."""
