"""Order-lines exports (one row per invoice line, like UCI Online Retail) to contract v2.

What is derived: the CRM records (one per customer id, signed up at their first line, their
country as an ISO code), the order lines (numbered within their invoice, timestamps with
their UTC offset), the products (median positive unit price). What is never invented:
emails, names, consent, sends: the files of the ESP stay empty (docs/connectors.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.connectors.countries import country_code
from ml.connectors.exports import ConnectorError, ExportColumn, read_export, read_timestamps, require_columns, without_zero_decimals
from ml.connectors.landing_writer import empty_frame, write_new_landing_folder
from ml.vocabulary import CATEGORY_SLOT_COUNT, CURRENCIES, UNCATEGORISED


NO_ESP_DATA_NOTE = (
    "no ESP data: sends, experiments and consent need an ESP export (python -m ml.connectors esp-events ...)"
)

# The ESP's files: an order-lines export has none of their rows.
ESP_TABLES = ("esp_subscribers", "consent_events", "suppressions", "campaigns", "sends", "email_events")


@dataclass(frozen=True)
class OrderLinesColumns:
    """The export's column names; the defaults are the UCI Online Retail export's."""

    invoice: str = "InvoiceNo"
    stock_code: str = "StockCode"
    quantity: str = "Quantity"
    unit_price: str = "UnitPrice"
    customer_id: str = "CustomerID"
    country: str = "Country"
    timestamp: str = "InvoiceDate"

    def wanted(self) -> list[ExportColumn]:
        return [
            ExportColumn("invoice", self.invoice, "--invoice-column"),
            ExportColumn("stock code", self.stock_code, "--stock-code-column"),
            ExportColumn("quantity", self.quantity, "--quantity-column"),
            ExportColumn("unit price", self.unit_price, "--unit-price-column"),
            ExportColumn("customer id", self.customer_id, "--customer-column"),
            ExportColumn("country", self.country, "--country-column"),
            ExportColumn("timestamp", self.timestamp, "--timestamp-column"),
        ]


@dataclass(frozen=True)
class OrderLinesOptions:
    currency: str = "GBP"
    # The IANA zone the export's clock times (timestamps without an offset) are in.
    timezone: str = "UTC"
    # A strptime format for the timestamps; None reads ISO-8601.
    date_format: str | None = None


@dataclass(frozen=True)
class Conversion:
    """A converted export: the landing tables by name, and what the report says."""

    tables: dict[str, pd.DataFrame]
    report: dict


def read_categories(path: Path) -> pd.DataFrame:
    """A `stock_code,category` CSV as a frame of those two text columns."""
    frame = read_export(path)
    header = "give the categories file the header stock_code,category"
    require_columns(frame, path, [ExportColumn("stock code", "stock_code", header), ExportColumn("category", "category", header)])
    return frame[["stock_code", "category"]]


def category_by_stock_code(categories: pd.DataFrame | None, source: str = "--categories") -> dict[str, str]:
    if categories is None:
        return {}
    codes = categories["stock_code"].str.strip()
    names = categories["category"].str.strip()
    pairs = pd.DataFrame({"code": codes, "name": names}).drop_duplicates()
    conflicting = sorted(pairs["code"][pairs["code"].duplicated()].unique())
    if conflicting:
        raise ConnectorError(
            f"{source}: stock codes {conflicting[:5]} are given more than one category. Fix: give each stock code one category."
        )
    return {code: name for code, name in zip(codes, names) if code and name}


def convert_order_lines(
    export: pd.DataFrame,
    *,
    source: Path,
    columns: OrderLinesColumns = OrderLinesColumns(),
    options: OrderLinesOptions = OrderLinesOptions(),
    categories: pd.DataFrame | None = None,
) -> Conversion:
    """Convert an order-lines export (every column text, as read_export returns it) to the
    contract's tables. `source` names the export in messages and in the report."""
    if options.currency not in CURRENCIES:
        raise ConnectorError(f"--currency {options.currency!r} is not accepted by the contract. Fix: pass one of {list(CURRENCIES)}.")
    require_columns(export, source, columns.wanted())
    category_of = category_by_stock_code(categories)
    times = read_timestamps(
        export[columns.timestamp], path=source, column=columns.timestamp, zone_name=options.timezone, date_format=options.date_format
    )
    invoice = export[columns.invoice].str.strip()
    lines = pd.DataFrame(
        {
            "order_id": invoice,
            # 1-based position of the line in its invoice, in the export's order.
            "line_number": (invoice.groupby(invoice, sort=False).cumcount() + 1).astype(str),
            "crm_id": without_zero_decimals(export[columns.customer_id]),
            "product_id": export[columns.stock_code].str.strip(),
            "ordered_at": times.text,
            "quantity": without_zero_decimals(export[columns.quantity]),
            "unit_price": export[columns.unit_price].str.strip(),
            "currency": options.currency,
        }
    )
    quantity = pd.to_numeric(lines["quantity"], errors="coerce")
    unit_price = pd.to_numeric(lines["unit_price"], errors="coerce")

    crm_subscribers, country_report = _crm_subscribers(lines, export[columns.country], times.instants)
    products = _products(lines, unit_price, category_of, options.currency)
    known = times.instants.dropna()
    first_at = lines["ordered_at"][times.instants == known.min()].iloc[0] if len(known) else None
    last_at = lines["ordered_at"][times.instants == known.max()].iloc[0] if len(known) else None
    report = {
        "input": str(source),
        "rows_read": len(export),
        "lines_written": len(lines),
        "cancellation_lines": int((quantity < 0).sum()),
        "lines_without_customer_id": int((lines["crm_id"] == "").sum()),
        "lines_without_timestamp": int((lines["ordered_at"] == "").sum()),
        "lines_with_zero_or_negative_unit_price": int((unit_price <= 0).sum()),
        "customers": len(crm_subscribers),
        **country_report,
        "products": len(products),
        "products_categorised": int((products["category"] != UNCATEGORISED).sum()),
        # Free-form categories fill the models' CATEGORY_SLOT_COUNT category slots (the top ones by
        # revenue, or category_mapping.csv); the rest count towards the other bucket.
        "categories": len(set(products["category"]) - {UNCATEGORISED}),
        "categories_beyond_the_category_slots": max(0, len(set(products["category"]) - {UNCATEGORISED}) - CATEGORY_SLOT_COUNT),
        "first_timestamp": first_at,
        "last_timestamp": last_at,
        "ambiguous_clock_times": times.ambiguous,
        "nonexistent_clock_times": times.nonexistent,
        "currency": options.currency,
        "timezone": options.timezone,
        "note": NO_ESP_DATA_NOTE,
    }
    tables = {
        "crm_subscribers": crm_subscribers,
        "orders": lines,
        "products": products,
        **{table: empty_frame(table) for table in ESP_TABLES},
    }
    return Conversion(tables=tables, report=report)


