"""Scheduled computations: read a window -> pure ``stats`` -> write results. Safe to re-run."""
