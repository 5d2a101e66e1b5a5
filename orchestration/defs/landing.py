"""Landing: raw exports arrive here, from the audience generator or from your own folder."""

import dagster as dg
import pandas as pd

from ml.landing.hillstrom import install_hillstrom
from ml.landing.contract import LANDING_TABLES, check_landing_folder, clip_long_text
from ml.simulator import AudienceConfig, DirtyDataConfig, generate_landing
from orchestration.gx_checks import gx_check_spec, run_gx_check
from orchestration.resources import VENDORED_HILLSTROM, PipelineSettings

OWNERS = ["team:data-engineering"]


def landing_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", table])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            landing_key(table),
            description=f"Raw `{table}.parquet` export (docs/data_contract.md).",
            group_name="landing",
            kinds={"parquet"},
            owners=OWNERS,
        )
        for table in LANDING_TABLES
    ],
    check_specs=[gx_check_spec(landing_key(table), table) for table in LANDING_TABLES],
    name="landing_exports",
)
def landing_exports(context: dg.AssetExecutionContext, settings: PipelineSettings):
    """Generates the synthetic audience (dirty by default), or checks the user's folder."""
    user_folder = settings.user_landing_dir()
    generation: dict = {}
    if user_folder is None:
        config = AudienceConfig(
            n_people=settings.audience_size,
            days=settings.audience_days,
            seed=settings.audience_seed,
            dirty=DirtyDataConfig() if settings.dirty_data else DirtyDataConfig.clean(),
        )
        summary = generate_landing(
            config, settings.landing_path(), settings.simulator_path(), progress=True
        )
        generation = {
            "source": "synthetic audience generator",
            "people": summary.n_people,
            "generation_seconds": round(summary.seconds, 2),
            "corrupted_rows": dict(summary.corrupted_rows),
        }
        context.log.info(f"Generated the synthetic audience: {generation}")
    row_counts = check_landing_folder(settings.landing_path())
    docs_dir = settings.reports_path() / "data_docs"
    for table in LANDING_TABLES:
        path = settings.landing_path() / f"{table}.parquet"
        yield dg.MaterializeResult(
            asset_key=landing_key(table),
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "dagster/row_count": row_counts[table],
                "source": "user folder" if user_folder else "synthetic audience generator",
                **({"corrupted_rows_injected": generation["corrupted_rows"].get(f"{table}.parquet", {})}
                   if generation else {}),
            },
        )
        yield run_gx_check(
            clip_long_text(pd.read_parquet(path), table), table=table, asset_key=landing_key(table), docs_dir=docs_dir
        )


@dg.asset(
    key=landing_key("hillstrom"),
    description=(
        "Kevin Hillstrom's MineThatData e-mail experiment (64,000 customers), vendored in "
        "data/hillstrom/ and copied to the landing folder after its SHA-256 is verified."
    ),
    group_name="landing",
    kinds={"csv"},
    owners=OWNERS,
    check_specs=[gx_check_spec(landing_key("hillstrom"), "hillstrom")],
)
def hillstrom_export(context: dg.AssetExecutionContext, settings: PipelineSettings):
    installed = install_hillstrom(VENDORED_HILLSTROM, settings.landing_path())
    frame = pd.read_csv(installed)
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(installed)),
            "dagster/row_count": len(frame),
            "sha256_verified": True,
        }
    )
    yield run_gx_check(frame, table="hillstrom", asset_key=landing_key("hillstrom"), docs_dir=None)
