"""Experiments: design and assignment, outcomes, statistics."""
