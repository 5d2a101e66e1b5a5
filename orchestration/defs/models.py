"""The subscriber models (ml/propensity/specs.py): one asset per spec, the gate, the cards,
and the rollback job.

Each model asset trains a challenger, gates it against the champion on the same matured
window, records the decision (MLflow version tags, a `model_promotions` row, an asset
check) and writes the version's model card (the version's description in MLflow, an HTML
artefact on the run, Markdown on the materialisation).
"""


from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from ml.propensity.features import ID_COLUMNS
from ml.propensity.specs import MODEL_SPECS, PURCHASE, ModelSpec, spec_by_key
from ml.tracking import MlflowTarget
from orchestration import tables
from orchestration.links import key_figures_table, mlflow_run_url, mlflow_tags, model_version_url
from orchestration.resources import PipelineSettings, code_version

OWNERS = ["team:ml-engineering"]
GATE_CHECK = "promotion_gate"
BIAS_CHECK = "bias_audit"


def mlflow_target(settings: PipelineSettings, spec: ModelSpec) -> MlflowTarget:
    return MlflowTarget(
        client=settings.mlflow_client(),
        artifact_location=settings.mlflow_artifact_location(),
        experiment_name=spec.experiment_name,
    )


def build_model_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.asset_name,
        deps=["training_examples", "subscriber_profiles"],
        description=(
            f"{spec.target} LightGBM on marts.training_examples (label `{spec.label}`, the latest "
            "labelled weekly cutoff held out). Registered in MLflow as "
            f"`{spec.registered_model_name}` with alias `challenger`; the promotion gate moves "
            "`champion` to it only if it is no worse than the champion on the same window. "
            "Not daily: trained by train_models_job on its own cadence."
        ),
        group_name="models",
        kinds={"lightgbm", "mlflow"},
        owners=OWNERS,
        check_specs=[
            dg.AssetCheckSpec(
                GATE_CHECK,
                asset=spec.asset_name,
                description=(
                    "Passed when the new version became champion (or was the first, by the bootstrap "
                    "rule); failed when the gate refused it. A refusal keeps the old champion scoring."
                ),
            ),
            dg.AssetCheckSpec(
                BIAS_CHECK,
                asset=spec.asset_name,
                description="Selection-rate, TPR and AUC gaps between age bands and genders (fairlearn) within the threshold.",
            ),
        ],
    )
    def _model(context: dg.AssetExecutionContext, settings: PipelineSettings):
        from ml.audit.card_facts import build_model_card_facts, publish_model_card
        from ml.propensity.governance import review_challenger
        from ml.propensity.features import category_slot_params
        from ml.propensity.sampling import sampled_rows_query, training_people_share
        from ml.propensity.training import LabelHasOneClass, NotEnoughHistory, days_of_history, train_model

        warehouse = settings.warehouse()
        columns = ", ".join(dict.fromkeys([*ID_COLUMNS, *spec.features, *spec.segments, spec.label]))
        people = int(warehouse.read(f"select count(distinct subscriber_key) as n from {tables.TRAINING_EXAMPLES}")["n"].iloc[0])
        share = training_people_share(people, settings.max_training_people)
        examples = warehouse.read(sampled_rows_query(tables.TRAINING_EXAMPLES, columns, share))
        if share < 1:
            context.log.info(f"training on a stable {share:.1%} sample of {people:,} people ({len(examples):,} rows)")
        slots = warehouse.read(f"select slot, slot_label, assigned_by from {tables.CATEGORY_SLOTS}")
        target = mlflow_target(settings, spec)
        code = code_version()
        try:
            result = train_model(
                examples,
                spec,
                tracking=target,
                dataset_name=tables.TRAINING_EXAMPLES,
                dataset_source=str(settings.warehouse_path()),
                run_tags=mlflow_tags(context, code),
                feature_params={**category_slot_params(slots), "training_people_share": f"{share:.4f}"},
            )
        except (NotEnoughHistory, LabelHasOneClass) as error:
            if isinstance(error, NotEnoughHistory):
                span = warehouse.read(
                    f"select (select max(as_of) from {tables.WAREHOUSE_AS_OF}) as as_of, least("
                    f"(select min(sent_at) from {tables.FCT_SENDS}), (select min(ordered_at) from {tables.FCT_ORDERS})"
                    ") as first_data_at"
                ).iloc[0]
                message = error.explain(days_of_history(span["first_data_at"], span["as_of"]))
            else:
                message = str(error)
            if spec.key == PURCHASE.key:
                # The loop scores, targets and reads experiments with this model: without it
                # no day can run, so fail, saying the cause and the fix.
                context.log.error(message)
                raise dg.Failure(description=message, metadata={"training_examples": len(examples)}) from error
            # Empty is a state: this model has nothing to learn from this data (no clicks
            # without an ESP export, a history too short for its label); the others train,
            # and the run goes on without it.
            context.log.warning(message)
            yield dg.MaterializeResult(metadata={"trained": False, "status": message, "training_examples": len(examples)})
            for check in (GATE_CHECK, BIAS_CHECK):
                yield dg.AssetCheckResult(
                    check_name=check, passed=True, severity=dg.AssetCheckSeverity.WARN,
                    description=f"nothing to check: {message}",
                )
            return
        decided_at = datetime.now(timezone.utc).replace(tzinfo=None)
        decision, record = review_challenger(target.client, spec, result, decided_at=decided_at,
                                             data_as_of=warehouse.as_of())
        warehouse.append_rows(pd.DataFrame([record.to_row()]), tables.MODEL_PROMOTIONS, record.SQL_TYPES)
        context.log.info(f"{spec.registered_model_name} v{result.model_version}: {decision.summary()}")

        groups = warehouse.read(
            f"select subscriber_key, age_band, gender from {tables.SUBSCRIBER_PROFILES}"
        )
        history = warehouse.read(
            f"select * from {tables.MODEL_PROMOTIONS} where model_name = ? order by decided_at",
            [spec.registered_model_name],
        )
        batches = warehouse.read(
            f"select distinct landing_batch from {tables.LANDING_RECONCILIATION} "
            "order by case when landing_batch = 'initial' then '' else landing_batch end"
        )["landing_batch"]
        # The first and the last batch: a year of daily drops would not fit on a card.
        landing_batches = tuple(batches) if len(batches) <= 3 else (batches.iloc[0], "…", batches.iloc[-1])
        facts = build_model_card_facts(
            spec,
            result,
            groups=groups,
            promotion_history=history.astype(object).where(history.notna(), None).to_dict(orient="records"),
            code_version=code,
            landing_batches=tuple(str(b) for b in landing_batches),
            links={
                "MLflow run": mlflow_run_url(result.experiment_id, result.run_id),
                "Dagster run": context.run_id,
            },
        )
        card = publish_model_card(target.client, facts, settings.reports_path() / "model_cards")
        metrics = result.metrics
        yield dg.MaterializeResult(
            metadata={
                "trained": True,
                "key_figures": key_figures_table({
                    "version": f"v{result.model_version} (champion after the gate: "
                               f"{'v' + record.champion_after if record.champion_after else 'none'})",
                    "test AUC [95% CI]": f"{metrics['test_auc']:.4f} [{metrics['test_auc_low']:.4f}, {metrics['test_auc_high']:.4f}]",
                    "test ECE": f"{metrics['test_ece']:.4f}",
                    "rows (train / test)": f"{result.n_train:,} / {result.n_test:,}",
                    "gate": decision.summary(),
                }),
                "mlflow_run": dg.MetadataValue.url(mlflow_run_url(result.experiment_id, result.run_id)),
                "model_version": dg.MetadataValue.url(model_version_url(result.model_name, result.model_version)),
                "model_uri": result.model_uri,
                "test_auc": round(metrics["test_auc"], 4),
                "model_card": dg.MetadataValue.md(card.markdown),
                "model_card_html": dg.MetadataValue.path(str(card.html_path)),
            }
        )
        yield dg.AssetCheckResult(
            check_name=GATE_CHECK,
            passed=decision.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=decision.summary(),
            metadata={
                "decision": record.action,
                "champion_before": record.previous_champion or "none",
                "champion_after": record.champion_after or "none",
                **{name: round(float(value), 4) for name, value in decision.figures.items()},
            },
        )
        audit = facts.bias
        yield dg.AssetCheckResult(
            check_name=BIAS_CHECK,
            passed=audit is not None and not audit.flagged,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(audit.flagged) if audit is not None and audit.flagged else "no gap beyond the threshold",
            metadata={
                "max_gap": audit.max_gap if audit is not None else 0.0,
                "gaps": dg.MetadataValue.md(audit.gaps.round(4).to_markdown(index=False)) if audit is not None else "",
            },
        )

    return _model


