"""Your own data, end to end: a hand-made order-lines export (four months, cancellations,
lines without a customer id, clock times in Europe/London, no ESP data, free-form product
categories, more than the models' six category slots), converted by the connector and run by
`make demo`'s loop. It must exit 0, train a model, print the summary,
say that experiments need ESP data, and leave the landing folder byte for byte as it was."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from ml.vocabulary import CATEGORY_SLOT_COUNT, CATEGORY_SLOTS, SIMULATOR_CATEGORIES
from tests.fixtures.order_lines_export import write_categories, write_order_lines_export

pytestmark = pytest.mark.e2e


def folder_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below `folder`, hidden ones included, by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_an_order_lines_export_without_esp_data_runs_the_demo_to_exit_0_and_stays_untouched(
    tmp_path, monkeypatch, capsys
):
    from ml.connectors.cli import main as connect
    from orchestration import loop, summary

    export, landing, state = tmp_path / "export.csv", tmp_path / "landing", tmp_path / "state"
    facts = write_order_lines_export(export)
    assert (facts.last_day - facts.first_day).days >= 90
    categories = write_categories(export, tmp_path / "categories.csv")
    assert categories > CATEGORY_SLOT_COUNT
    assert connect(["order-lines", str(export), str(landing), "--date-format", "%m/%d/%Y %H:%M",
                    "--timezone", "Europe/London", "--categories", str(tmp_path / "categories.csv")]) == 0
    assert not (landing / "_manifest.json").exists()  # as of comes from the data
    report = json.loads((landing / "connector_report.json").read_text())["order-lines"]
    before = folder_hashes(landing)
    for name, value in {"PIPELINE_LANDING_DIR": str(landing), "PIPELINE_STATE_DIR": str(state),
                        "DAGSTER_HOME": str(state / "dagster_home"),
                        "SUBSCRIBER_KEY_SECRET": "tests-user-landing-secret"}.items():
        monkeypatch.setenv(name, value)
    (state / "dagster_home").mkdir(parents=True)
    capsys.readouterr()

    assert loop.main(["demo"]) == 0
    summary.main()
    out = capsys.readouterr().out

    assert folder_hashes(landing) == before
    assert not (landing / "hillstrom.csv").exists() and (state / "reference" / "hillstrom.csv").is_file()
    assert f"No _manifest.json: as of is the latest event in the data, {facts.last_day}" in out
    assert f"{facts.last_day}: first models trained, gated and carded" in out
    assert "No ESP data: no send, open or click has landed" in out
    assert "Experiments need an ESP's event export: python -m ml.connectors esp-events" in out
    assert "click_propensity: not trained, label_click_7d has one value in every labelled example" in out
    with duckdb.connect(str(state / "warehouse.duckdb"), read_only=True) as warehouse:
        # Every line without a customer id is in the quarantine with its reason, none elsewhere.
        assert warehouse.execute(
            "select reason_code, count(*) from quality.quarantine_rows group by all"
        ).fetchall() == [("missing_required_field", facts.lines_without_customer_id)]
        # A purchase model was trained and judged by the gate.
        assert warehouse.execute(
            "select count(*) from ml.model_promotions where model_name = 'purchase_propensity'"
        ).fetchone() == (1,)
        # Every cancellation line of a known customer is netted against an order of theirs.
        returns, netted = warehouse.execute("select count(*), count(netted_order_id) from marts.fct_order_returns").fetchone()
        assert 0 < returns == netted <= report["cancellation_lines"]
        # The free-form categories: the top six by revenue fill the slots, the rest are in the
        # other bucket, none dropped; and a category none of the simulator's six is a feature.
        slots = warehouse.execute(
            "select slot, count(*), min(assigned_by), max(assigned_by) from marts.category_slots group by all order by slot"
        ).fetchall()
        assert report["categories"] == categories and report["categories_beyond_the_category_slots"] == categories - 6
        assert slots == [("category_other", categories - CATEGORY_SLOT_COUNT, "top_revenue", "top_revenue")] + [
            (slot, 1, "top_revenue", "top_revenue") for slot in CATEGORY_SLOTS]
        featured = warehouse.execute(
            "select slots.slot_label, count(*) from marts.training_examples as examples "
            "inner join marts.category_slots as slots on slots.slot = examples.top_category_slot "
            "where examples.top_category_slot <> 'category_other' group by all").fetchall()
        assert featured and not {label for label, _ in featured} & set(SIMULATOR_CATEGORIES)
        assert sum(n for _, n in featured) > 0
        # Profiles (and the copy segments) carry the category's own name.
        profiled = {label for (label,) in warehouse.execute("select distinct top_category from marts.subscriber_profiles").fetchall()}
        assert profiled - {"none", "other"} and profiled - {"none", "other"} <= {label for label, _ in featured} | set(
            label for (label,) in warehouse.execute("select slot_label from marts.category_slots").fetchall())
        # Nobody consented, so nobody is planned, and each person's decision says so.
        assert warehouse.execute("select decision, count(*) from ml.send_decisions group by all").fetchall() == [
            ("not_consented", facts.customers_with_orders)
        ]
