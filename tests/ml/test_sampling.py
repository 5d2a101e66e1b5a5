"""The stable people sample that bounds training's memory (ml/propensity/sampling.py)."""

import duckdb
import pandas as pd
import pytest

from ml.privacy import subscriber_key
from ml.propensity.sampling import people_sample_predicate, sampled_rows_query, training_people_share


def _keys(n: int) -> pd.DataFrame:
    return pd.DataFrame({"subscriber_key": [subscriber_key(f"person{i}@example.com", "test-secret") for i in range(n)]})


def _kept(keys: pd.DataFrame, share: float) -> set[str]:
    sql = f"select subscriber_key from keys where {people_sample_predicate('subscriber_key', share)}"
    return set(duckdb.sql(sql).df()["subscriber_key"])


def test_the_sample_keeps_the_share_of_people_and_the_same_people_each_time():
    keys = _keys(20_000)
    quarter = _kept(keys, 0.25)
    assert abs(len(quarter) / 20_000 - 0.25) < 0.012  # 4 binomial standard deviations
    assert _kept(keys, 0.25) == quarter
    # Nested: a smaller share keeps a subset, so a growing audience only adds people.
    tenth = _kept(keys, 0.10)
    assert tenth < quarter and abs(len(tenth) / 20_000 - 0.10) < 0.009
    assert _kept(keys, 1.0) == set(keys["subscriber_key"])


def test_the_share_is_everyone_up_to_the_limit():
    assert training_people_share(20_000, 200_000) == 1.0
    assert training_people_share(200_000, 200_000) == 1.0
    assert training_people_share(1_000_000, 200_000) == pytest.approx(0.2)
    assert training_people_share(1_000_000, 0) == 1.0
    with pytest.raises(ValueError):
        training_people_share(10, -1)
    with pytest.raises(ValueError):
        people_sample_predicate("subscriber_key", 0.0)


def test_the_query_keeps_every_cutoff_of_a_sampled_person_and_nothing_of_the_others():
    people = _keys(2_000)
    examples = people.merge(pd.DataFrame({"cutoff_at": range(12)}), how="cross")  # noqa: F841 (DuckDB reads it by name)
    read = duckdb.sql(sampled_rows_query("examples", "subscriber_key, cutoff_at", 0.3)).df()
    rows_per_person = read.groupby("subscriber_key").size()
    assert set(rows_per_person) == {12}
    assert set(rows_per_person.index) == _kept(people, 0.3)
    assert 0.25 < len(rows_per_person) / 2_000 < 0.35
