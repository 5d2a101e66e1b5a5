"""Reads the figures back out of a rendered experiment report, so tests can compare what a
reader sees with what the arm's own counts give (not with words that are always there)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_FIGURE = re.compile(r"^\s*(?P<value>\S+(?: pp)?)\s*(?:\[(?P<low>[^,\]]+(?: pp)?),\s*(?P<high>[^\]]+?)\])?\s*$")


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict]] = {}
        self._table: str | None = None
        self._row: dict | None = None
        self._cell: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "table":
            self._table = attributes.get("id")
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table:
            self._row = {"attrs": attributes, "cells": []}
        elif tag == "td" and self._row is not None:
            self._cell = {"attrs": attributes, "text": ""}

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self._row["cells"].append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:
                self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data


def report_tables(page: str) -> dict[str, list[dict]]:
    parser = _Cells()
    parser.feed(page)
    return parser.tables


def shown_figure(text: str) -> tuple[str, str | None, str | None]:
    """('3.10%', '2.60%', '3.70%') from '3.10% [2.60%, 3.70%]'."""
    match = _FIGURE.match(" ".join(text.split()))
    if not match:
        raise ValueError(f"not a figure with an interval: {text!r}")
    return match["value"], match["low"], match["high"]


def arm_figures(page: str) -> dict[tuple[str, str], tuple[str, str | None, str | None]]:
    """(arm, metric) -> (value, ci_low, ci_high) as shown in the 'Outcomes per arm' table."""
    return {
        (row["attrs"]["data-arm"], cell["attrs"]["data-metric"]): shown_figure(cell["text"])
        for row in report_tables(page)["arms"]
        for cell in row["cells"]
        if "data-metric" in cell["attrs"]
    }


def lift_figures(page: str) -> dict[tuple[str, str, str], tuple[str, str | None, str | None]]:
    """(arm, baseline, metric) -> (absolute lift, ci_low, ci_high) as shown in the 'Lifts' table."""
    return {
        (row["attrs"]["data-arm"], row["attrs"]["data-baseline"], row["attrs"]["data-metric"]): shown_figure(
            row["cells"][4]["text"]
        )
        for row in report_tables(page)["lifts"]
    }


def arm_sizes(page: str) -> dict[str, int]:
    return {row["attrs"]["data-arm"]: int(row["cells"][1]["text"].replace(",", "")) for row in report_tables(page)["arms"]}


def sequential_lift_figures(page: str) -> dict[tuple[str, str, str], dict[str, str]]:
    """(arm, baseline, metric) -> the always-valid interval, its Holm p and the chance to beat,
    as shown in the 'Lifts' table."""
    out = {}
    for row in report_tables(page)["lifts"]:
        cells = {cell["attrs"].get("data-col"): " ".join(cell["text"].split()) for cell in row["cells"]}
        out[(row["attrs"]["data-arm"], row["attrs"]["data-baseline"], row["attrs"]["data-metric"])] = {
            "sequential_ci": cells["sequential_ci"], "holm_p": cells["sequential_p_value_holm"],
            "chance_to_beat": cells["chance_to_beat"],
        }
    return out


def verdicts(page: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(arm, baseline) -> (verdict, reason) from the report's verdict table."""
    return {
        (row["cells"][0]["text"].strip(), row["cells"][1]["text"].strip()):
            (row["attrs"]["data-verdict"], " ".join(row["cells"][3]["text"].split()))
        for row in report_tables(page)["verdicts"]
        if "data-verdict" in row["attrs"]
    }
