"""What a person finds on a training run in MLflow: the plots, the tags that lead back to the
code and the Dagster run, a described version, and an experiment that opens on its runs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ml.propensity.metrics import DIAGNOSTIC_PLOTS, calibration_bins, diagnostic_figures
from ml.propensity.specs import PURCHASE
from ml.propensity.training import train_model
from ml.tracking import EXPERIMENT_KIND_TAG, TRAINING_EXPERIMENT_KIND, MlflowTarget, ensure_experiment
from tests.ml.conftest import make_training_examples
from tests.ml.test_training import FAST

TAGS = {"mlflow.source.git.commit": "abc123", "dagster.run_id": "run-42", "dagster.asset_key": "purchase_propensity_model"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    target = MlflowTarget(MlflowClient(tracking_uri=uri, registry_uri=uri), tmp / "artifacts", "links-tests")
    result = train_model(
        make_training_examples(1500, 4, seed=5),
        replace(PURCHASE, registered_model_name="links_test", params=FAST),
        tracking=target, dataset_name="training_examples", dataset_source=str(tmp / "w.duckdb"), run_tags=TAGS,
    )
    return result, target


def test_the_run_carries_the_four_diagnostic_plots(trained):
    result, target = trained
    logged = {artifact.path: artifact.file_size for artifact in target.client.list_artifacts(result.run_id, "plots")}
    assert set(logged) == set(DIAGNOSTIC_PLOTS)
    assert all(size > 5_000 for size in logged.values()), logged  # real images, not empty files


def test_the_run_and_the_version_lead_back_to_the_commit_the_dagster_run_and_the_asset(trained):
    result, target = trained
    run_tags = target.client.get_run(result.run_id).data.tags
    version = target.client.get_model_version(result.model_name, result.model_version)
    for tags in (run_tags, version.tags):
        assert {key: tags.get(key) for key in TAGS} == TAGS
    assert result.run_id in version.description and PURCHASE.target in version.description


def test_the_experiment_opens_on_training_runs(trained):
    result, target = trained
    experiment = target.client.get_experiment(result.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == TRAINING_EXPERIMENT_KIND
    # An experiment made before the tag existed gets it on its next use.
    other = target.client.create_experiment("made-earlier")
    ensure_experiment(MlflowTarget(target.client, None, "made-earlier"))
    assert target.client.get_experiment(other).tags[EXPERIMENT_KIND_TAG] == TRAINING_EXPERIMENT_KIND


def test_the_figures_draw_the_curves_of_the_scores_given():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 400), 0, 1)
    importance = pd.DataFrame({"feature": [f"f{i}" for i in range(20)], "gain_share": np.linspace(0.2, 0.01, 20)})
    figures = diagnostic_figures(labels, scores, importance)
    assert list(figures) == list(DIAGNOSTIC_PLOTS)
    roc = figures["plots/roc_curve.png"].axes[0].lines[0]
    assert (roc.get_xdata()[0], roc.get_ydata()[0], roc.get_xdata()[-1], roc.get_ydata()[-1]) == (0, 0, 1, 1)
    calibration = figures["plots/calibration.png"].axes[0].lines[1]
    assert list(calibration.get_ydata()) == list(calibration_bins(labels, scores)["observed_rate"])
    bars = figures["plots/feature_importance.png"].axes[0].patches
    assert len(bars) == 15 and max(bar.get_width() for bar in bars) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        diagnostic_figures(np.zeros(10), np.linspace(0, 1, 10), importance)
