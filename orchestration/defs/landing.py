"""Landing: raw exports arrive here, from the audience generator or from your own folder."""

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from datetime import datetime, timedelta

from ml.landing.categories import CATEGORY_MAPPING_FILE, category_mapping_csv
from ml.landing.hillstrom import install_hillstrom
from ml.landing.contract import LANDING_TABLES, check_landing_folder, landing_file_for_suite
from ml.landing.preflight import preflight
from ml.propensity.specs import PURCHASE
from ml.propensity.training import history_days_needed_by_model
from ml.simulator import AudienceConfig, DirtyDataConfig, generate_landing
from ml.simulator.world import World, drop_folder
from orchestration.partitions import daily_partitions, one_run_per_day, partition_day
from orchestration.gx_checks import gx_check_spec, run_gx_check
from orchestration.resources import VENDORED_HILLSTROM, PipelineSettings

OWNERS = ["team:data-engineering"]
# The asset of the optional category mapping file (dbt source catalog.category_mapping).
CATEGORY_MAPPING_ASSET = "category_mapping"


def landing_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", table])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            landing_key(table),
            description=(
                f"Raw `{table}.parquet`: the initial export on the loop's first day, then one daily "
                "drop per day (docs/data_contract.md)."
            ),
            group_name="landing",
            kinds={"parquet"},
            owners=OWNERS,
        )
        for table in LANDING_TABLES
    ]
    + [
        dg.AssetSpec(
            landing_key(CATEGORY_MAPPING_ASSET),
            description=(
                f"The optional `{CATEGORY_MAPPING_FILE}` (category,model_category): which product categories fill "
                "the models' category slots; without it, the top categories by revenue (docs/data_contract.md, "
                "'Product categories'). Validated by the landing preflight."
            ),
            group_name="landing",
            kinds={"csv"},
            owners=OWNERS,
        )
    ],
    check_specs=[gx_check_spec(landing_key(table), table) for table in LANDING_TABLES],
    name="landing_exports",
    partitions_def=daily_partitions,
    backfill_policy=one_run_per_day,
)
def landing_exports(context: dg.AssetExecutionContext, settings: PipelineSettings):
    """The day's exports. With your own folder: checks the initial export (first day) or the
    day's drop. Without one, plays the outside world: the simulator generates the history
    (first day), then each live day hands the ESP the sends the pipeline planned for that
    day (`outbox/<day>/sends.parquet`) and lands what people did as the day's drop."""
    day = partition_day(context)
    # Without a manifest, your own folder's cut is read from its timestamps: once per step.
    cut, as_of_from = settings.initial_export_cut()
    first_day = settings.export_day(cut)
    landing = settings.landing_path()
    source = "user folder" if settings.user_landing_dir() else "simulated world"
    facts: dict = {}
    if day < first_day:
        raise dg.Failure(
            f"{day} is before the initial export, which ends on {first_day}. Fix: run the loop from "
            f"{first_day} on (the initial export's day), then day by day."
        )
    if settings.user_landing_dir() is None:
        facts = simulate_day(context, settings, day, first_day)
    elif day > first_day and not drop_folder(landing, day).is_dir():
        raise dg.Failure(
            f"No drop for {day}: {drop_folder(landing, day)} does not exist. Fix: put that day's export "
            f"files there (docs/data_contract.md, 'Daily drops'), or run only the days you have."
        )
    if settings.user_landing_dir() is None:
        row_counts = check_landing_folder(landing)
    else:
        # Your own folder: every problem at once (files, columns, types, timestamp formats,
        # the manifest), before anything reads a row.
        report = preflight(landing, history_days_needed_by_model(), required_model=PURCHASE.key)
        if not report.ok:
            raise dg.Failure(report.message(landing))
        for note in report.notes:
            context.log.info(note)
        row_counts = report.row_counts
    folder = landing if day == first_day else drop_folder(landing, day)
    docs = settings.data_docs_site()
    for table in LANDING_TABLES:
        path = folder / f"{table}.parquet"
        rows = pq.read_metadata(path).num_rows if path.exists() else 0
        yield dg.MaterializeResult(
            asset_key=landing_key(table),
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "dagster/row_count": rows,
                "rows_landed_so_far": row_counts[table],
                "batch": "initial export" if day == first_day else f"daily drop {day}",
                "source": source,
                "initial_export_cut_from": as_of_from,
                **facts.get(table, {}),
            },
        )
        if day > first_day and rows == 0:
            # A daily drop holds only what changed; the suites' row-count expectations are
            # about whole exports, so an empty or absent file in a drop is not validated.
            yield dg.AssetCheckResult(
                check_name=f"gx_{table}", asset_key=landing_key(table), passed=True,
                metadata={"rows": 0, "validated": False, "reason": f"no {table} rows in the daily drop of {day}"},
            )
            continue
        yield run_gx_check(
            landing_file_for_suite(path, table, settings.duckdb_settings()),
            table=table, asset_key=landing_key(table), docs=docs, log=context.log, run_id=context.run_id,
        )
    mapping = category_mapping_csv(landing)
    yield dg.MaterializeResult(
        asset_key=landing_key(CATEGORY_MAPPING_ASSET),
        metadata={
            "path": dg.MetadataValue.path(str(mapping)),
            "present": mapping.parent == landing,
            "dagster/row_count": len(pd.read_csv(mapping, dtype=str)),
            "slots_from": "the mapping file" if mapping.parent == landing else "the top categories by revenue",
        },
    )
    docs.build()


