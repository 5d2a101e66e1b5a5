"""The landing check that runs first: every problem at once, each naming file, problem and fix."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from ml.landing.preflight import latest_event_at, preflight, timestamp_shape
from tests.dbt.landing_builder import base_landing, write_landing


def landing_folder(tmp_path, manifest: bool = True, **edits):
    """The two-person landing of tests/dbt/landing_builder.py, with `edits` ({table: [rows]})."""
    landing = base_landing()
    landing.update(edits)
    folder = tmp_path / "landing"
    write_landing(folder, landing)
    (folder / "hillstrom.csv").unlink()
    if not manifest:
        (folder / "_manifest.json").unlink()
    return folder


def test_a_clean_folder_passes_with_its_manifest_as_the_cut(tmp_path) -> None:
    report = preflight(landing_folder(tmp_path))
    assert report.problems == []
    assert report.extracted_at == datetime(2024, 6, 30)
    assert report.notes == []
    assert report.row_counts["orders"] == 1 and report.row_counts["esp_subscribers"] == 2


def test_a_csv_saved_as_parquet_is_named_with_what_it_is_and_the_fix(tmp_path) -> None:
    folder = landing_folder(tmp_path)
    (folder / "orders.parquet").write_text("order_id,crm_id,product_id\nO1,C1,P1\n")
    [problem] = preflight(folder).problems
    assert problem.startswith("orders.parquet: not a Parquet file: it is delimited text (a CSV file")
    assert "Fix: convert it to Parquet" in problem


def test_every_problem_is_listed_in_one_message(tmp_path) -> None:
    folder = landing_folder(tmp_path)
    (folder / "suppressions.parquet").unlink()
    pq.write_table(pa.table({"send_id": ["S1"], "campaign_id": ["K1"]}), folder / "sends.parquet")
    (folder / "products.parquet").write_bytes(b"PK\x03\x04 an xlsx workbook")
    epoch = [{**row, "occurred_at": "1709287260"} for row in base_landing()["email_events"]]
    pq.write_table(pa.Table.from_pylist(epoch), folder / "email_events.parquet")
    report = preflight(folder)
    assert len(report.problems) == 4, report.problems
    message = report.message(folder)
    assert "suppressions.parquet: file is missing from the initial export. Fix:" in message
    assert "sends.parquet: missing columns ['esp_id', 'sent_at']. Fix:" in message
    assert "products.parquet: not a Parquet file: it is a ZIP archive (an .xlsx workbook is one)" in message
    assert "email_events.parquet: column occurred_at: 1 of the first 1 values" in message
    assert "look like epoch seconds" in message


def test_day_first_timestamps_are_a_format_problem_described_by_shape_never_by_value(tmp_path) -> None:
    orders = [{**base_landing()["orders"][0], "order_id": f"O{k}", "ordered_at": f"0{k}/03/2024 12:00"} for k in range(1, 4)]
    report = preflight(landing_folder(tmp_path, orders=orders))
    [problem] = report.problems
    assert "orders.parquet: column ordered_at: 3 of the first 3 values" in problem
    assert "'NN/NN/NNNN NN:NN'" in problem and "03/2024" not in problem
    assert "seconds are required" in problem


def test_timestamps_with_offsets_or_z_pass(tmp_path) -> None:
    orders = [{**base_landing()["orders"][0], "ordered_at": "2024-03-05T13:00:00+01:00"}]
    sends = [{**row, "sent_at": "2024-03-01T10:00:00Z"} for row in base_landing()["sends"]]
    assert preflight(landing_folder(tmp_path, orders=orders, sends=sends)).problems == []


def test_a_few_bad_timestamps_are_left_to_the_quarantine(tmp_path) -> None:
    good = base_landing()["orders"][0]
    orders = [{**good, "order_id": f"O{k}", "ordered_at": "2024-03-05 12:00:00"} for k in range(3)]
    orders.append({**good, "order_id": "O9", "ordered_at": "yesterday"})
    assert preflight(landing_folder(tmp_path, orders=orders)).problems == []


def test_without_a_manifest_the_cut_is_the_latest_event_and_the_run_says_so(tmp_path) -> None:
    report = preflight(landing_folder(tmp_path, manifest=False))
    assert report.problems == []
    # The latest timestamp of base_landing() is the order of 2024-03-05 12:00.
    assert report.extracted_at == datetime(2024, 3, 5, 12, 0)
    assert report.extracted_at_source.startswith("the latest event")
    [note] = report.notes
    assert "No _manifest.json: as of is the latest event in the data, 2024-03-05 12:00:00 UTC" in note


def test_a_far_future_garbage_timestamp_does_not_move_the_cut(tmp_path) -> None:
    good = base_landing()["orders"][0]
    orders = [good, {**good, "order_id": "O2", "ordered_at": "2099-01-01 00:00:00"}]
    assert latest_event_at(landing_folder(tmp_path, manifest=False, orders=orders)) == datetime(2024, 3, 5, 12, 0)


def test_an_offset_moves_the_latest_event_to_utc(tmp_path) -> None:
    orders = [{**base_landing()["orders"][0], "ordered_at": "2024-03-05T14:00:00+02:00"}]
    assert latest_event_at(landing_folder(tmp_path, manifest=False, orders=orders)) == datetime(2024, 3, 5, 12, 0)


def test_a_missing_folder_says_which_and_how_to_fix(tmp_path) -> None:
    [problem] = preflight(tmp_path / "nowhere").problems
    assert "no such folder. Fix: point PIPELINE_LANDING_DIR" in problem


def test_a_shape_keeps_no_letter_or_digit() -> None:
    assert timestamp_shape(" 12/01/2010 8:26am ") == "NN/NN/NNNN N:NNaa"


def test_a_history_too_short_for_the_required_model_is_a_problem_saying_how_many_days_are_needed(tmp_path) -> None:
    # base_landing(): the first send is 2024-03-01, the cut 2024-06-30 00:00 (last day 06-29): 120 days.
    needs = {"purchase": 56, "churn": 84, "yearly": 400}
    report = preflight(landing_folder(tmp_path), needs, required_model="purchase")
    assert report.problems == []
    assert report.notes == [
        "The yearly model needs 400 days of history and the data has 120 days (from 2024-03-01 to 2024-06-29): "
        "it will not be trained."
    ]
    short = preflight(landing_folder(tmp_path), {"purchase": 150}, required_model="purchase")
    assert short.problems == [
        "orders.parquet, sends.parquet: the history is too short to train the purchase model: it needs 150 days "
        "from the first send or order to the export's cut, and the data has 120 days (from 2024-03-01 to "
        "2024-06-29). Fix: export at least 30 more days of history."
    ]


def test_the_history_starts_at_the_first_send_or_order_whichever_is_first(tmp_path) -> None:
    from ml.landing.preflight import first_behaviour_at

    orders = [{**base_landing()["orders"][0], "ordered_at": "2024-02-01T09:00:00+01:00"}]
    assert first_behaviour_at(landing_folder(tmp_path, orders=orders)) == datetime(2024, 2, 1, 8, 0)


def test_a_good_category_mapping_passes_and_dbt_is_told_to_read_it(tmp_path) -> None:
    from ml.landing.categories import EMPTY_CATEGORY_MAPPING, category_mapping_csv

    folder = landing_folder(tmp_path)
    assert category_mapping_csv(folder) == EMPTY_CATEGORY_MAPPING  # optional: without it, revenue ranks
    (folder / "category_mapping.csv").write_text(
        "category,model_category\nGarden & Patio,home\n Kitchen , home\nBooks,media\n")
    assert preflight(folder).problems == []
    assert category_mapping_csv(folder) == folder / "category_mapping.csv"


def test_every_problem_of_a_category_mapping_names_the_file_the_lines_and_the_fix(tmp_path) -> None:
    folder = landing_folder(tmp_path)
    rows = [f"c{k},m{k}" for k in range(7)]  # seven model categories for six slots
    (folder / "category_mapping.csv").write_text(
        "category,model_category\n" + "\n".join(rows) + "\nc0,m0\nc9,\n,m1\nc10,other\n")
    problems = preflight(folder).problems
    assert problems == [
        "category_mapping.csv: line(s) 10, 11 have a blank category or model_category. Fix: fill both, or delete "
        "the line (an unlisted category counts towards the other bucket).",
        "category_mapping.csv: categories 'c0' are listed more than once. Fix: give each category one line, with "
        "one model_category.",
        "category_mapping.csv: 8 model categories ('m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'other'), and the "
        "models have 6 category slots. Fix: map the categories onto at most 6 model categories; leave the rest "
        "out (they count towards the other bucket).",
        "category_mapping.csv: model_category 'other' is the name of the bucket for unlisted categories. Fix: "
        "leave those categories out of the file instead.",
    ]


def test_a_category_mapping_without_its_header_says_which_columns_it_needs(tmp_path) -> None:
    folder = landing_folder(tmp_path)
    (folder / "category_mapping.csv").write_text("stock_code,category\n85123A,home\n")
    assert preflight(folder).problems == [
        "category_mapping.csv: missing column(s) model_category (it has stock_code, category). Fix: write a CSV "
        "with the header category,model_category, one row per product category as products.parquet spells it, "
        "each with the model category it counts towards (at most 6 distinct ones)."
    ]


def test_a_category_mapping_in_a_drop_folder_is_named_as_never_read(tmp_path) -> None:
    folder = landing_folder(tmp_path)
    (folder / "drops" / "2024-07-01").mkdir(parents=True)
    (folder / "drops" / "2024-07-01" / "category_mapping.csv").write_text("category,model_category\nBooks,media\n")
    assert preflight(folder).problems == [
        "drops/2024-07-01/category_mapping.csv: the mapping is read only from the top of the landing folder, never "
        "from a drop. Fix: move it to category_mapping.csv (replacing the old one), or delete it."
    ]
