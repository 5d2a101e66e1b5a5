"""`python -m ml.connectors <command> ...`: convert a common export shape to a landing folder.

Exit codes: 0 written; 1 the export, an option or the output folder cannot be used (the
message on stderr says why and how to fix it; nothing was written); 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ml.connectors.esp_events import EspEventsColumns, EspEventsOptions, convert_esp_events_file
from ml.connectors.exports import ConnectorError
from ml.connectors.landing_writer import REPORT_FILE
from ml.connectors.order_lines import OrderLinesColumns, OrderLinesOptions, convert_order_lines_file
from ml.vocabulary import CURRENCIES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ml.connectors",
        description="Convert a common export shape to a contract-v2 landing folder (docs/connectors.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    order_lines = commands.add_parser(
        "order-lines",
        help="an order-lines export (one row per invoice line, e.g. UCI Online Retail)",
        description="Write crm_subscribers, orders (order lines) and products, and the ESP's files empty.",
    )
    order_lines.add_argument("input", type=Path, help="the export: CSV or Parquet (never changed)")
    order_lines.add_argument("output", type=Path, help="a new (or empty) folder to write the landing files into")
    order_lines.add_argument("--currency", default="GBP", choices=CURRENCIES, help="the prices' currency (default GBP)")
    _add_time_options(order_lines)
    order_lines.add_argument("--categories", type=Path, metavar="CSV", help="a CSV with columns stock_code,category (else 'uncategorised')")
    defaults = OrderLinesColumns()
    for field, option, role in (
        ("invoice", "--invoice-column", "invoice number"),
        ("stock_code", "--stock-code-column", "stock code"),
        ("quantity", "--quantity-column", "quantity"),
        ("unit_price", "--unit-price-column", "unit price"),
        ("customer_id", "--customer-column", "customer id"),
        ("country", "--country-column", "country name"),
        ("timestamp", "--timestamp-column", "invoice time"),
    ):
        order_lines.add_argument(option, dest=field, default=getattr(defaults, field), metavar="NAME", help=f"the {role} column (default %(default)s)")

    esp_events = commands.add_parser(
        "esp-events",
        help="an ESP event export (one row per recipient, campaign, event and time)",
        description="Write esp_subscribers, campaigns, sends and email_events.",
    )
    esp_events.add_argument("input", type=Path, help="the export: CSV or Parquet (never changed)")
    esp_events.add_argument("output", type=Path, help="a new (or empty) folder, or with --into-existing an order-lines folder")
    esp_events.add_argument(
        "--into-existing",
        action="store_true",
        help="add the ESP files to an existing landing folder, replacing only its empty ESP files",
    )
    _add_time_options(esp_events)
    esp_defaults = EspEventsColumns()
    for field, option, role in (
        ("recipient", "--recipient-column", "recipient email"),
        ("campaign", "--campaign-column", "campaign"),
        ("event_type", "--event-column", "event type"),
        ("timestamp", "--timestamp-column", "event time"),
    ):
        esp_events.add_argument(option, dest=field, default=getattr(esp_defaults, field), metavar="NAME", help=f"the {role} column (default %(default)s)")
    return parser


def _add_time_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--timezone", default="UTC", help="IANA zone of the export's timestamps without an offset (default UTC)"
    )
    command.add_argument(
        "--date-format",
        help="strptime format of the timestamps, e.g. '%%m/%%d/%%Y %%H:%%M' for UCI's 12/1/2010 8:26 (default ISO-8601)",
    )
    command.add_argument("--encoding", default="utf-8-sig", help="a CSV export's text encoding (default UTF-8)")


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.command == "order-lines":
            report = convert_order_lines_file(
                arguments.input,
                arguments.output,
                columns=OrderLinesColumns(
                    **{field: getattr(arguments, field) for field in OrderLinesColumns.__dataclass_fields__}
                ),
                options=OrderLinesOptions(
                    currency=arguments.currency, timezone=arguments.timezone, date_format=arguments.date_format
                ),
                categories_path=arguments.categories,
                encoding=arguments.encoding,
            )
            summary = (
                f"{report['lines_written']} order lines ({report['cancellation_lines']} cancellations, "
                f"{report['lines_without_customer_id']} without a customer id), {report['customers']} customers, "
                f"{report['products']} products"
            )
        else:
            report = convert_esp_events_file(
                arguments.input,
                arguments.output,
                into_existing=arguments.into_existing,
                columns=EspEventsColumns(
                    **{field: getattr(arguments, field) for field in EspEventsColumns.__dataclass_fields__}
                ),
                options=EspEventsOptions(timezone=arguments.timezone, date_format=arguments.date_format),
                encoding=arguments.encoding,
            )
            summary = (
                f"{report['subscribers']} ESP contacts, {report['campaigns']} campaigns, {report['sends']} sends, "
                f"{report['events_written']} email events ({sum(report['unknown_event_types'].values())} of unknown type)"
            )
    except ConnectorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Wrote {summary} to {arguments.output}; report: {arguments.output / REPORT_FILE}. Note: {report['note']}.")
    return 0
