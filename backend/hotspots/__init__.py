"""Overdose-hotspot detection: space-time permutation scan and surge detectors."""
