"""Data Docs that render offline: no page asks another host for anything, and the index's
tables are in the HTML instead of drawn by JavaScript from a CDN."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ml.quality import DataDocsSite, validate_table
from ml.reports.offline_docs import MARKER, make_data_docs_offline, make_page_offline, table_rows_html
from tests.ml.test_quality import people, people_suite, write_suite  # noqa: F401 (fixture)

REMOTE = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I)


def _rows(table_html: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", table_html, re.S)


def test_a_built_site_needs_no_other_host_and_its_index_lists_every_validation(people_suite: Path, tmp_path: Path):
    other = write_suite(tmp_path, "orders_fake",
                        [{"type": "expect_column_to_exist", "kwargs": {"column": "order_id"}, "severity": "critical"}])
    docs = DataDocsSite(tmp_path / "docs")
    failing = people()
    failing.loc[1, "person_id"] = "p0"
    validate_table(failing, people_suite, table_name="people", docs=docs)
    validate_table(pd.DataFrame({"order_id": ["o1"]}), other, table_name="orders_fake", docs=docs)
    index = docs.build()
    pages = sorted((tmp_path / "docs").rglob("*.html"))
    assert len(pages) == 5  # the index, 2 suites, 2 validations
    for page in pages:
        text = page.read_text()
        assert MARKER in text, page
        assert not REMOTE.findall(text), (page, REMOTE.findall(text)[:3])
        assert "<script" not in text and "onclick=" not in text, page
    text = index.read_text()
    validations = re.search(r'id="section-1-content-block-2-1-body-table"[^>]*>(.*?)</table>', text, re.S).group(1)
    suites = re.search(r'id="section-1-content-block-2-2-body-table"[^>]*>(.*?)</table>', text, re.S).group(1)
    assert len(_rows(validations)) == 3 and len(_rows(suites)) == 3  # a header row and one row each
    # Every validation row links to its own page, which exists; one failed, one passed.
    linked = set(re.findall(r'href="(validations/[^"]+\.html)"', validations))
    assert len(linked) == 2 and all((tmp_path / "docs" / link).is_file() for link in linked)
    assert validations.count("fa-times") == 1 and validations.count("fa-check-circle") == 1
    # A second pass changes nothing.
    assert make_data_docs_offline(tmp_path / "docs") == 0


def test_table_rows_keep_the_cell_html_and_link_the_row():
    rows = table_rows_html(
        [{"field": "status", "title": "Status"}, {"field": "suite", "title": "Suite <1>"}],
        [{"status": "<i class='fas fa-check-circle'></i>", "suite": '<a href="s.html">s</a>',
          "_table_row_link_path": "v/1.html"}],
    )
    assert rows == (
        "<thead><tr><th>Status</th><th>Suite &lt;1&gt;</th></tr></thead>"
        "<tbody><tr><td><a href=\"v/1.html\"><i class='fas fa-check-circle'></i></a></td>"
        '<td><a href="s.html">s</a></td></tr></tbody>'
    )


def test_a_page_without_a_head_is_refused():
    import pytest

    with pytest.raises(ValueError, match="no </head>"):
        make_page_offline("<html><body>no head</body></html>")
