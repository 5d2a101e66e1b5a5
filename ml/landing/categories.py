"""The optional category mapping file (docs/data_contract.md, "Product categories").

`category_mapping.csv` at the top of the landing folder maps a shop's free-form product
categories to the model categories that fill the models' category slots
(ml.vocabulary.CATEGORY_SLOTS; marts.category_slots applies it). A CSV with a header
`category,model_category`, one row per product category; several categories may share a
model category, at most CATEGORY_SLOT_COUNT model categories; a category not listed goes
to the other bucket. Without the file, the slots hold the top categories by revenue.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ml.vocabulary import CATEGORY_SLOT_COUNT, OTHER_CATEGORY_LABEL

CATEGORY_MAPPING_FILE = "category_mapping.csv"
CATEGORY_MAPPING_COLUMNS = ("category", "model_category")
# What dbt reads when the landing folder has no mapping file: the header alone, so the dbt
# source always resolves (dbt var category_mapping_csv).
EMPTY_CATEGORY_MAPPING = Path(__file__).resolve().parents[2] / "data" / "catalog" / "category_mapping.empty.csv"

_SHAPE = (
    f"a CSV with the header {','.join(CATEGORY_MAPPING_COLUMNS)}, one row per product category as products.parquet "
    f"spells it, each with the model category it counts towards (at most {CATEGORY_SLOT_COUNT} distinct ones)"
)


def category_mapping_csv(landing_dir: Path) -> Path:
    """The mapping dbt reads (var category_mapping_csv): the landing folder's file, else the empty one."""
    path = Path(landing_dir) / CATEGORY_MAPPING_FILE
    return path if path.is_file() else EMPTY_CATEGORY_MAPPING


def category_mapping_problems(landing_dir: Path) -> list[str]:
    """Every problem of the landing folder's mapping file, each naming the file, the problem
    and the fix; none without the file (it is optional)."""
    misplaced = [
        f"{path.relative_to(landing_dir)}: the mapping is read only from the top of the landing folder, never from a "
        f"drop. Fix: move it to {CATEGORY_MAPPING_FILE} (replacing the old one), or delete it."
        for path in sorted(Path(landing_dir).glob(f"*/**/{CATEGORY_MAPPING_FILE}"))
    ]
    path = Path(landing_dir) / CATEGORY_MAPPING_FILE
    if not path.exists():
        return misplaced
    return misplaced + _mapping_file_problems(path)


def _mapping_file_problems(path: Path) -> list[str]:
    name = CATEGORY_MAPPING_FILE
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        return [f"{name}: not a CSV the pipeline can read ({type(error).__name__}). Fix: write {_SHAPE}, or delete it "
                "to rank categories by revenue."]
    columns = [str(column).strip() for column in frame.columns]
    missing = [column for column in CATEGORY_MAPPING_COLUMNS if column not in columns]
    if missing:
        return [f"{name}: missing column(s) {', '.join(missing)} (it has {', '.join(columns) or 'no header'}). "
                f"Fix: write {_SHAPE}."]
    frame.columns = columns
    category = frame["category"].str.strip()
    model_category = frame["model_category"].str.strip()
    problems = []
    blank = [int(i) + 2 for i in frame.index[(category == "") | (model_category == "")]]
    if blank:
        problems.append(f"{name}: line(s) {_lines(blank)} have a blank category or model_category. Fix: fill both, "
                        "or delete the line (an unlisted category counts towards the other bucket).")
    repeated = sorted(set(category[category.duplicated() & (category != "")]))
    if repeated:
        problems.append(f"{name}: categories {_quoted(repeated)} are listed more than once. Fix: give each category "
                        "one line, with one model_category.")
    models = sorted(set(model_category[model_category != ""]))
    if len(models) > CATEGORY_SLOT_COUNT:
        problems.append(f"{name}: {len(models)} model categories ({_quoted(models)}), and the models have "
                        f"{CATEGORY_SLOT_COUNT} category slots. Fix: map the categories onto at most "
                        f"{CATEGORY_SLOT_COUNT} model categories; leave the rest out (they count towards the other bucket).")
    if OTHER_CATEGORY_LABEL in models:
        problems.append(f"{name}: model_category '{OTHER_CATEGORY_LABEL}' is the name of the bucket for unlisted "
                        "categories. Fix: leave those categories out of the file instead.")
    return problems


def _lines(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:10])) + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def _quoted(values: list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values[:10]) + (f" and {len(values) - 10} more" if len(values) > 10 else "")
