"""pandas_dataset_entity gives the dataset record MLflow's from_pandas gives, without its per-cell passes."""

import warnings

import mlflow.data
import numpy as np
import pandas as pd
from mlflow.entities import Dataset

from ml.tracking import pandas_dataset_entity


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "always_there": rng.normal(size=rows),
        "sometimes_missing": rng.normal(size=rows),
        "missing_only_late": rng.normal(size=rows),
        "label": rng.integers(0, 2, rows),
        "segment": np.where(rng.random(rows) < 0.5, "new", "active"),
    })
    frame.loc[frame.index % 7 == 0, "sometimes_missing"] = np.nan
    # A null far past the rows the types are read from and past MLflow's digest rows: the
    # column must still be recorded as not required.
    frame.loc[rows - 1, "missing_only_late"] = np.nan
    return frame


def test_the_record_equals_mlflows_own():
    frame = _frame(12_345)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = Dataset(**mlflow.data.from_pandas(frame, source="warehouse.duckdb#marts.x", name="x-train",
                                                     targets="label").to_dict())
        actual = pandas_dataset_entity(frame, source="warehouse.duckdb#marts.x", name="x-train", targets="label")
    for field in ("name", "digest", "source_type", "source", "schema", "profile"):
        assert getattr(actual, field) == getattr(expected, field), field
    assert '"name": "missing_only_late", "required": false' in actual.schema
    assert '"name": "always_there", "required": true' in actual.schema
