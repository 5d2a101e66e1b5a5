"""Plain-Python core of the pipeline: no Dagster, no environment lookups."""
