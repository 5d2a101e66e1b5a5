"""Batch scoring with a registered model version, through the ModelService."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from dataclasses import replace

from mlflow import MlflowClient

from ml.propensity.features import prepare_features
from ml.propensity.promotion import CHALLENGER_ALIAS
from ml.propensity.scoring import SCORE_COLUMNS, nobody_scored_reason, score_deciles, score_subscribers
from ml.propensity.service import ModelService
from ml.propensity.specs import PURCHASE, TrainingParams
from ml.propensity.training import train_model
from ml.tracking import MlflowTarget
from tests.ml.conftest import make_scoring_features, make_training_examples

SCORED_AT = datetime(2025, 6, 1, 6, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    target = MlflowTarget(
        client=MlflowClient(tracking_uri=uri, registry_uri=uri),
        artifact_location=tmp / "artifacts",
        experiment_name="scoring-tests",
    )
    spec = replace(
        PURCHASE,
        registered_model_name="propensity_scoring_test",
        params=TrainingParams(n_estimators=40, learning_rate=0.1, num_leaves=15, min_child_samples=20),
    )
    result = train_model(
        make_training_examples(1500, 3, seed=4),
        spec,
        tracking=target,
        dataset_name="training_examples",
        dataset_source="marts.training_examples",
    )
    in_memory = ModelService(spec=spec, version=result.model_version, booster=result.model, run_id=result.run_id)
    return result, target, spec, in_memory


def test_registry_model_scores_exactly_like_the_in_memory_model(registered):
    result, target, spec, _ = registered
    features = make_scoring_features(400)
    loaded = ModelService.load(target.client, spec, version=result.model_version)
    assert loaded.run_id == result.run_id and loaded.model_uri == result.model_uri
    scored = score_subscribers(features, loaded)
    expected = pd.Series(
        result.model.predict_proba(prepare_features(features))[:, 1], index=features["subscriber_key"].to_numpy()
    )
    np.testing.assert_array_equal(scored["propensity_score"].to_numpy(), expected[scored["subscriber_key"]].to_numpy())
    # The same model through the alias.
    by_alias = ModelService.load(target.client, spec, alias=CHALLENGER_ALIAS)
    assert by_alias.version == result.model_version
    np.testing.assert_array_equal(by_alias.predict(features), expected.to_numpy())


def test_scores_are_probabilities_ranked_with_model_lineage(registered):
    result, target, spec, _ = registered
    features = make_scoring_features(250)
    scored = score_subscribers(
        features, ModelService.load(target.client, spec, version=result.model_version), scored_at=SCORED_AT
    )
    assert list(scored.columns) == list(SCORE_COLUMNS)
    assert len(scored) == 250 and set(scored["subscriber_key"]) == set(features["subscriber_key"])
    assert scored["propensity_score"].between(0, 1).all()
    assert scored["propensity_score"].is_monotonic_decreasing
    assert scored["score_rank"].tolist() == list(range(1, 251))
    assert scored["score_decile"].value_counts().sort_index().tolist() == [25] * 10
    assert set(scored["model_name"]) == {"propensity_scoring_test"}
    # Each score leads to the MLflow run that trained its version.
    assert set(scored["model_run_id"]) == {result.run_id} and result.run_id
    assert set(scored["model_version"]) == {result.model_version}
    assert (scored["scored_at"] == pd.Timestamp(SCORED_AT)).all()
    assert (scored["cutoff_at"] == pd.Timestamp("2025-06-01")).all()


def test_scores_do_not_depend_on_which_categories_the_frame_holds(registered):
    _, _, _, model = registered
    features = make_scoring_features(300)
    full = score_subscribers(features, model)
    # Only two categories present: a data-dependent encoding would shift the codes.
    subset = features[features["top_category_slot"].isin(["category_slot_6", "none"])]
    assert 0 < len(subset) < len(features)
    partial = score_subscribers(subset, model)
    merged = partial.merge(full, on="subscriber_key", suffixes=("_subset", "_full"))
    np.testing.assert_array_equal(merged["propensity_score_subset"], merged["propensity_score_full"])


def test_top_category_slot_changes_the_score(registered):
    # Guards the test above: if the model ignored top_category_slot, it would prove nothing.
    _, _, _, model = registered
    features = make_scoring_features(300)
    buyers = features[features["top_category_slot"] != "none"]

    def scores_as(category: str) -> pd.Series:
        scored = score_subscribers(buyers.assign(top_category_slot=category), model)
        return scored.set_index("subscriber_key")["propensity_score"].sort_index()

    # The fake data gives slot 3's buyers a higher purchase rate.
    assert scores_as("category_slot_3").mean() > 1.2 * scores_as("category_slot_1").mean()


def test_scoring_validates_its_input(registered):
    _, _, _, model = registered
    features = make_scoring_features(20)
    with pytest.raises(ValueError, match="more than one row"):
        score_subscribers(pd.concat([features, features.head(1)]), model)
    with pytest.raises(ValueError, match="without subscriber_key"):
        score_subscribers(features.assign(subscriber_key=None), model)
    with pytest.raises(ValueError, match=r"lacks columns \['fatigue_score'\]"):
        score_subscribers(features.drop(columns="fatigue_score"), model)


def test_model_service_loads_exactly_one_of_alias_or_version(registered):
    _, target, spec, _ = registered
    with pytest.raises(ValueError, match="exactly one of alias or version"):
        ModelService.load(target.client, spec)
    with pytest.raises(ValueError, match="exactly one of alias or version"):
        ModelService.load(target.client, spec, alias="champion", version=1)


def test_load_model_refuses_a_model_trained_on_other_features(mlflow_target):
    import lightgbm

    from ml.propensity.training import log_lightgbm_model
    from ml.tracking import ensure_experiment, ensure_registered_model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1}, lightgbm.Dataset(frame, label=(frame["x"] > 0).astype(int)), 3
    )
    client = mlflow_target.client
    experiment_id = ensure_experiment(mlflow_target)
    run_id = client.create_run(experiment_id).info.run_id
    logged = log_lightgbm_model(client, experiment_id, run_id, booster, signature=None, input_example=None)
    ensure_registered_model(client, "other_features")
    client.create_model_version("other_features", source=logged.artifact_location, run_id=run_id, model_id=logged.model_id)
    with pytest.raises(ValueError, match="retrain it"):
        ModelService.load(client, replace(PURCHASE, registered_model_name="other_features"), version=1)


def test_score_deciles_split_ranks_evenly():
    assert score_deciles(np.arange(1, 21), 20).tolist() == [d for d in range(1, 11) for _ in range(2)]
    assert score_deciles(np.arange(1, 4), 3).tolist() == [1, 4, 7]
    assert score_deciles(np.array([], dtype=int), 0).tolist() == []


# --- empty is a state: a day with nobody eligible scores nobody, without a crash ----------------


def test_a_day_with_no_one_to_score_gives_an_empty_frame_of_the_usual_columns_and_types(registered):
    _, _, _, in_memory = registered
    features = make_scoring_features(20)
    usual = score_subscribers(features, in_memory, scored_at=SCORED_AT)
    empty = score_subscribers(features.iloc[:0], in_memory, scored_at=SCORED_AT)
    assert empty.empty and list(empty.columns) == list(SCORE_COLUMNS)
    assert empty.dtypes.to_dict() == usual.dtypes.to_dict()
    assert in_memory.predict(features.iloc[:0]).shape == (0,)
    # The contract is still checked on no rows.
    with pytest.raises(ValueError, match="lacks columns"):
        in_memory.predict(features.iloc[:0].drop(columns="sends_7d"))


def eligibility_counts(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["is_eligible", "exclusion_reason", "subscribers"])


def test_nobody_scored_names_the_top_exclusion_reasons_with_their_counts():
    assert nobody_scored_reason(eligibility_counts((False, "no_consent_record", 4367))) == (
        "0 eligible of 4,367: no_consent_record 4,367"
    )
    many = eligibility_counts(
        (False, "unsubscribed", 10), (False, "no_consent_record", 500), (False, "erased", 10),
        (False, "suppressed_complaint", 3), (False, "suppressed_hard_bounce", 2), (None, None, 1),
    )
    assert nobody_scored_reason(many) == (
        "0 eligible of 526: no_consent_record 500, erased 10, unsubscribed 10, 3 other reasons 6"
    )
    # Eligible people without scoring features is another cause, and says so.
    assert nobody_scored_reason(eligibility_counts((True, None, 12), (False, "erased", 3))) == (
        "12 eligible of 15 but none has a row in scoring_features; excluded: erased 3"
    )
    assert nobody_scored_reason(eligibility_counts()) == "0 eligible of 0: marts.subscriber_eligibility has no subscribers"


def test_with_no_champion_the_day_gets_typed_empty_scores_and_the_gate_s_reason():
    import duckdb

    from ml.propensity.scoring import SCORE_COLUMN_TYPES, SCORE_COLUMNS, empty_scores, no_champion_reason

    empty = empty_scores()
    assert list(empty.columns) == list(SCORE_COLUMNS) and empty.empty
    connection = duckdb.connect()
    connection.register("scores", empty)
    types = dict(connection.execute("select column_name, column_type from (describe scores)").fetchall())
    assert types == {
        "subscriber_key": "VARCHAR", "cutoff_at": "TIMESTAMP_NS", "propensity_score": "DOUBLE", "score_rank": "BIGINT",
        "score_decile": "BIGINT", "model_name": "VARCHAR", "model_version": "VARCHAR", "model_run_id": "VARCHAR",
        "scored_at": "TIMESTAMP_NS",
    }
    # The frame's types are the table's declared ones.
    assert types == {name: sql_type.upper() for name, sql_type in SCORE_COLUMN_TYPES.items()}
    decisions = pd.DataFrame({
        "model_name": ["purchase_propensity", "purchase_propensity", "churn_risk"],
        "version": ["2", "1", "1"], "action": ["refused", "refused", "bootstrap"],
        "reasons": ["ECE 0.1007 is above the maximum 0.03", "AUC too low", "first version"],
        "decided_at": pd.to_datetime(["2026-07-02", "2026-07-01", "2026-07-03"]),
    })
    assert no_champion_reason("purchase_propensity", decisions) == (
        "no champion for purchase_propensity: the gate refused v2 (ECE 0.1007 is above the maximum 0.03), "
        "and no earlier version was promoted"
    )
    assert no_champion_reason("purchase_propensity", decisions.iloc[:0]) == (
        "no champion for purchase_propensity: no version has been trained yet"
    )
