"""Propensity training: feature preparation, time split, LightGBM fit and MLflow registration."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataclasses import replace

from ml.propensity.features import (
    FEATURE_COLUMNS, PURCHASE_LABEL, TOP_CATEGORY_SLOT_LEVELS, category_slot_params, feature_list_hash, prepare_features,
)
from ml.propensity.promotion import CHALLENGER_ALIAS
from ml.propensity.specs import CHURN, MODEL_SPECS, PURCHASE, ModelSpec, TrainingParams
from ml.tracking import (
    parse_model_uri,
    MlflowTarget,
    artifact_location_uri,
    ensure_experiment,
    download_model_version,
    resolve_alias,
)
from ml.propensity.training import (
    NotEnoughHistory,
    days_of_history,
    evaluate_scores,
    history_days_needed,
    fit_model,
    purge_overlapping_labels,
    time_split,
    train_model,
    validation_mask,
)
from tests.ml.conftest import make_training_examples

FAST = TrainingParams(n_estimators=60, learning_rate=0.1, num_leaves=15, min_child_samples=20)


# --- prepare_features ---------------------------------------------------------------------------


def test_prepare_features_returns_exactly_the_contract_as_floats():
    examples = make_training_examples(50, 2)
    prepared = prepare_features(examples.assign(extra_column=1))
    assert list(prepared.columns) == list(FEATURE_COLUMNS)
    assert (prepared.dtypes == "float64").all()
    pd.testing.assert_index_equal(prepared.index, examples.index)


def test_prepare_features_encodes_top_category_with_fixed_codes_whatever_the_frame_holds():
    examples = make_training_examples(20, 2)
    only_two = examples.head(3).assign(top_category_slot=["category_slot_6", "none", "category_other"])
    all_levels = examples.head(len(TOP_CATEGORY_SLOT_LEVELS)).assign(top_category_slot=list(reversed(TOP_CATEGORY_SLOT_LEVELS)))
    assert prepare_features(only_two)["top_category_slot"].tolist() == [5.0, 7.0, 6.0]
    assert prepare_features(all_levels)["top_category_slot"].tolist() == [7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]


def test_prepare_features_keeps_a_null_category_missing_and_rejects_unknown_ones():
    examples = make_training_examples(20, 2).head(2)
    with_null = examples.assign(top_category_slot=[None, "category_slot_2"])
    assert np.isnan(prepare_features(with_null)["top_category_slot"].iloc[0])
    # A category name is not a slot: the marts map names to slots (marts.category_slots).
    with pytest.raises(ValueError, match=r"unknown values \['garden'\]"):
        prepare_features(examples.assign(top_category_slot=["garden", "category_slot_2"]))


def test_category_slot_params_name_each_slot_once_and_refuse_a_slot_with_two_labels():
    slots = pd.DataFrame({
        "slot": ["category_slot_1", "category_slot_1", "category_slot_2", "category_other"],
        "slot_label": ["home", "home", "media", "other"],
        "assigned_by": ["mapping_file"] * 4,
    })
    assert category_slot_params(slots) == {
        "category_slot_1": "home", "category_slot_2": "media", "category_slot_3": "(empty)", "category_slot_4": "(empty)",
        "category_slot_5": "(empty)", "category_slot_6": "(empty)", "category_slots_assigned_by": "mapping_file",
    }
    with pytest.raises(ValueError, match=r"\['category_slot_2'\] have more than one label"):
        category_slot_params(slots.assign(slot=["category_slot_1", "category_slot_1", "category_slot_2", "category_slot_2"]))


def test_prepare_features_lists_missing_columns():
    examples = make_training_examples(20, 2).drop(columns=["sends_7d", "top_category_slot"])
    with pytest.raises(ValueError, match=r"lacks columns \['sends_7d', 'top_category_slot'\]"):
        prepare_features(examples)


def test_prepare_features_converts_decimals_and_nullable_ints_and_rejects_text():
    examples = make_training_examples(20, 2).head(2)
    converted = prepare_features(
        examples.assign(
            monetary_total=[Decimal("12.50"), None],
            orders_total=pd.array([3, None], dtype="Int64"),
        )
    )
    assert converted["monetary_total"].iloc[0] == 12.5 and np.isnan(converted["monetary_total"].iloc[1])
    assert converted["orders_total"].iloc[0] == 3.0 and np.isnan(converted["orders_total"].iloc[1])
    with pytest.raises(ValueError, match="'sends_7d' is not numeric"):
        prepare_features(examples.assign(sends_7d=["three", "4"]))


# --- time split, purge, validation slice ---------------------------------------------------------


def test_time_split_holds_out_the_latest_cutoffs():
    examples = make_training_examples(30, 5)
    cutoffs = sorted(examples["cutoff_at"].unique())
    train, test = time_split(examples)
    assert set(test["cutoff_at"]) == {cutoffs[-1]}
    assert set(train["cutoff_at"]) == set(cutoffs[:-1])
    assert len(train) + len(test) == len(examples)
    train2, test2 = time_split(examples, test_cutoffs=2)
    assert set(test2["cutoff_at"]) == set(cutoffs[-2:])
    assert train2["cutoff_at"].max() < test2["cutoff_at"].min()


def test_time_split_gives_the_same_rows_in_the_same_order_whatever_order_they_came_in():
    # A warehouse table built in parallel keeps no row order; the model and the gate must not
    # depend on it.
    examples = make_training_examples(40, 5)
    shuffled = examples.sample(frac=1.0, random_state=3)
    for (a, b) in zip(time_split(examples), time_split(shuffled)):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    train, _ = time_split(shuffled)
    assert list(train[["cutoff_at", "subscriber_key"]].itertuples(index=False)) == sorted(
        train[["cutoff_at", "subscriber_key"]].itertuples(index=False)
    )


@pytest.mark.parametrize(("n_cutoffs", "test_cutoffs"), [(1, 1), (2, 2), (3, 0)])
def test_time_split_needs_enough_cutoffs(n_cutoffs, test_cutoffs):
    with pytest.raises(ValueError):
        time_split(make_training_examples(10, n_cutoffs), test_cutoffs=test_cutoffs)


def test_purge_drops_training_rows_whose_label_window_reaches_the_test_period():
    examples = make_training_examples(10, 4, cutoff_spacing_days=7)
    cutoffs = sorted(examples["cutoff_at"].unique())
    train, test = time_split(examples)
    purged = purge_overlapping_labels(train, test["cutoff_at"].min(), label_window_days=14)
    # Cutoffs at -21 and -14 days keep their 14-day window before the test cutoff; -7 does not.
    assert set(purged["cutoff_at"]) == set(cutoffs[:2])
    assert len(purge_overlapping_labels(train, test["cutoff_at"].min(), label_window_days=7)) == len(train)


def test_validation_mask_keeps_each_subscriber_on_one_side_and_is_seeded():
    examples = make_training_examples(200, 3)
    mask = validation_mask(examples["subscriber_key"], 0.25, seed=1)
    per_subscriber = pd.Series(mask).groupby(examples["subscriber_key"].to_numpy()).nunique()
    assert (per_subscriber == 1).all()
    assert mask.sum() == 50 * 3
    assert (mask == validation_mask(examples["subscriber_key"], 0.25, seed=1)).all()
    assert not (mask == validation_mask(examples["subscriber_key"], 0.25, seed=2)).all()


# --- evaluation and fitting -----------------------------------------------------------------------


def test_evaluate_propensity_on_known_scores():
    labels = np.array([0] * 18 + [1, 1])
    perfect = evaluate_scores(labels, np.linspace(0, 1, 20))
    assert perfect["test_auc"] == 1.0 and perfect["test_pr_auc"] == 1.0
    assert perfect["test_base_rate"] == pytest.approx(0.1)
    assert perfect["test_top_decile_lift"] == pytest.approx(10.0)
    inverted = evaluate_scores(labels, np.linspace(1, 0, 20), prefix="holdout")
    assert inverted["holdout_auc"] == 0.0 and inverted["holdout_top_decile_lift"] == 0.0
    with pytest.raises(ValueError, match="single label class"):
        evaluate_scores(np.zeros(5), np.linspace(0, 1, 5))


def test_model_finds_the_real_signal_but_none_in_shuffled_labels():
    def test_auc(shuffle: bool) -> float:
        examples = make_training_examples(3000, 3, seed=3, shuffle_labels=shuffle)
        train, test = time_split(examples)
        model, _ = fit_model(train, label=PURCHASE_LABEL, params=FAST)
        scores = model.predict_proba(prepare_features(test))[:, 1]
        return evaluate_scores(test[PURCHASE_LABEL].to_numpy(), scores)["test_auc"]

    assert test_auc(shuffle=False) > 0.72
    assert abs(test_auc(shuffle=True) - 0.5) < 0.08


def test_fit_is_deterministic_and_uses_fixed_category_codes():
    examples = make_training_examples(600, 2, seed=5)
    first, counts = fit_model(examples, label=PURCHASE_LABEL, params=FAST)
    second, _ = fit_model(examples, label=PURCHASE_LABEL, params=FAST)
    features = prepare_features(examples)
    np.testing.assert_array_equal(first.predict_proba(features), second.predict_proba(features))
    assert counts == {"n_fit": 480 * 2, "n_validation": 120 * 2}
    assert first.booster_.feature_name() == list(FEATURE_COLUMNS)
    # top_category_slot is split on as a category, not as an ordered number.
    model_json = first.booster_.dump_model()
    assert model_json["feature_names"].index("top_category_slot") in _categorical_split_features(model_json)


def _categorical_split_features(model_json: dict) -> set[int]:
    found: set[int] = set()

    def walk(node: dict) -> None:
        if "split_feature" in node:
            if node.get("decision_type") == "==":
                found.add(node["split_feature"])
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in model_json["tree_info"]:
        walk(tree["tree_structure"])
    return found


def test_fit_refuses_a_single_class():
    examples = make_training_examples(100, 2).assign(label_purchase_14d=0)
    with pytest.raises(ValueError, match="single 'label_purchase_14d' class"):
        fit_model(examples, label=PURCHASE_LABEL, params=FAST)


# --- MLflow: one real training run shared by the read-only checks ---------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import os

    import mlflow
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    target = MlflowTarget(
        client=MlflowClient(tracking_uri=uri, registry_uri=uri),
        artifact_location=tmp / "artifacts",
        experiment_name="propensity-tests",
    )
    examples = make_training_examples(2000, 4, seed=11)
    environment_before = dict(os.environ)
    process_uri_before = mlflow.get_tracking_uri()
    result = train_model(
        examples,
        replace(PURCHASE, registered_model_name="propensity_test", params=FAST),
        tracking=target,
        dataset_name="training_examples",
        dataset_source=str(tmp / "warehouse.duckdb"),
        feature_params={"category_slot_1": "Garden & Patio", "category_slots_assigned_by": "top_revenue"},
    )
    side_effects = {
        "environment_changes": {k: v for k, v in os.environ.items() if environment_before.get(k) != v},
        "process_tracking_uri": (process_uri_before, mlflow.get_tracking_uri()),
    }
    return result, target, examples, tmp, side_effects


def test_training_leaves_the_process_environment_and_mlflow_uris_alone(trained):
    """ml/ passes an explicit client: a store chosen for one run never leaks into the next."""
    side_effects = trained[4]
    assert side_effects["environment_changes"] == {}
    before, after = side_effects["process_tracking_uri"]
    assert after == before


def test_training_reports_held_out_metrics(trained):
    result, _, examples, _, _ = trained
    assert result.metrics["test_auc"] > 0.72
    assert 0 < result.metrics["test_pr_auc"] < 1 and result.metrics["test_log_loss"] > 0
    assert result.n_test == 2000 and result.n_train == 6000
    assert result.metrics["n_fit"] + result.metrics["n_validation"] == result.n_train
    assert 1 <= result.metrics["best_iteration"] <= FAST.n_estimators
    assert result.model_uri == f"models:/propensity_test/{result.model_version}"
    assert result.feature_columns == tuple(FEATURE_COLUMNS)


def test_training_logs_params_metrics_and_importance_to_the_run(trained):
    import mlflow

    result, target, _, tmp, _ = trained
    run = target.client.get_run(result.run_id)
    assert run.data.params["label"] == PURCHASE_LABEL
    assert run.data.params["lgbm_n_estimators"] == str(FAST.n_estimators)
    assert run.data.params["lgbm_deterministic"] == "True"
    assert run.data.params["first_test_cutoff"] == pd.Timestamp(trained[2]["cutoff_at"].max()).isoformat()
    assert run.data.params["n_train_cutoffs"] == "3"
    # What the category slots meant for this model, for whoever reads the run later.
    assert (run.data.params["category_slot_1"], run.data.params["category_slots_assigned_by"]) == (
        "Garden & Patio", "top_revenue")
    for key in ("test_auc", "test_pr_auc", "test_log_loss", "test_base_rate", "n_train", "n_test", "best_iteration"):
        assert run.data.metrics[key] == pytest.approx(result.metrics[key])
    assert run.data.tags["feature_list_sha256"] == feature_list_hash()
    gain_metrics = {k: v for k, v in run.data.metrics.items() if k.startswith("gain_share.")}
    assert 1 <= len(gain_metrics) <= 10
    importance = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/feature_importance.json")
    assert {row["feature"] for row in importance["features"]} == set(FEATURE_COLUMNS)
    top = importance["features"][0]
    assert run.data.metrics[f"gain_share.{top['feature']}"] == pytest.approx(top["gain_share"])
    # Artifacts land in the experiment's configured folder, not in the working directory.
    assert run.info.artifact_uri.startswith((tmp / "artifacts").as_uri())


def test_training_logs_feature_datasets_without_subscriber_keys(trained):
    result, target, _, _, _ = trained
    inputs = target.client.get_run(result.run_id).inputs.dataset_inputs
    by_context = {
        next(tag.value for tag in item.tags if tag.key == "mlflow.data.context"): item.dataset for item in inputs
    }
    assert set(by_context) == {"training", "testing"}
    for dataset in by_context.values():
        schema_columns = [column["name"] for column in json.loads(dataset.schema)["mlflow_colspec"]]
        assert schema_columns == [*FEATURE_COLUMNS, PURCHASE_LABEL]
    assert json.loads(by_context["testing"].profile)["num_rows"] == result.n_test
    assert json.loads(by_context["training"].profile)["num_rows"] == result.n_train


def test_registered_version_has_challenger_alias_tags_and_signature(trained):
    import mlflow

    result, target, _, _, _ = trained
    client = target.client
    version = client.get_model_version_by_alias("propensity_test", CHALLENGER_ALIAS)
    assert str(version.version) == result.model_version
    assert version.tags["run_id"] == result.run_id
    assert version.tags["label"] == PURCHASE_LABEL
    assert version.tags["feature_list_sha256"] == feature_list_hash()
    assert resolve_alias(target.client, "propensity_test", CHALLENGER_ALIAS) == result.model_version
    info = mlflow.models.get_model_info(download_model_version(target.client, result.model_uri))
    assert info.signature is not None
    assert info.signature.inputs.input_names() == list(FEATURE_COLUMNS)
    assert info.flavors["lightgbm"]["model_class"] == "lightgbm.basic.Booster"  # native format, no pickle


def test_no_subscriber_key_reaches_mlflow(trained):
    result, target, examples, tmp, _ = trained
    run = target.client.get_run(result.run_id)
    logged_text = json.dumps([run.data.params, run.data.tags, run.data.metrics])
    logged_text += "".join(p.read_text(errors="ignore") for p in (tmp / "artifacts").rglob("*") if p.is_file())
    logged_text += Path(target.client.tracking_uri.removeprefix("sqlite:///")).read_bytes().decode("latin-1")
    assert "subscriber_key" not in logged_text
    assert not any(key in logged_text for key in examples["subscriber_key"].unique()[:200])


# --- MLflow: versioning and errors ------------------------------------------------------------------


def test_retraining_moves_the_challenger_alias_to_the_new_version(mlflow_target):
    examples = make_training_examples(300, 3, seed=2)
    spec = replace(PURCHASE, registered_model_name="propensity_retrain", params=TrainingParams(n_estimators=5, min_child_samples=10))
    kwargs = dict(tracking=mlflow_target, dataset_name="te", dataset_source="marts.training_examples")
    first = train_model(examples, spec, **kwargs)
    second = train_model(examples, spec, **kwargs)
    assert (first.model_version, second.model_version) == ("1", "2")
    assert resolve_alias(mlflow_target.client, "propensity_retrain", CHALLENGER_ALIAS) == "2"
    assert first.experiment_id == second.experiment_id


def test_training_rejects_label_windows_that_leave_no_training_data(mlflow_target):
    # Weekly cutoffs, a 28-day label and the last cutoff unlabelled: every training window overlaps.
    examples = make_training_examples(100, 4, cutoff_spacing_days=7)
    with pytest.raises(NotEnoughHistory, match="needs 84 days of history .* 28 from a training to a test cutoff"):
        train_model(
            examples,
            replace(CHURN, params=FAST),
            tracking=mlflow_target,
            dataset_name="te",
            dataset_source="marts.training_examples",
        )
    with pytest.raises(ValueError, match="unknown label"):
        replace(PURCHASE, label="label_spend")


# --- tracking helpers ----------------------------------------------------------------------------------


def test_artifact_location_uri_turns_folders_into_file_uris(tmp_path):
    assert artifact_location_uri(tmp_path / "a") == (tmp_path / "a").as_uri()
    assert artifact_location_uri("s3://bucket/prefix") == "s3://bucket/prefix"


def test_ensure_experiment_reuses_the_experiment_and_refuses_a_deleted_one(mlflow_target):
    experiment_id = ensure_experiment(mlflow_target)
    assert ensure_experiment(mlflow_target) == experiment_id
    mlflow_target.client.delete_experiment(experiment_id)
    with pytest.raises(ValueError, match="is deleted"):
        ensure_experiment(mlflow_target)


def test_parse_model_uri_accepts_versions_and_aliases_only():
    assert parse_model_uri("models:/propensity/3") == ("propensity", "3", False)
    assert parse_model_uri("models:/propensity@champion") == ("propensity", "champion", True)
    for bad in ("runs:/abc/model", "/tmp/model", "models:/propensity", "models:/@candidate"):
        with pytest.raises(ValueError):
            parse_model_uri(bad)


# --- too little history: the failure says the cause and the fix -----------------------------------


def trainable_with(spec: ModelSpec, days: int) -> bool:
    """Whether `days` from the first send or order to the as-of day give `spec` a test cutoff and
    a purged training cutoff, by training_examples.sql's rule (weekly cutoffs back from the as-of
    day's midnight, each >= first data day + 28 days and <= as_of - 14 days; churn's label null
    until 28 days have passed) and train_model's (the latest labelled cutoff is test, training
    cutoffs end a label window before it)."""
    from ml.propensity.features import CUTOFF_EVERY_DAYS, EXAMPLE_LABEL_DAYS, FEATURE_WARM_UP_DAYS

    first, anchor = pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-01") + pd.Timedelta(days=days)
    as_of = anchor + pd.Timedelta(hours=23, minutes=59, seconds=59)
    cutoffs = [anchor - pd.Timedelta(days=CUTOFF_EVERY_DAYS * k) for k in range(days // CUTOFF_EVERY_DAYS + 1)]
    rows = [c for c in cutoffs if c + pd.Timedelta(days=EXAMPLE_LABEL_DAYS) <= as_of
            and c >= first + pd.Timedelta(days=FEATURE_WARM_UP_DAYS)]
    labelled = [c for c in rows if c + pd.Timedelta(days=max(spec.horizon_days, EXAMPLE_LABEL_DAYS)) <= as_of]
    if len(labelled) < 2:
        return False
    test = max(labelled)
    return any(c + pd.Timedelta(days=spec.horizon_days) <= test for c in labelled if c < test)


# The specs, and one whose label window is not whole weeks (the cutoffs are weekly).
@pytest.mark.parametrize("spec", [*MODEL_SPECS, replace(PURCHASE, key="ten_day", horizon_days=10)],
                         ids=lambda spec: spec.key)
def test_history_days_needed_is_the_least_history_the_cutoff_rules_can_train_on(spec):
    needed = history_days_needed(spec)
    assert trainable_with(spec, needed) and not trainable_with(spec, needed - 1)
    assert {s.key: history_days_needed(s) for s in MODEL_SPECS} == {"purchase": 56, "click": 49, "churn": 84}


def test_training_on_too_little_history_fails_saying_how_many_days_are_needed_and_present():
    examples = make_training_examples(200, 1, seed=3)
    for too_few in (examples.iloc[:0], examples):  # no examples at all; a single cutoff
        with pytest.raises(NotEnoughHistory) as raised:
            # Raised before MLflow is touched: no tracking target needed.
            train_model(too_few, PURCHASE, tracking=None, dataset_name="t", dataset_source="s")
        assert "needs 56 days of history" in str(raised.value)
    message = raised.value.explain(days_of_history(pd.Timestamp("2026-06-10 08:00"), pd.Timestamp("2026-06-30 23:59:59")))
    assert "needs 56 days of history" in message and "the data has 20 days" in message
    assert "land at least 36 more days of sends and orders" in message
    assert message.count(".") == 1 and message.endswith(".")  # one sentence
    assert "the data has no send or order at all" in raised.value.explain(days_of_history(None, pd.Timestamp("2026-06-30")))


def test_a_label_without_variation_is_not_trained_and_says_where_the_label_comes_from():
    from ml.propensity.specs import CLICK
    from ml.propensity.training import LabelHasOneClass

    examples = make_training_examples(300, 4, seed=5)
    examples[CLICK.label] = 0  # an export without ESP events has no clicks
    with pytest.raises(LabelHasOneClass) as raised:
        train_model(examples, CLICK, tracking=None, dataset_name="t", dataset_source="s")
    assert str(raised.value) == (
        f"click model: not trained, because all {len(examples):,} labelled examples in training_examples have "
        "label_click_7d = 0, so there is nothing to learn. Clicks come from the ESP's email events "
        "(email_events.parquet); a folder without an ESP export has none (docs/connectors.md, esp-events)."
    )
