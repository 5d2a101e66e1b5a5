"""The browser harness itself (tests/browser.py), on pages made here: it sees console errors
and blank pages, and a Data Docs site built offline renders. The pipeline's own reports are
rendered in tests/test_pipeline_end_to_end.py, on its end-to-end state."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ml.quality import DataDocsSite, validate_table
from tests.browser import chromium, ink_share, render
from tests.ml.test_quality import people, people_suite  # noqa: F401 (fixture)


def test_the_harness_reports_console_errors_and_blank_pages(tmp_path: Path):
    chromium()
    broken = tmp_path / "broken.html"
    broken.write_text('<html><head><script src="https://cdn.example.com/x.js"></script></head><body>'
                      "<p>.</p><script>console.error('boom'); $('#x');</script></body></html>")
    rendering = render(broken, tmp_path / "b")
    assert any('"boom"' in line for line in rendering.console)
    assert any("$ is not defined" in line for line in rendering.console)  # the CDN never answered
    assert ink_share(rendering.screenshot) < 0.02
    fine = tmp_path / "fine.html"
    fine.write_text("<html><body>" + "<h1>A page with words on it</h1>" * 20 + "</body></html>")
    rendering = render(fine, tmp_path / "f")
    assert rendering.console == () and ink_share(rendering.screenshot) > 0.02


def test_an_offline_data_docs_index_renders_its_tables(people_suite: Path, tmp_path: Path):
    chromium()
    docs = DataDocsSite(tmp_path / "docs")
    validate_table(people(), people_suite, table_name="people", docs=docs)
    rendering = render(docs.build(), tmp_path / "r")
    assert rendering.console == ()
    assert ink_share(rendering.screenshot) > 0.02
