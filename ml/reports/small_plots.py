"""Small plots for the orchestrator's asset pages: a few KB of PNG each, embedded in Markdown
as a data URI, so the Dagster UI shows them with no file or server behind them.

Plain matplotlib `Figure` objects (no pyplot: no process-wide figure state). The figure
builders return the figure, so tests read what was drawn; `markdown_image` encodes it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from datetime import date

import numpy as np

# 320 x 160 pixels: readable in an asset's metadata panel, a few KB as PNG.
FIGURE_INCHES = (4.0, 2.0)
DPI = 80
SCORE_BINS = 20
MAX_DAY_LABELS = 8
# Colours of the encoded PNG: a few flat colours plus anti-aliasing need no more.
PNG_COLOURS = 32


def _figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_INCHES, dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def score_histogram(scores: Sequence[float] | np.ndarray, *, bins: int = SCORE_BINS):
    """The day's scores in ``bins`` equal-width bins over [0, max score], with their mean."""
    values = np.asarray(scores, dtype="float64")
    figure, axes = _figure()
    top = float(values.max()) if values.size else 1.0
    axes.hist(values, bins=bins, range=(0.0, top if top > 0 else 1.0), color="#4c78a8")
    if values.size:
        axes.axvline(float(values.mean()), color="#e45756", linewidth=1, label=f"mean {values.mean():.3f}")
        axes.legend(fontsize=7, loc="upper right", frameon=False)
    axes.set_xlabel("propensity score", fontsize=7)
    axes.set_ylabel("subscribers", fontsize=7)
    axes.tick_params(labelsize=6)
    return figure


def daily_counts(days: Sequence[date], counts: Sequence[int], *, ylabel: str):
    """One bar per day (e.g. the sends planned for each day)."""
    figure, axes = _figure()
    axes.bar(range(len(days)), list(counts), color="#4c78a8")
    # At most MAX_DAY_LABELS dates under the bars, the last day always among them.
    step = -(-len(days) // MAX_DAY_LABELS) if days else 1
    labelled = list(range(len(days) - 1, -1, -step))[::-1]
    axes.set_xticks(labelled, [days[k].isoformat()[5:] for k in labelled])
    axes.set_ylabel(ylabel, fontsize=7)
    axes.tick_params(labelsize=6)
    return figure


def markdown_image(figure, alt: str) -> str:
    """The figure as Markdown with the PNG inline (`![alt](data:image/png;base64,...)`)."""
    from PIL import Image  # matplotlib's own image library

    drawn = io.BytesIO()
    figure.savefig(drawn, format="png", dpi=DPI)
    # A palette PNG: a third of the bytes of matplotlib's RGBA one, for the same picture.
    palette = Image.open(drawn).convert("RGB").quantize(colors=PNG_COLOURS)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"
