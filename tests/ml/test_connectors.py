"""ml.connectors: order-lines and ESP event exports to contract-v2 landing folders."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.connectors.cli import main
from ml.connectors.countries import country_code
from ml.connectors.esp_events import contract_event_type
from ml.connectors.exports import ConnectorError, read_timestamps, without_zero_decimals
from ml.connectors.landing_writer import CONNECTOR_COLUMNS
from ml.connectors.order_lines import OrderLinesOptions, category_by_stock_code, convert_order_lines
from ml.landing.contract import LANDING_COLUMNS, OPTIONAL_COLUMNS, landing_folder_problems
from tests.fixtures.order_lines_export import DATE_FORMAT, write_order_lines_export

UCI_DATE_FORMAT = ["--date-format", "%m/%d/%Y %H:%M"]

# Three invoices and a cancellation, in Europe/London clock time across the switch to summer
# time (2011-03-27 01:00 GMT): a line without a customer id, UCI's 'EIRE' and float ids.
ORDER_LINES_CSV = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,3/26/2011 8:26,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,3/26/2011 8:26,3.39,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,12,3/28/2011 9:00,1.85,,United Kingdom
C536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,3/29/2011 10:15,2.55,17850.0,United Kingdom
536368,85123A,WHITE HANGING HEART T-LIGHT HOLDER,3,3/27/2011 11:30,2.75,12583.0,EIRE
536364,22633,HAND WARMER UNION JACK,1,3/25/2011 17:00,1.85,12583.0,EIRE
"""

EXPECTED_ORDERS = [
    # order_id, line_number, crm_id, product_id, ordered_at, quantity, unit_price, currency
    ("536365", "1", "17850", "85123A", "2011-03-26T08:26:00+00:00", "6", "2.55", "GBP"),
    ("536365", "2", "17850", "71053", "2011-03-26T08:26:00+00:00", "6", "3.39", "GBP"),
    ("536366", "1", "", "22633", "2011-03-28T09:00:00+01:00", "12", "1.85", "GBP"),
    ("C536367", "1", "17850", "85123A", "2011-03-29T10:15:00+01:00", "-2", "2.55", "GBP"),
    ("536368", "1", "12583", "85123A", "2011-03-27T11:30:00+01:00", "3", "2.75", "GBP"),
    ("536364", "1", "12583", "22633", "2011-03-25T17:00:00+00:00", "1", "1.85", "GBP"),
]

