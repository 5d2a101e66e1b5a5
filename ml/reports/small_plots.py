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
    _day_axis(axes, days)
    axes.set_ylabel(ylabel, fontsize=7)
    axes.tick_params(labelsize=6)
    return figure


def _day_axis(axes, days: Sequence) -> None:
    """At most MAX_DAY_LABELS month-day labels under points 0..len(days)-1, the last always among them."""
    step = -(-len(days) // MAX_DAY_LABELS) if len(days) else 1
    labelled = list(range(len(days) - 1, -1, -step))[::-1]
    axes.set_xticks(labelled, [str(days[k])[5:10] for k in labelled])


def cumulative_lift_plot(lifts):
    """Each arm's day-stratified lift over the baseline as it stood on each day, with its
    always-valid band: `lifts` has one row per (through_day, arm) with lift, ci_low, ci_high
    (ml.experiments.bandit_readout.cumulative_lifts), in percentage points."""
    figure, axes = _figure()
    days = sorted(lifts["through_day"].unique())
    x = {day: k for k, day in enumerate(days)}
    for arm, rows in lifts.groupby("arm", sort=True):
        rows = rows.sort_values("through_day")
        position = [x[day] for day in rows["through_day"]]
        line, = axes.plot(position, rows["lift"] * 100, marker="o", markersize=3, linewidth=1, label=str(arm))
        axes.fill_between(position, rows["ci_low"] * 100, rows["ci_high"] * 100, color=line.get_color(), alpha=0.15)
    axes.axhline(0.0, color="#1f2933", linewidth=0.6)
    _day_axis(axes, days)
    axes.set_ylabel(f"lift vs {lifts['baseline'].iloc[0] if len(lifts) else 'baseline'} (pp)", fontsize=7)
    axes.tick_params(labelsize=6)
    if len(lifts):
        axes.legend(fontsize=6, loc="upper left", frameon=False)
    return figure


def posterior_density_plot(allocation, *, points: int = 400):
    """Each arm's Beta(posterior_alpha, posterior_beta) density (scipy) over the range that
    holds all but 1e-4 of every arm's mass: one row per arm of a day's allocation."""
    from scipy import stats

    figure, axes = _figure()
    posteriors = {str(row.arm): stats.beta(row.posterior_alpha, row.posterior_beta)
                  for row in allocation.sort_values("arm").itertuples(index=False)}
    low = min(p.ppf(1e-4) for p in posteriors.values())
    high = max(p.isf(1e-4) for p in posteriors.values())
    grid = np.linspace(low, high, points)
    for arm, posterior in posteriors.items():
        axes.plot(grid * 100, posterior.pdf(grid), linewidth=1, label=arm)
    axes.set_xlabel("conversion rate (%)", fontsize=7)
    axes.set_ylabel("posterior density", fontsize=7)
    axes.tick_params(labelsize=6)
    axes.legend(fontsize=6, loc="upper right", frameon=False)
    return figure


def allocation_plot(allocations):
    """The bandit's weight per arm by allocation day (one row per day and arm)."""
    figure, axes = _figure()
    weights = allocations.pivot(index="allocated_on", columns="arm", values="weight").sort_index()
    for arm in weights.columns:
        axes.plot(range(len(weights)), weights[arm].to_numpy() * 100, marker="o", markersize=3, linewidth=1,
                  label=str(arm))
    _day_axis(axes, list(weights.index))
    axes.set_ylim(0, 100)
    axes.set_ylabel("share of the bandit's traffic (%)", fontsize=7)
    axes.tick_params(labelsize=6)
    axes.legend(fontsize=6, loc="upper left", frameon=False)
    return figure


def png_data_uri(figure) -> str:
    """The figure as a small palette PNG in a data URI (`data:image/png;base64,...`)."""
    from PIL import Image  # matplotlib's own image library

    drawn = io.BytesIO()
    figure.savefig(drawn, format="png", dpi=DPI)
    # A palette PNG: a third of the bytes of matplotlib's RGBA one, for the same picture.
    palette = Image.open(drawn).convert("RGB").quantize(colors=PNG_COLOURS)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def markdown_image(figure, alt: str) -> str:
    """The figure as Markdown with the PNG inline (`![alt](data:image/png;base64,...)`)."""
    return f"![{alt}]({png_data_uri(figure)})"
