"""The experiment report: one self-contained HTML page (inline CSS, no external assets).

The page is the Jinja2 template `templates/experiment_report.html.j2`, filled from an
`ExperimentSummary`. Autoescaping is on, so nothing from the data can inject markup.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from jinja2 import Environment

from ml.experiments.bandit import BANDIT_METHOD
from ml.experiments.bandit_readout import STRATIFIED_METHOD
from ml.experiments.bayesian import BAYESIAN_METHOD
from ml.experiments.comparisons import HOLM_METHOD
from ml.experiments.cuped import CUPED_METHOD
from ml.experiments.outcomes import PRE_PERIOD_DAYS
from ml.experiments.power import PowerAnalysis
from ml.experiments.readout import GUARDRAIL_METRICS, OUTCOME_METRICS, RATE_NAMES, ExperimentSummary
from ml.experiments.sequential import SEQUENTIAL_METHOD
from ml.reports import template_environment
from ml.reports.small_plots import allocation_plot, cumulative_lift_plot, png_data_uri, posterior_density_plot
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


def render_experiment_report(
    summary: ExperimentSummary,
    html_path: str | Path,
    *,
    context: Mapping[str, Any],
    generated_at: datetime | None = None,
    power: PowerAnalysis | None = None,
) -> Path:
    """Write the report to `html_path`; return the path. `power`, when given, is the
    declared MDE's power analysis at the current audience. (A campaign declared as a bandit
    is read by `render_bandit_report` instead.)

    `context` holds run facts to show (model version, blocks version, run ids, ...). Values
    that look like an email address are refused so the report cannot carry PII.
    """
    _refuse_email_like(context)
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
    )
    return _write(page, html_path)


def render_bandit_report(
    html_path: str | Path,
    *,
    experiment_id: str,
    allocations: pd.DataFrame,
    lifts: pd.DataFrame,
    sample_ratio: Mapping[str, Any],
    context: Mapping[str, Any],
    confidence_level: float = 0.95,
    generated_at: datetime | None = None,
) -> Path:
    """The report of a campaign declared as a bandit; returns the path. `allocations` are its
    days' ALLOCATION_COLUMN_TYPES rows up to the report's day (ml.experiments.bandit),
    `lifts` the day-stratified lifts against control as they stood each day
    (ml.experiments.bandit_readout.cumulative_lifts), `sample_ratio` the latest day's
    assignment tested against that day's weights (ml.experiments.statistics.sample_ratio_check).
    Plots: the cumulative lift per arm with its always-valid band, the arms' posterior
    densities on the latest day, and the allocation over time (small PNGs)."""
    from scipy import stats

    _refuse_email_like(context)
    if allocations.empty:
        raise ValueError("a bandit report needs at least one day's allocation")
    latest_day = allocations["allocated_on"].max()
    latest = allocations[allocations["allocated_on"] == latest_day].sort_values("arm")
    level = confidence_level
    arms = [
        {"row": row, "credible": stats.beta(row.posterior_alpha, row.posterior_beta).interval(level)}
        for row in latest.itertuples(index=False)
    ]
    read_day = lifts["through_day"].max() if len(lifts) else None
    page = _environment().get_template("bandit_report.html.j2").render(
        experiment_id=experiment_id,
        latest_day=latest_day,
        arms=arms,
        lifts=list(lifts[lifts["through_day"] == read_day].sort_values("arm").itertuples(index=False)) if len(lifts) else [],
        read_day=read_day,
        history=list(allocations.sort_values(["allocated_on", "arm"]).itertuples(index=False)),
        srm=sample_ratio,
        level=f"{level:.0%}",
        plots={
            "cumulative_lift": cumulative_lift_plot(lifts) if len(lifts) else None,
            "posteriors": posterior_density_plot(latest),
            "allocation": allocation_plot(allocations),
        },
        png=png_data_uri,
        methods={"bandit": BANDIT_METHOD, "stratified": STRATIFIED_METHOD, "srm": SRM_METHOD},
        context={str(key): str(value) for key, value in context.items()},
        generated=(generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC"),
    )
    return _write(page, html_path)


def _refuse_email_like(context: Mapping[str, Any]) -> None:
    for key, value in context.items():
        if "@" in str(key) or "@" in str(value):
            raise ValueError(f"context entry {key!r} looks like it contains an email address")


def _write(page: str, html_path: str | Path) -> Path:
    path = Path(html_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
