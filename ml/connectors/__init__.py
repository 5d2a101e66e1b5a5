"""Connectors: common export shapes converted to contract-v2 landing folders (docs/connectors.md).

`python -m ml.connectors order-lines ...` converts an order-lines export (UCI Online Retail
and the like); `python -m ml.connectors esp-events ...` an ESP's event export. Both read
their input only, and write a landing folder with a connector_report.json.
"""

from ml.connectors.esp_events import EspEventsColumns, EspEventsOptions, convert_esp_events, convert_esp_events_file
from ml.connectors.exports import ConnectorError
from ml.connectors.order_lines import OrderLinesColumns, OrderLinesOptions, convert_order_lines, convert_order_lines_file

__all__ = [
    "ConnectorError",
    "EspEventsColumns",
    "EspEventsOptions",
    "OrderLinesColumns",
    "OrderLinesOptions",
    "convert_esp_events",
    "convert_esp_events_file",
    "convert_order_lines",
    "convert_order_lines_file",
]
