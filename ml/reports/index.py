"""The reports index: one page listing every report a run produced, with links to the UIs.

`collect_reports` finds what exists in the reports folder (experiment reports, drift
reports, Great Expectations Data Docs, model cards) and the dbt docs; `write_reports_index`
renders `templates/reports_index.html.j2` into `<reports>/index.html`. The page is
self-contained (inline CSS, no script, no external asset), so it works offline, and its
links are relative, so the state folder can be moved or served as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ml.reports import template_environment

INDEX_FILE = "index.html"

# The kinds of report, in the order the page lists them, and how each is found (relative to
# the reports folder). A day in the name is the report's day.
KINDS = (
    ("Experiment reports", "experiment_report_*.html"),
    ("Feature drift reports", "feature_drift_report_*.html"),
    ("Prediction drift reports", "prediction_drift_report_*.html"),
    ("Great Expectations Data Docs", "data_docs/index.html"),
    ("Model cards", "model_cards/*/v*/model_card.html"),
)
DBT_DOCS_KIND = "dbt docs"
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class ReportLink:
    title: str
    href: str  # relative to the index page


@dataclass(frozen=True)
class ReportSection:
    kind: str
    links: tuple[ReportLink, ...]
    missing: str = ""  # why there is nothing, when there is nothing


@dataclass(frozen=True)
class ReportsIndex:
    sections: tuple[ReportSection, ...]
    ui_links: tuple[ReportLink, ...] = field(default_factory=tuple)

    @property
    def report_count(self) -> int:
        return sum(len(section.links) for section in self.sections)


def _title(kind: str, path: Path, reports_dir: Path) -> str:
    if kind == "Model cards":
        model, version = path.relative_to(reports_dir).parts[1:3]
        return f"{model} {version}"
    if kind == "Great Expectations Data Docs":
        return "every suite's latest validation"
    day = _DAY.search(path.name)
    if kind == "Experiment reports":
        experiment = path.stem.removeprefix("experiment_report_").rsplit("_", 1)[0]
        return f"{experiment}, {day.group(1)}" if day else experiment
    return day.group(1) if day else path.stem


def _sort_key(kind: str, path: Path) -> tuple:
    if kind == "Model cards":
        model, version = path.parts[-3:-1]
        return (model, -int(version.removeprefix("v")) if version[1:].isdigit() else 0)
    day = _DAY.search(path.name)
    return ("" if day is None else "".join(chr(255 - ord(c)) for c in day.group(1)), path.name)  # newest first


def _relative(path: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(path, start)).as_posix()


def collect_reports(
    reports_dir: Path,
    *,
    dbt_docs: Path | None = None,
    ui_links: dict[str, str] | None = None,
) -> ReportsIndex:
    """Every report under `reports_dir` (newest day first, model cards newest version first),
    and the dbt docs page when `dbt_docs` exists."""
    reports_dir = Path(reports_dir)
    sections = []
    for kind, pattern in KINDS:
        paths = sorted(reports_dir.glob(pattern), key=lambda path: _sort_key(kind, path))
        links = tuple(ReportLink(_title(kind, path, reports_dir), _relative(path, reports_dir)) for path in paths)
        sections.append(ReportSection(kind, links, "" if links else "none yet: produced by a run of the loop"))
    if dbt_docs is not None and Path(dbt_docs).exists():
        sections.append(ReportSection(DBT_DOCS_KIND, (ReportLink("models, sources, tests and lineage",
                                                                 _relative(Path(dbt_docs), reports_dir)),)))
    else:
        sections.append(ReportSection(DBT_DOCS_KIND, (), "not generated yet: run `make docs`"))
    return ReportsIndex(
        tuple(sections),
        tuple(ReportLink(name, url) for name, url in (ui_links or {}).items()),
    )


def render_reports_index(index: ReportsIndex, *, generated_at: datetime | None = None) -> str:
    environment = template_environment()
    stamp = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    return environment.get_template("reports_index.html.j2").render(index=index, generated_at=stamp)


def write_reports_index(index: ReportsIndex, reports_dir: Path) -> Path:
    """Write the index page into the reports folder; return its path."""
    path = Path(reports_dir) / INDEX_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_reports_index(index), encoding="utf-8")
    return path
