"""Model cards (Mitchell et al., 2019) rendered from `ModelCardFacts`.

The facts come from the pipeline (ml/audit/card_facts.py); the templates add only fixed
prose. Markdown goes into the MLflow version description (kept under MLflow's limit by
truncating long tables with a "more rows" line); HTML is standalone and offline (inline CSS
and SVG, no external resources).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ml.audit.bias import BiasAudit

TEMPLATES_DIR = Path(__file__).parent / "templates"
# MLflow keeps descriptions up to 5,000 characters in some stores; tables are cut to fit.
MAX_TABLE_ROWS = 12
TOP_FEATURES = 15


@dataclass(frozen=True)
class DataSummary:
    name: str
    digest: str
    rows: int
    first_cutoff: str
    last_cutoff: str
    positive_rate: float
    source: str
    upstream: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelCardFacts:
    model_name: str
    version: str
    run_id: str
    experiment_id: str
    code_version: str
    trained_at: datetime
    model_family: str
    target: str
    label: str
    horizon_days: int
    intended_use: str
    out_of_scope: tuple[str, ...]
    factors: tuple[str, ...]
    metrics: dict[str, float]
    auc_ci: tuple[float, float]
    segment_metrics: pd.DataFrame = field(repr=False)
    calibration: pd.DataFrame = field(repr=False)
    feature_importance: pd.DataFrame = field(repr=False)
    training_data: DataSummary = None  # type: ignore[assignment]
    evaluation_data: DataSummary = None  # type: ignore[assignment]
    bias: BiasAudit | None = None
    promotion_history: tuple[dict, ...] = ()
    links: dict[str, str] = field(default_factory=dict)
    oracle_auc: float | None = None
    caveats: tuple[str, ...] = ()
    ethical_considerations: tuple[str, ...] = ()


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):.{digits}f}"


def _rows(frame: pd.DataFrame, limit: int = MAX_TABLE_ROWS) -> tuple[list[dict], int]:
    """At most ``limit`` rows as dicts, and how many were left out."""
    records = frame.to_dict(orient="records")
    return records[:limit], max(0, len(records) - limit)


def _context(facts: ModelCardFacts) -> dict:
    segments, segments_more = _rows(facts.segment_metrics)
    importance, importance_more = _rows(facts.feature_importance.head(TOP_FEATURES), TOP_FEATURES)
    history_frame = pd.DataFrame(list(facts.promotion_history))
    # Missing values render empty, not as NaT/NaN (a decision recorded before data_as_of existed).
    history, history_more = _rows(history_frame.astype(object).where(history_frame.notna(), None), MAX_TABLE_ROWS)
    bias_rows, bias_more = _rows(facts.bias.by_group) if facts.bias is not None else ([], 0)
    auc = facts.metrics.get("test_auc")
    return {
        "f": facts,
        "n": _number,
        "auc": auc,
        "oracle_ratio": (auc / facts.oracle_auc) if auc and facts.oracle_auc else None,
        "segments": segments, "segments_more": segments_more,
        "importance": importance, "importance_more": importance_more,
        "history": history, "history_more": history_more,
        "bias_rows": bias_rows, "bias_more": bias_more,
        "calibration": facts.calibration.to_dict(orient="records"),
        "max_gain_share": max([float(r["gain_share"]) for r in importance] + [1e-12]),
    }


def _environment(markdown: bool) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # Markdown is not HTML: escaping it would print entities in MLflow's description.
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False) if not markdown else False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment


def render_model_card_markdown(facts: ModelCardFacts) -> str:
    return _environment(markdown=True).get_template("model_card.md.j2").render(**_context(facts))


def render_model_card_html(facts: ModelCardFacts) -> str:
    return _environment(markdown=False).get_template("model_card.html.j2").render(**_context(facts))


def write_model_card(facts: ModelCardFacts, folder: Path) -> tuple[Path, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    markdown, html = folder / "model_card.md", folder / "model_card.html"
    markdown.write_text(render_model_card_markdown(facts), encoding="utf-8")
    html.write_text(render_model_card_html(facts), encoding="utf-8")
    return markdown, html