# Recipients in two spellings, two campaigns, every kind of type spelling, an unknown type
# and a row without a recipient; Europe/London clock times (March GMT, April BST).
ESP_EVENTS_CSV = """email,campaign,event,timestamp
Ann@Example.com,Spring Sale,sent,2011-03-01 09:00:00
 ann@example.com,Spring Sale,Delivered,2011-03-01 09:00:05
ann@example.com,Spring Sale,Open,2011-03-01 10:00:00
bob@example.com,Spring Sale,clicked,2011-03-01 11:00:00
bob@example.com,Spring Sale,opened,2011-03-01 10:30:00
ann@example.com,Easter,hard_bounce,2011-04-01 08:00:00
bob@example.com,Easter,spamreport,2011-04-02 08:00:00
ann@example.com,Easter,unsubscribed,2011-04-03 08:00:00
bob@example.com,Easter,forwarded,2011-04-02 09:00:00
,Easter,open,2011-04-02 09:30:00
bob@example.com,Spring Sale,delivered,2011-03-01 10:45:00
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _rows(path: Path) -> list[tuple]:
    return list(pd.read_parquet(path).itertuples(index=False, name=None))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _convert_order_lines(tmp_path: Path, *extra: str) -> Path:
    export = _write(tmp_path / "online_retail.csv", ORDER_LINES_CSV)
    output = tmp_path / "landing"
    assert main(["order-lines", str(export), str(output), "--timezone", "Europe/London", *UCI_DATE_FORMAT, *extra]) == 0
    return output


# --- order-lines ----------------------------------------------------------------------


def test_order_lines_become_contract_v2_order_lines_customers_and_products(tmp_path):
    categories = _write(tmp_path / "categories.csv", "stock_code,category\n85123A,home\n")
    output = _convert_order_lines(tmp_path, "--categories", str(categories))

    assert _rows(output / "orders.parquet") == EXPECTED_ORDERS
    assert _rows(output / "crm_subscribers.parquet") == [
        # signed up at their first line (by time, not file order), country as ISO code
        ("17850", "", "", "2011-03-26T08:26:00+00:00", "GB"),
        ("12583", "", "", "2011-03-25T17:00:00+00:00", "IE"),
    ]
    # price: the median positive unit price (2.55, 2.55, 2.75; the cancellation's -2 units
    # are a quantity, their price is still positive and counts)
    assert _rows(output / "products.parquet") == [
        ("85123A", "home", 2.55, "GBP"),
        ("71053", "uncategorised", 3.39, "GBP"),
        ("22633", "uncategorised", 1.85, "GBP"),
    ]
    assert not (output / "_manifest.json").exists()
    report = json.loads((output / "connector_report.json").read_text())["order-lines"]
    assert {key: report[key] for key in (
        "rows_read", "lines_written", "cancellation_lines", "lines_without_customer_id", "customers", "products",
        "products_categorised", "categories", "categories_beyond_the_category_slots", "first_timestamp",
        "last_timestamp", "currency", "timezone",
    )} == {
        "rows_read": 6,
        "lines_written": 6,
        "cancellation_lines": 1,
        "lines_without_customer_id": 1,
        "customers": 2,
        "products": 3,
        "products_categorised": 1,
        "categories": 1,  # home; 'uncategorised' is no category
        "categories_beyond_the_category_slots": 0,
        "first_timestamp": "2011-03-25T17:00:00+00:00",
        "last_timestamp": "2011-03-29T10:15:00+01:00",
        "currency": "GBP",
        "timezone": "Europe/London",
    }
    assert report["note"] == (
        "no ESP data: sends, experiments and consent need an ESP export (python -m ml.connectors esp-events ...)"
    )


def test_every_contract_file_is_written_with_text_columns_except_product_price(tmp_path):
    output = _convert_order_lines(tmp_path)

    for table in LANDING_COLUMNS:
        schema = pq.read_schema(output / f"{table}.parquet")
        assert tuple(schema.names) == CONNECTOR_COLUMNS[table]
        expected = {name: pa.float64() if name == "price" else pa.string() for name in schema.names}
        assert {field.name: field.type for field in schema} == expected, table
    for table in ("esp_subscribers", "consent_events", "suppressions", "campaigns", "sends", "email_events"):
        assert pq.read_metadata(output / f"{table}.parquet").num_rows == 0


def test_orders_are_contract_v2_order_lines():
    assert set(CONNECTOR_COLUMNS["orders"]) == set(LANDING_COLUMNS["orders"]) - {"amount"} | {"line_number", "quantity", "unit_price"}
    if "quantity" not in OPTIONAL_COLUMNS.get("orders", ()):
        pytest.skip("this branch's landing contract is still v1 (orders need amount); v2 order lines arrive with issue 13")
    allowed = set(LANDING_COLUMNS["orders"]) | set(OPTIONAL_COLUMNS["orders"])
    assert set(CONNECTOR_COLUMNS["orders"]) <= allowed


def test_the_written_folder_passes_the_landing_contract_check(tmp_path):
    output = _convert_order_lines(tmp_path)
    problems, rows = landing_folder_problems(output)
    if "amount" in LANDING_COLUMNS["orders"]:
        # Contract v1 on this branch: the only problem is the order lines' missing amount.
        assert problems == [p for p in problems if p.startswith("orders.parquet: missing columns ['amount']")]
        assert len(problems) == 1
    else:
        assert problems == []
    assert rows["orders"] == 6 and rows["crm_subscribers"] == 2


def test_the_export_is_never_changed(tmp_path):
    export = _write(tmp_path / "online_retail.csv", ORDER_LINES_CSV)
    before = _sha256(export)
    assert main(["order-lines", str(export), str(tmp_path / "out"), "--timezone", "Europe/London", *UCI_DATE_FORMAT]) == 0
    assert _sha256(export) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["online_retail.csv", "out"]


def test_a_missing_column_names_the_file_the_column_the_columns_found_and_the_option(tmp_path, capsys):
    export = _write(tmp_path / "shop.csv", ORDER_LINES_CSV.replace("CustomerID", "Customer ID"))
    output = tmp_path / "landing"

    assert main(["order-lines", str(export), str(output), *UCI_DATE_FORMAT]) == 1
    message = capsys.readouterr().err
    assert str(export) in message
    assert "no column 'CustomerID' for the customer id" in message
    assert "'Customer ID'" in message and "'InvoiceNo'" in message  # the columns found
    assert "--customer-column" in message
    assert not output.exists()

    assert main(["order-lines", str(export), str(output), *UCI_DATE_FORMAT, "--customer-column", "Customer ID"]) == 0


def test_a_non_empty_output_folder_is_refused_and_left_as_it_was(tmp_path, capsys):
    export = _write(tmp_path / "online_retail.csv", ORDER_LINES_CSV)
    output = tmp_path / "landing"
    output.mkdir()
    (output / "notes.txt").write_text("mine")

    assert main(["order-lines", str(export), str(output), *UCI_DATE_FORMAT]) == 1
    message = capsys.readouterr().err
    assert f"{output}: the output folder already exists and is not empty. Nothing was written." in message
    assert [p.name for p in output.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing", "online_retail.csv"]  # no partial left


def test_a_categories_file_without_its_header_is_refused(tmp_path, capsys):
    export = _write(tmp_path / "online_retail.csv", ORDER_LINES_CSV)
    categories = _write(tmp_path / "categories.csv", "code,category\n85123A,home\n")
    assert main(["order-lines", str(export), str(tmp_path / "out"), *UCI_DATE_FORMAT, "--categories", str(categories)]) == 1
    message = capsys.readouterr().err
    assert f"{categories}: no column 'stock_code' for the stock code (fix: give the categories file the header" in message


def test_an_empty_output_folder_is_used(tmp_path):
    (tmp_path / "landing").mkdir()
    output = _convert_order_lines(tmp_path)
    assert (output / "orders.parquet").exists()


def test_timestamps_not_in_the_stated_format_stop_the_conversion_with_the_fix(tmp_path, capsys):
    export = _write(tmp_path / "online_retail.csv", ORDER_LINES_CSV)

    assert main(["order-lines", str(export), str(tmp_path / "a")]) == 1  # no --date-format: ISO expected
    message = capsys.readouterr().err
    assert "6 of 6 rows have a InvoiceDate that is not a timestamp in ISO-8601" in message
    assert "--date-format '%m/%d/%Y %H:%M'" in message

    broken = _write(tmp_path / "broken.csv", ORDER_LINES_CSV.replace("3/28/2011 9:00", "28.03.2011 09:00"))
    assert main(["order-lines", str(broken), str(tmp_path / "b"), *UCI_DATE_FORMAT]) == 1
    assert "1 of 6 rows" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_export_in_another_encoding_names_the_encoding_option(tmp_path, capsys):
    export = tmp_path / "online_retail.csv"
    export.write_bytes(ORDER_LINES_CSV.replace("HAND WARMER", "CAFÉ WARMER").encode("latin-1"))
    assert main(["order-lines", str(export), str(tmp_path / "a"), *UCI_DATE_FORMAT]) == 1
    assert "not utf-8-sig text" in capsys.readouterr().err
    assert main(["order-lines", str(export), str(tmp_path / "b"), *UCI_DATE_FORMAT, "--encoding", "latin-1"]) == 0


def test_parquet_exports_with_float_ids_read_as_their_text(tmp_path):
    export = tmp_path / "lines.parquet"
    pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536366"],
            "StockCode": ["85123A", "22633"],
            "Quantity": [6, -1],
            "UnitPrice": [2.55, 1.85],
            "CustomerID": [17850.0, np.nan],
            "Country": ["USA", "RSA"],
            "InvoiceDate": ["2010-12-01 08:26:00", "2010-12-01T09:00:00+01:00"],
        }
    ).to_parquet(export)

    assert main(["order-lines", str(export), str(tmp_path / "out"), "--currency", "USD"]) == 0
    assert _rows(tmp_path / "out" / "orders.parquet") == [
        ("536365", "1", "17850", "85123A", "2010-12-01T08:26:00+00:00", "6", "2.55", "USD"),
        # an offset in the export is kept, whatever --timezone says
        ("536366", "1", "", "22633", "2010-12-01T09:00:00+01:00", "-1", "1.85", "USD"),
    ]
    assert _rows(tmp_path / "out" / "crm_subscribers.parquet") == [("17850", "", "", "2010-12-01T08:26:00+00:00", "US")]


def test_unknown_currency_and_conflicting_categories_are_refused():
    export = pd.read_csv(io.StringIO(ORDER_LINES_CSV), dtype=str, keep_default_na=False)
    with pytest.raises(ConnectorError, match=r"--currency 'JPY' is not accepted.*'USD', 'EUR', 'GBP'"):
        convert_order_lines(export, source=Path("x.csv"), options=OrderLinesOptions(currency="JPY", date_format=DATE_FORMAT))
    with pytest.raises(ConnectorError, match=r"stock codes \['85123A'\] are given more than one category"):
        category_by_stock_code(pd.DataFrame({"stock_code": ["85123A", "85123A", "1"], "category": ["home", "toys", "toys"]}))
    assert category_by_stock_code(pd.DataFrame({"stock_code": ["85123A", "85123A"], "category": ["home", "home"]})) == {
        "85123A": "home"
    }


@pytest.mark.parametrize(
    "name, code",
    [
        ("United Kingdom", "GB"),
        ("EIRE", "IE"),
        (" ireland ", "IE"),
        ("USA", "US"),
        ("RSA", "ZA"),
        ("Channel Islands", "JE"),
        ("European Community", ""),
        ("Unspecified", ""),
        ("", ""),
        ("Germany", "DE"),
        ("czech  republic", "CZ"),
        ("de", "DE"),
        ("Atlantis", None),
    ],
)
def test_country_names_map_to_iso_codes(name, code):
    assert country_code(name) == code


def test_unknown_countries_are_left_blank_and_reported(tmp_path):
    export = _write(tmp_path / "e.csv", ORDER_LINES_CSV.replace("EIRE", "Atlantis").replace("17850.0,United Kingdom", "17850.0,Unspecified"))
    assert main(["order-lines", str(export), str(tmp_path / "out"), *UCI_DATE_FORMAT]) == 0
    assert [row[4] for row in _rows(tmp_path / "out" / "crm_subscribers.parquet")] == ["", ""]
    report = json.loads((tmp_path / "out" / "connector_report.json").read_text())["order-lines"]
    assert report["countries_left_blank"] == {"Atlantis": 1, "Unspecified": 1}
    assert report["countries_not_recognised"] == ["Atlantis"]


def test_clock_times_are_read_in_their_zone_across_both_dst_changes():
    values = pd.Series(
        [
            "2011-03-27 00:30:00",  # GMT
            "2011-03-27 01:30:00",  # never on a London clock: read with the offset before the change
            "2011-03-27 02:30:00",  # BST
            "2011-10-30 01:30:00",  # twice on a London clock: the first (BST)
            "2011-10-30T01:30:00+00:00",  # the second, given by its offset
            "",
        ]
    )
    times = read_timestamps(values, path=Path("x.csv"), column="at", zone_name="Europe/London", date_format=None)
    assert times.text.to_list() == [
        "2011-03-27T00:30:00+00:00",
        "2011-03-27T02:30:00+01:00",
        "2011-03-27T02:30:00+01:00",
        "2011-10-30T01:30:00+01:00",
        "2011-10-30T01:30:00+00:00",
        "",
    ]
    assert times.instants.dt.strftime("%H:%M").to_list()[:5] == ["00:30", "01:30", "01:30", "00:30", "01:30"]
    assert times.instants.isna().to_list() == [False] * 5 + [True]
    assert (times.nonexistent, times.ambiguous) == (1, 1)


def test_an_unknown_zone_is_refused():
    with pytest.raises(ConnectorError, match="--timezone 'Europe/Londn' is not an IANA time zone name"):
        read_timestamps(pd.Series(["2011-01-01 00:00:00"]), path=Path("x"), column="at", zone_name="Europe/Londn", date_format=None)


def test_whole_numbers_written_as_floats_lose_their_zero_decimals():
    values = pd.Series(["17850.0", " 12583 ", "-2.00", "2.55", "", "A12.0"])
    assert without_zero_decimals(values).to_list() == ["17850", "12583", "-2", "2.55", "", "A12.0"]


# --- esp-events ------------------------------------------------------------------------


def _convert_esp_events(tmp_path: Path, output: Path, *extra: str) -> int:
    export = tmp_path / "esp_events.csv"
    if not export.exists():
        _write(export, ESP_EVENTS_CSV)
    return main(["esp-events", str(export), str(output), "--timezone", "Europe/London", *extra])


def test_esp_events_become_contacts_campaigns_sends_and_email_events(tmp_path):
    output = tmp_path / "landing"
    assert _convert_esp_events(tmp_path, output) == 0

    assert _rows(output / "esp_subscribers.parquet") == [
        ("E0000001", "Ann@Example.com", "", "2011-03-01T09:00:00+00:00"),  # the email as first given
        ("E0000002", "bob@example.com", "", "2011-03-01T10:30:00+00:00"),
    ]
    assert _rows(output / "campaigns.parquet") == [
        ("K0000001", "Spring Sale", "general", "", "2011-03-01T09:00:00+00:00"),
        ("K0000002", "Easter", "general", "", "2011-04-01T08:00:00+01:00"),
    ]
    assert _rows(output / "sends.parquet") == [
        ("S0000001", "K0000001", "E0000001", "2011-03-01T09:00:00+00:00"),  # its 'sent' event
        # its delivery, though the ESP's clock put an open before it
        ("S0000002", "K0000001", "E0000002", "2011-03-01T10:45:00+00:00"),
        ("S0000003", "K0000002", "E0000001", "2011-04-01T08:00:00+01:00"),
        ("S0000004", "K0000002", "E0000002", "2011-04-02T08:00:00+01:00"),
    ]
    assert _rows(output / "email_events.parquet") == [
        ("EV0000001", "S0000001", "E0000001", "delivered", "2011-03-01T09:00:05+00:00"),
        ("EV0000002", "S0000001", "E0000001", "open", "2011-03-01T10:00:00+00:00"),
        ("EV0000003", "S0000002", "E0000002", "click", "2011-03-01T11:00:00+00:00"),
        ("EV0000004", "S0000002", "E0000002", "open", "2011-03-01T10:30:00+00:00"),
        ("EV0000005", "S0000003", "E0000001", "bounce", "2011-04-01T08:00:00+01:00"),
        ("EV0000006", "S0000004", "E0000002", "complaint", "2011-04-02T08:00:00+01:00"),
        ("EV0000007", "S0000003", "E0000001", "unsubscribe", "2011-04-03T08:00:00+01:00"),
        ("EV0000008", "S0000004", "E0000002", "forwarded", "2011-04-02T09:00:00+01:00"),  # kept: quarantined downstream
        ("EV0000009", "", "", "open", "2011-04-02T09:30:00+01:00"),  # no recipient: quarantined downstream
        ("EV0000010", "S0000002", "E0000002", "delivered", "2011-03-01T10:45:00+00:00"),
    ]
    for table in ("crm_subscribers", "consent_events", "suppressions", "products", "orders"):
        assert pq.read_metadata(output / f"{table}.parquet").num_rows == 0
    report = json.loads((output / "connector_report.json").read_text())["esp-events"]
    assert report["unknown_event_types"] == {"forwarded": 1}
    assert report["rows_without_contract_event"] == {"sent": 1}
    assert report["rows_without_recipient"] == 1
    assert (report["subscribers"], report["campaigns"], report["sends"], report["events_written"]) == (2, 2, 4, 10)
    assert report["note"].startswith("no consent: being mailed is not consent")


def test_esp_ids_are_sequences_that_say_nothing_of_the_email(tmp_path):
    other = ESP_EVENTS_CSV.replace("ann@example.com", "zed@example.org").replace("Ann@Example.com", "zed@example.org")
    _write(tmp_path / "esp_events.csv", other)
    assert _convert_esp_events(tmp_path, tmp_path / "landing") == 0
    ids = [row[0] for row in _rows(tmp_path / "landing" / "esp_subscribers.parquet")]
    assert ids == ["E0000001", "E0000002"]


@pytest.mark.parametrize(
    "written, contract",
    [
        ("opened", "open"),
        ("Open", "open"),
        ("clicked", "click"),
        ("hard_bounce", "bounce"),
        ("Hard Bounce", "bounce"),
        ("spamreport", "complaint"),
        ("unsubscribed", "unsubscribe"),
        ("delivered", "delivered"),
        ("sent", None),
        ("soft-bounce", None),
        ("forwarded", "forwarded"),
    ],
)
def test_event_type_spellings_map_to_the_contract(written, contract):
    assert contract_event_type(written) == contract


def test_into_existing_adds_the_esp_files_to_an_order_lines_folder(tmp_path):
    output = _convert_order_lines(tmp_path)
    order_files = {name: _sha256(output / name) for name in ("crm_subscribers.parquet", "orders.parquet", "products.parquet")}

    assert _convert_esp_events(tmp_path, output, "--into-existing") == 0
    assert pq.read_metadata(output / "email_events.parquet").num_rows == 10
    assert {name: _sha256(output / name) for name in order_files} == order_files
    assert set(json.loads((output / "connector_report.json").read_text())) == {"order-lines", "esp-events"}
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")]


def test_into_existing_never_replaces_rows(tmp_path, capsys):
    output = _convert_order_lines(tmp_path)
    assert _convert_esp_events(tmp_path, output, "--into-existing") == 0
    before = _sha256(output / "sends.parquet")

    assert _convert_esp_events(tmp_path, output, "--into-existing") == 1
    assert "already hold rows, which --into-existing never replaces. Nothing was written." in capsys.readouterr().err
    assert _sha256(output / "sends.parquet") == before


def test_into_existing_needs_the_folder_to_exist(tmp_path, capsys):
    assert _convert_esp_events(tmp_path, tmp_path / "nowhere", "--into-existing") == 1
    assert "--into-existing needs an existing folder" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_esp_events_without_the_flag_refuse_an_order_lines_folder_and_name_the_flag(tmp_path, capsys):
    output = _convert_order_lines(tmp_path)
    assert _convert_esp_events(tmp_path, output) == 1
    assert "pass --into-existing" in capsys.readouterr().err
    assert pq.read_metadata(output / "sends.parquet").num_rows == 0


def test_esp_events_missing_column_names_its_option(tmp_path, capsys):
    _write(tmp_path / "esp_events.csv", ESP_EVENTS_CSV.replace("event,", "activity,", 1))
    assert _convert_esp_events(tmp_path, tmp_path / "landing") == 1
    message = capsys.readouterr().err
    assert "no column 'event' for the event type" in message and "--event-column" in message and "'activity'" in message


# --- the fixture other tests convert ---------------------------------------------------


def test_the_order_lines_fixture_is_plausible_and_deterministic(tmp_path):
    facts = write_order_lines_export(tmp_path / "a.csv")
    write_order_lines_export(tmp_path / "b.csv")
    assert _sha256(tmp_path / "a.csv") == _sha256(tmp_path / "b.csv")

    lines = pd.read_csv(tmp_path / "a.csv", dtype=str, keep_default_na=False)
    assert len(lines) == facts.rows > 5_000
    at = pd.to_datetime(lines["InvoiceDate"], format=DATE_FORMAT)
    assert (at.max() - at.min()).days >= 90
    assert at.dt.to_period("W").nunique() == (at.max().to_period("W") - at.min().to_period("W")).n + 1  # every week
    invoices = lines.drop_duplicates("InvoiceNo")
    assert 0.01 <= invoices["InvoiceNo"].str.startswith("C").mean() <= 0.06
    assert 0.02 <= (lines["CustomerID"] == "").mean() <= 0.05
    assert lines["Country"].nunique() >= 5
    orders_per_customer = invoices[invoices["CustomerID"] != ""].groupby("CustomerID").size()
    assert orders_per_customer.max() >= 10 and (orders_per_customer == 1).sum() >= 10  # varied frequency

    # Each cancellation line takes back units an earlier purchase of the customer bought.
    cancelled = lines[lines["InvoiceNo"].str.startswith("C")]
    assert (cancelled["Quantity"].astype(int) < 0).all()
    purchases = lines[~lines["InvoiceNo"].str.startswith("C")].assign(at=at)
    for _, line in cancelled.assign(at=at).iterrows():
        earlier = purchases[
            (purchases["CustomerID"] == line["CustomerID"])
            & (purchases["StockCode"] == line["StockCode"])
            & (purchases["at"] <= line["at"])
        ]
        assert (earlier["Quantity"].astype(int) >= -int(line["Quantity"])).any()


def test_the_order_lines_fixture_converts_with_the_counts_it_promises(tmp_path):
    facts = write_order_lines_export(tmp_path / "uci.csv", months=4, customers=120, seed=3)
    output = tmp_path / "landing"
    assert main(["order-lines", str(tmp_path / "uci.csv"), str(output), "--timezone", "Europe/London", *UCI_DATE_FORMAT]) == 0
    report = json.loads((output / "connector_report.json").read_text())["order-lines"]
    assert report["lines_written"] == facts.rows
    assert report["lines_without_customer_id"] == facts.lines_without_customer_id
    assert report["customers"] == facts.customers_with_orders
    assert report["countries_left_blank"].keys() <= {"Unspecified"}
    assert report["countries_not_recognised"] == []
