"""Entry point for `dagster dev` / the webserver: every definition lives in `defs/`."""

import warnings
from pathlib import Path

import dagster as dg

from orchestration.resources import code_version


def with_code_version(spec: dg.AssetSpec, version: str) -> dg.AssetSpec:
    """A Python asset's code version is the git commit of the code that builds it; dbt models
    keep the checksum of their SQL that dagster-dbt gives them."""
    return spec if spec.code_version else spec.replace_attributes(code_version=version)


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    version = code_version()
    with warnings.catch_warnings():
        # A public Definitions method marked preview in Dagster 1.13; its warning would be
        # logged at every load of the code server.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return loaded.map_asset_specs(func=lambda spec: with_code_version(spec, version))