def _crm_subscribers(lines: pd.DataFrame, country_names: pd.Series, instants: pd.Series) -> tuple[pd.DataFrame, dict]:
    """One CRM record per customer id, in order of first appearance: signed up at their
    earliest line, in that line's country. No email or name: the export has none."""
    people = pd.DataFrame(
        {"crm_id": lines["crm_id"], "signup_at": lines["ordered_at"], "country_name": country_names.str.strip(), "instant": instants}
    ).reset_index(drop=True)
    people["position"] = range(len(people))
    people = people[people["crm_id"] != ""]
    several_countries = int((people[people["country_name"] != ""].groupby("crm_id")["country_name"].nunique() > 1).sum())
    earliest = people.sort_values(["instant", "position"], na_position="last", kind="stable").drop_duplicates("crm_id")
    in_order_of_first_appearance = people.drop_duplicates("crm_id")["crm_id"]
    earliest = earliest.set_index("crm_id").loc[in_order_of_first_appearance].reset_index()
    codes = earliest["country_name"].map(country_code)
    unmapped = earliest.loc[codes.isna(), "country_name"]
    left_blank = earliest.loc[codes.fillna("") == "", "country_name"]
    subscribers = pd.DataFrame(
        {
            "crm_id": earliest["crm_id"],
            "email": "",
            "first_name": "",
            "signup_at": earliest["signup_at"],
            "country": codes.fillna(""),
        }
    ).reset_index(drop=True)
    report = {
        "customers_with_several_countries": several_countries,
        # Country names written blank, with how many customers: regions (European Community),
        # 'Unspecified', and names this connector does not know.
        "countries_left_blank": {name: int(count) for name, count in left_blank.value_counts().sort_index().items()},
        "countries_not_recognised": sorted(set(unmapped)),
    }
    return subscribers, report


def _products(lines: pd.DataFrame, unit_price: pd.Series, category_of: dict[str, str], currency: str) -> pd.DataFrame:
    """One product per stock code, in order of first appearance; its price is the median of
    its positive unit prices (cancellations and free lines say nothing of the list price)."""
    codes = lines["product_id"]
    positive = unit_price.where(unit_price > 0)
    median_price = positive.groupby(codes, sort=False).median()
    product_ids = [code for code in codes.drop_duplicates() if code]
    return pd.DataFrame(
        {
            "product_id": product_ids,
            "category": [category_of.get(code, UNCATEGORISED) for code in product_ids],
            "price": [float(median_price.get(code)) for code in product_ids],
            "currency": currency,
        }
    )


def convert_order_lines_file(
    input_path: Path,
    output_dir: Path,
    *,
    columns: OrderLinesColumns = OrderLinesColumns(),
    options: OrderLinesOptions = OrderLinesOptions(),
    categories_path: Path | None = None,
    encoding: str = "utf-8-sig",
) -> dict:
    """Read the export at `input_path` (never changed), write the landing folder
    `output_dir` (new or empty), and return the report written with it."""
    categories = read_categories(Path(categories_path)) if categories_path is not None else None
    export = read_export(Path(input_path), encoding=encoding)
    conversion = convert_order_lines(export, source=Path(input_path), columns=columns, options=options, categories=categories)
    write_new_landing_folder(Path(output_dir), conversion.tables, "order-lines", conversion.report)
    return conversion.report
