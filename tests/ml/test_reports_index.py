"""The reports index lists every report that exists, newest first, with links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

from ml.reports.index import DBT_DOCS_KIND, collect_reports, write_reports_index

REPORTS = (
    "experiment_report_subject-v1_2026-06-30.html",
    "experiment_report_subject-v1_2026-07-01.html",
    "feature_drift_report_2026-06-29.html",
    "feature_drift_report_2026-06-30.html",
    "prediction_drift_report_2026-06-30.html",
    "data_docs/index.html",
    "data_docs/validations/x/y.html",  # a page of the site, reached from its index: not listed
    "model_cards/purchase_propensity/v1/model_card.html",
    "model_cards/purchase_propensity/v2/model_card.html",
    "model_cards/churn_risk/v1/model_card.html",
)


def _state(tmp_path: Path) -> tuple[Path, Path]:
    reports = tmp_path / "reports"
    for name in REPORTS:
        (reports / name).parent.mkdir(parents=True, exist_ok=True)
        (reports / name).write_text("<html></html>")
    (reports / "notes.txt").write_text("not a report")
    dbt_docs = tmp_path / "dbt" / "docs" / "static_index.html"
    dbt_docs.parent.mkdir(parents=True)
    dbt_docs.write_text("<html></html>")
    return reports, dbt_docs


def test_every_report_is_linked_once_and_every_link_resolves(tmp_path):
    reports, dbt_docs = _state(tmp_path)
    index = collect_reports(reports, dbt_docs=dbt_docs, ui_links={"Dagster UI": "http://127.0.0.1:3000"})
    page = write_reports_index(index, reports)
    text = page.read_text()
    hrefs = re.findall(r'<li><a href="([^"]+)">', text)
    expected = {name for name in REPORTS if "/validations/" not in name} | {"../dbt/docs/static_index.html"}
    assert sorted(hrefs) == sorted(expected)
    assert all((reports / href).resolve().is_file() for href in hrefs)
    assert index.report_count == len(expected) == 10
    assert 'href="http://127.0.0.1:3000"' in text
    # Newest day first; model cards by model, newest version first.
    assert hrefs.index("experiment_report_subject-v1_2026-07-01.html") < hrefs.index(
        "experiment_report_subject-v1_2026-06-30.html")
    assert hrefs.index("feature_drift_report_2026-06-30.html") < hrefs.index("feature_drift_report_2026-06-29.html")
    cards = [h for h in hrefs if h.startswith("model_cards/")]
    assert cards == ["model_cards/churn_risk/v1/model_card.html", "model_cards/purchase_propensity/v2/model_card.html",
                     "model_cards/purchase_propensity/v1/model_card.html"]
    assert "subject-v1, 2026-07-01" in text and "purchase_propensity v2" in text


def test_what_does_not_exist_yet_says_how_to_get_it(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    index = collect_reports(reports, dbt_docs=tmp_path / "missing.html")
    sections = {section.kind: section for section in index.sections}
    assert index.report_count == 0
    assert "make docs" in sections[DBT_DOCS_KIND].missing
    assert all(section.missing for section in index.sections)
    text = write_reports_index(index, reports).read_text()
    assert "<li>" not in text and text.count("none yet") == 5
