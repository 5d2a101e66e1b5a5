"""Model cards and the bias audit: figures from the facts, published where readers look."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from ml.audit.bias import bias_audit, selected_top
from ml.audit.card_facts import build_model_card_facts, publish_model_card
from ml.audit.model_card import MAX_TABLE_ROWS, render_model_card_html, render_model_card_markdown
from ml.propensity.governance import review_challenger
from ml.propensity.specs import PURCHASE, TrainingParams
from ml.propensity.training import train_model
from tests.ml.conftest import make_training_examples


def audit_world(n: int = 4000, seed: int = 3):
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame({
        "age_band": rng.choice(["18-24", "35-44", "65+"], n),
        "gender": rng.choice(["female", "male", "non_binary"], n, p=[0.49, 0.49, 0.02]),
    })
    # Older people score higher: a real selection-rate gap between age bands, none by gender.
    scores = rng.random(n) + 0.6 * (groups["age_band"] == "65+").to_numpy()
    labels = (rng.random(n) < scores / 2).astype(int)
    return labels, scores, groups


def test_bias_audit_rates_equal_a_direct_computation_and_flag_only_real_gaps():
    labels, scores, groups = audit_world()
    audit = bias_audit(labels, scores, groups, selection_share=0.3, max_gap=0.1, min_group_rows=100)
    selected = selected_top(scores, 0.3)
    assert selected.sum() == 1200
    direct = pd.DataFrame({"age_band": groups["age_band"], "s": selected, "y": labels}).groupby("age_band")
    by_group = audit.by_group.set_index(["attribute", "group"])
    for band, rows in direct:
        assert by_group.loc[("age_band", band), "selection_rate"] == pytest.approx(rows["s"].mean())
        assert by_group.loc[("age_band", band), "true_positive_rate"] == pytest.approx(rows.loc[rows["y"] == 1, "s"].mean())
    gaps = audit.gaps.set_index(["attribute", "metric"])
    assert gaps.loc[("age_band", "selection_rate"), "flagged"]
    assert not gaps.loc[("gender", "selection_rate"), "flagged"]
    assert audit.flagged and all("age_band" in sentence for sentence in audit.flagged)
    # The tiny non-binary group (about 80 rows) is shown but does not count toward the gap.
    assert by_group.loc[("gender", "non_binary"), "n"] < 100
    large = audit.by_group[(audit.by_group["attribute"] == "gender") & (audit.by_group["n"] >= 100)]
    assert gaps.loc[("gender", "selection_rate"), "gap"] == pytest.approx(
        large["selection_rate"].max() - large["selection_rate"].min()
    )


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    from mlflow import MlflowClient

    from ml.tracking import MlflowTarget

    tmp = tmp_path_factory.mktemp("cards")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    target = MlflowTarget(MlflowClient(tracking_uri=uri, registry_uri=uri), tmp / "artifacts", "cards")
    spec = replace(PURCHASE, registered_model_name="card_test", params=TrainingParams(n_estimators=30, min_child_samples=20))
    examples = make_training_examples(1500, 3, seed=5)
    result = train_model(examples, spec, tracking=target, dataset_name="te", dataset_source="warehouse")
    decision, record = review_challenger(target.client, spec, result, decided_at=datetime(2026, 11, 24, 9, 30),
                                         data_as_of=datetime(2026, 7, 1, 23, 59, 59))
    rng = np.random.default_rng(0)
    keys = examples["subscriber_key"].unique()
    groups = pd.DataFrame({"subscriber_key": keys, "age_band": rng.choice(["18-24", "65+"], len(keys)),
                           "gender": rng.choice(["female", "male"], len(keys))})
    facts = build_model_card_facts(
        spec, result, groups=groups, promotion_history=[record.to_row()], code_version="abc123",
        links={"MLflow run": f"http://127.0.0.1:5000/#/experiments/{result.experiment_id}/runs/{result.run_id}"},
        oracle_auc=0.9,
    )
    published = publish_model_card(target.client, facts, tmp / "reports")
    return facts, published, result, target, examples


def test_the_card_states_the_runs_logged_figures(card):
    facts, published, result, target, _ = card
    run = target.client.get_run(result.run_id)
    markdown = published.markdown
    assert f"Test AUC **{run.data.metrics['test_auc']:.4f}**" in markdown
    assert f"[{run.data.metrics['test_auc_low']:.4f}, {run.data.metrics['test_auc_high']:.4f}]" in markdown
    assert f"| test_ece | {run.data.metrics['test_ece']:.4f} |" in markdown
    assert f"{run.data.metrics['test_auc'] / 0.9:.3f}x the oracle" in markdown
    for row in facts.calibration.itertuples():
        assert f"| {row.bin} | {row.n:,} | {row.mean_score:.4f} | {row.observed_rate:.4f} |" in markdown
    for row in facts.segment_metrics.itertuples():
        assert f"| {row.attribute} | {row.group} | {row.n:,} |" in markdown
    # Wall-clock time and the warehouse day it was decided on (a simulated loop day).
    assert f"| 2026-11-24 09:30:00 | 2026-07-01 23:59:59 | {result.model_version} | bootstrap |" in markdown
    assert "`abc123`" in markdown and result.run_id in markdown


def test_the_card_is_published_on_the_version_and_the_run(card):
    _, published, result, target, _ = card
    version = target.client.get_model_version("card_test", result.model_version)
    assert version.description == published.markdown
    logged = {a.path for a in target.client.list_artifacts(result.run_id, "model_card")}
    assert logged == {"model_card/model_card.html", "model_card/model_card.md"}


class _Strict(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("href", "src") and value]
        if tag not in ("meta", "br", "circle", "rect", "line", "img"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in ("circle", "rect", "line"):
            return
        assert self.open and self.open.pop() == tag, f"</{tag}> closes nothing open"


def test_the_html_card_is_offline_well_formed_and_draws_its_plots(card):
    facts, published, _, _, examples = card
    page = published.html_path.read_text()
    parser = _Strict()
    parser.feed(page)
    assert parser.open == []
    assert parser.urls == list(facts.links.values())
    assert page.count("<circle") == len(facts.calibration)
    assert page.count("<svg") == 2
    text = published.markdown + page
    assert not any(key in text for key in examples["subscriber_key"].unique())


def test_long_tables_are_cut_with_a_more_rows_line(card):
    facts = card[0]
    many = pd.DataFrame({
        "attribute": "tenure_band", "group": [f"g{k:02d}" for k in range(MAX_TABLE_ROWS + 5)], "n": 300,
        "n_positive": 10, "auc": 0.7, "auc_low": 0.6, "auc_high": 0.8,
    })
    markdown = render_model_card_markdown(replace(facts, segment_metrics=many))
    assert "… 5 more rows" in markdown and f"g{MAX_TABLE_ROWS - 1:02d}" in markdown and f"g{MAX_TABLE_ROWS:02d}" not in markdown
    assert "too few rows" in render_model_card_html(replace(facts, segment_metrics=many.assign(auc=np.nan)))


def test_unknown_and_groups_with_few_converters_do_not_count_toward_gaps():
    rng = np.random.default_rng(8)
    n = 3000
    scores = rng.random(n)
    labels = (rng.random(n) < 0.3).astype(int)
    # 'unknown' (not exported) scores far lower; '65+' is large but has few converters.
    groups = pd.DataFrame({"age_band": np.where(np.arange(n) < 600, "unknown", np.where(np.arange(n) < 1800, "18-24", "65+"))})
    scores[:600] *= 0.2
    labels[1800:] = 0
    labels[1800:1820] = 1  # 20 converters: TPR and AUC of '65+' are not judged
    audit = bias_audit(labels, scores, groups, min_group_rows=100, min_group_positives=30)
    gaps = audit.gaps.set_index("metric")["gap"]
    known = audit.by_group.set_index("group")
    assert gaps["selection_rate"] == pytest.approx(abs(known.loc["18-24", "selection_rate"] - known.loc["65+", "selection_rate"]))
    assert gaps["true_positive_rate"] == 0.0 and gaps["roc_auc"] == 0.0  # only one group has 30 converters
    assert known.loc["unknown", "selection_rate"] < 0.1 and not audit.flagged


def test_a_point_gap_within_noise_is_shown_but_not_flagged():
    # 50 converters per group, TPR 0.80 against 0.66: a 0.14 point gap that noise explains.
    labels = np.r_[np.ones(50), np.zeros(950), np.ones(50), np.zeros(950)].astype(int)
    scores = np.r_[np.r_[np.ones(40), np.zeros(10)] + 1, np.zeros(950), np.r_[np.ones(33), np.zeros(17)] + 1, np.zeros(950)]
    groups = pd.DataFrame({"gender": ["female"] * 1000 + ["male"] * 1000})
    audit = bias_audit(labels, scores, groups, selection_share=0.0365)
    tpr = audit.gaps.set_index("metric").loc["true_positive_rate"]
    assert tpr["gap"] == pytest.approx(0.8 - 0.66, abs=0.02)
    assert tpr["gap_low"] < 0.1 and not tpr["flagged"]
