"""The experiment report: one self-contained HTML page (inline CSS, no external assets).

The page is the Jinja2 template `templates/experiment_report.html.j2`, filled from an
`ExperimentSummary`. Autoescaping is on, so nothing from the data can inject markup.
"""

from __future__ import annotations

import io
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from jinja2 import Environment
from markupsafe import Markup

from ml.experiments.bandit import BANDIT_METHOD
from ml.experiments.bayesian import BAYESIAN_METHOD
from ml.experiments.comparisons import HOLM_METHOD
from ml.experiments.cuped import CUPED_METHOD
from ml.experiments.outcomes import PRE_PERIOD_DAYS
from ml.experiments.power import PowerAnalysis
from ml.experiments.readout import GUARDRAIL_METRICS, OUTCOME_METRICS, RATE_NAMES, ExperimentSummary
from ml.experiments.sequential import SEQUENTIAL_METHOD
from ml.reports import template_environment
from ml.experiments.statistics import (
    MEAN_CI_METHOD,
    MEAN_DIFFERENCE_METHOD,
    RATE_CI_METHOD,
    RATE_DIFFERENCE_METHOD,
    SRM_METHOD,
)

MISSING = "–"  # an en dash where a figure cannot be computed (an empty arm, a constant metric)


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _formatter(pattern: str):
    def format_value(value: float | None) -> str:
        return MISSING if _missing(value) else pattern.format(value)

    return format_value


FORMATS = {
    "percent": _formatter("{:.2%}"),
    "signed_percent": _formatter("{:+.2%}"),
    "percentage_points": lambda v: MISSING if _missing(v) else f"{v * 100:+.2f} pp",
    "number": _formatter("{:,.2f}"),
    "signed_number": _formatter("{:+,.2f}"),
    "p_value": lambda v: MISSING if _missing(v) else ("< 0.001" if v < 0.001 else f"{v:.3f}"),
}


def _environment() -> Environment:
    environment = template_environment()
    environment.filters.update(FORMATS)
    environment.filters["attr_fmt"] = lambda value, name: FORMATS[name](value)
    return environment


def allocation_plot_svg(allocations: pd.DataFrame) -> str:
    """The bandit's share of traffic per arm by day (matplotlib, no pyplot), as inline SVG."""
    from matplotlib.figure import Figure

    weights = allocations.pivot(index="allocated_on", columns="arm", values="weight").sort_index()
    figure = Figure(figsize=(7, 3), layout="constrained")
    axes = figure.add_subplot()
    days = [str(day) for day in weights.index]
    for arm in weights.columns:
        axes.plot(days, weights[arm].to_numpy(), marker="o", label=str(arm))
    axes.set(ylim=(0, 1), xlabel="allocation day", ylabel="share of the bandit's traffic",
             title="Bandit allocation over time (the holdout keeps its share)")
    axes.legend(loc="upper left", fontsize="small")
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg"):]


def render_experiment_report(
    summary: ExperimentSummary,
    html_path: str | Path,
    *,
    context: Mapping[str, Any],
    generated_at: datetime | None = None,
    power: PowerAnalysis | None = None,
    bandit_allocations: pd.DataFrame | None = None,
) -> Path:
    """Write the report to `html_path`; return the path. `power`, when given, is the
    declared MDE's power analysis at the current audience. `bandit_allocations`, for a
    campaign declared as a bandit, are its days' allocations (ml.experiments.bandit
    ALLOCATION_COLUMN_TYPES rows): the report then plots and tabulates the allocation over time.

    `context` holds run facts to show (model version, blocks version, run ids, ...). Values
    that look like an email address are refused so the report cannot carry PII.
    """
    for key, value in context.items():
        if "@" in str(key) or "@" in str(value):
            raise ValueError(f"context entry {key!r} looks like it contains an email address")
    generated = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    page = _environment().get_template("experiment_report.html.j2").render(
        summary=summary,
        lifts=list(summary.comparison_table().itertuples(index=False)),
        outcome_metrics=OUTCOME_METRICS,
        guardrail_metrics=GUARDRAIL_METRICS,
        rate_names=RATE_NAMES,
        power=power,
        context={str(key): str(value) for key, value in context.items()},
        generated=generated,
        methods={
            "srm": SRM_METHOD,
            "rate": RATE_CI_METHOD,
            "mean": MEAN_CI_METHOD,
            "rate_difference": RATE_DIFFERENCE_METHOD,
            "mean_difference": MEAN_DIFFERENCE_METHOD,
            "sequential": SEQUENTIAL_METHOD,
            "holm": HOLM_METHOD,
            "bayesian": BAYESIAN_METHOD,
            "cuped": CUPED_METHOD,
        },
        pre_period_days=PRE_PERIOD_DAYS,
        bandit=None if bandit_allocations is None else {
            "rows": list(bandit_allocations.sort_values(["allocated_on", "arm"]).itertuples(index=False)),
            "plot": Markup(allocation_plot_svg(bandit_allocations)),
            "method": BANDIT_METHOD,
        },
    )
    path = Path(html_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
