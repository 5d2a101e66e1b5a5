"""Dagster glue: the only package that imports dagster."""
