"""The small plots on the asset pages draw what they are given, stay small and cheap."""

from __future__ import annotations

import base64
import io
import re
from datetime import date, timedelta

import numpy as np

from ml.reports.small_plots import DPI, FIGURE_INCHES, SCORE_BINS, daily_counts, markdown_image, score_histogram


def _png(markdown: str) -> bytes:
    (encoded,) = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown).groups()
    return base64.b64decode(encoded)


def test_the_histogram_counts_every_score_in_its_bin_and_marks_the_mean():
    scores = np.random.default_rng(3).beta(2, 20, size=20_000)
    figure = score_histogram(scores)
    (axes,) = figure.axes
    heights = [patch.get_height() for patch in axes.patches]
    expected, _ = np.histogram(scores, bins=SCORE_BINS, range=(0, scores.max()))
    assert heights == expected.tolist() and sum(heights) == 20_000
    (mean_line,) = axes.lines
    assert mean_line.get_xdata()[0] == scores.mean()


def test_the_daily_series_has_one_bar_per_day_with_its_count():
    days = [date(2026, 7, 1) + timedelta(days=k) for k in range(5)]
    figure = daily_counts(days, [6695, 6690, 0, 6611, 12], ylabel="sends")
    (axes,) = figure.axes
    assert [patch.get_height() for patch in axes.patches] == [6695, 6690, 0, 6611, 12]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["07-01", "07-02", "07-03", "07-04", "07-05"]
    # A month: at most eight dates, the last day among them.
    month = [date(2026, 6, 1) + timedelta(days=k) for k in range(30)]
    labels = [label.get_text() for label in daily_counts(month, range(30), ylabel="sends").axes[0].get_xticklabels()]
    assert len(labels) == 8 and labels[-1] == "06-30" and labels[0] == "06-02"


def test_an_embedded_plot_is_a_small_png():
    # Its speed (about 0.15 s warm) is not asserted here: a timed unit test fails on a busy
    # machine (0.44 s under a load of 10), and speed targets belong to `make bench`.
    import matplotlib.image

    scores = np.random.default_rng(4).beta(2, 20, size=20_000)
    markdown = markdown_image(score_histogram(scores), "scores of the day")
    png = _png(markdown)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (FIGURE_INCHES[1] * DPI, FIGURE_INCHES[0] * DPI)
    assert len(png) < 5_000, len(png)
    month = [date(2026, 6, 1) + timedelta(days=k) for k in range(30)]
    series = _png(markdown_image(daily_counts(month, range(6_000, 6_030), ylabel="sends"), "sends per day"))
    assert len(series) < 5_000, len(series)