model_assets = [build_model_asset(spec) for spec in MODEL_SPECS]


class RollbackConfig(dg.Config):
    """Which model's champion goes back to which version, and why (recorded)."""

    model: str
    to_version: int
    reason: str
    requested_by: str = "operator"


@dg.op(description="Moves a model's `champion` alias back to an earlier version and records why.")
def roll_back_champion(context: dg.OpExecutionContext, config: RollbackConfig, settings: PipelineSettings) -> None:
    from ml.propensity.promotion import rollback_champion

    spec = spec_by_key(config.model)
    record = rollback_champion(
        settings.mlflow_client(),
        spec.registered_model_name,
        str(config.to_version),
        reason=config.reason,
        decided_at=datetime.now(timezone.utc).replace(tzinfo=None),
        decided_by=f"rollback: {config.requested_by}",
        data_as_of=settings.warehouse().as_of(),
    )
    settings.warehouse().append_rows(pd.DataFrame([record.to_row()]), tables.MODEL_PROMOTIONS, record.SQL_TYPES)
    context.log.info(
        f"{spec.registered_model_name}: champion {record.previous_champion} -> {record.champion_after} ({config.reason})"
    )


@dg.job(
    description=(
        "Rolls a model's champion back: config {model: purchase|click|churn, to_version, reason}. "
        "Scoring uses the restored version from the next run on; the rollback is a row in "
        "ml.model_promotions and tags on the version."
    ),
    tags={"email_pipeline/warehouse": "state"},
)
def roll_back_champion_job():
    roll_back_champion()