def simulate_day(context: dg.AssetExecutionContext, settings: PipelineSettings, day, first_day) -> dict:
    """The simulated world's side of the day; returns per-table metadata."""
    if day == first_day:
        config = AudienceConfig(
            n_people=settings.audience_size,
            days=settings.audience_days,
            seed=settings.audience_seed,
            end=datetime.fromisoformat(settings.audience_end),
            dirty=DirtyDataConfig() if settings.dirty_data else DirtyDataConfig.clean(),
        )
        summary = generate_landing(config, settings.landing_path(), settings.simulator_path(), progress=True)
        context.log.info(
            f"Generated the history of {summary.n_people} people in {summary.seconds:.1f} s (a new world: "
            "earlier live days were cleared)."
        )
        return {
            f"{name.removesuffix('.parquet')}": {"corrupted_rows_injected": kinds}
            for name, kinds in summary.corrupted_rows.items()
        }
    outbox = settings.outbox_path(day)
    if not outbox.exists():
        raise dg.Failure(
            f"No sends were planned for {day} ({outbox} is missing). Fix: run the previous day's partition "
            f"({day - timedelta(days=1)}) first: it plans the sends for {day}."
        )
    drop = World(settings.simulator_path()).step(day, pd.read_parquet(outbox), settings.landing_path())
    context.log.info(
        f"Live day {drop.live_day} ({day}): {drop.planned} planned sends handed to the ESP, "
        f"{drop.skipped_by_esp} skipped by the ESP's own suppression; drop rows {drop.rows}"
        + ("; the scripted shift is active" if drop.shift_active else "")
    )
    return {}


@dg.asset(
    key=landing_key("hillstrom"),
    description=(
        "Kevin Hillstrom's MineThatData e-mail experiment (64,000 customers), vendored in "
        "data/hillstrom/ and copied to the state folder's reference data (never to the landing "
        "folder, which is only read) after its SHA-256 is verified."
    ),
    group_name="landing",
    kinds={"csv"},
    owners=OWNERS,
    check_specs=[gx_check_spec(landing_key("hillstrom"), "hillstrom")],
)
def hillstrom_export(context: dg.AssetExecutionContext, settings: PipelineSettings):
    installed = install_hillstrom(VENDORED_HILLSTROM, settings.reference_data_path())
    frame = pd.read_csv(installed)
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(installed)),
            "dagster/row_count": len(frame),
            "sha256_verified": True,
        }
    )
    docs = settings.data_docs_site()  # every suite reaches Data Docs, Hillstrom's too
    yield run_gx_check(frame, table="hillstrom", asset_key=landing_key("hillstrom"), docs=docs, log=context.log, run_id=context.run_id)
    docs.build()
