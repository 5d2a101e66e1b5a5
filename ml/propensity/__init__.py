"""Propensity models: the feature contract, training, registry, scoring and drift."""
