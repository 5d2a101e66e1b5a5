"""A stable sample of people for training, so a model's memory stops growing with the audience.

`marts.training_examples` holds about one row per person per weekly cutoff (12 at the demo's
history): 1.09 million rows at 100,000 people, about 11 million at 1,000,000, which training
would read whole into pandas before LightGBM copies it again. Beyond a few hundred thousand
people more rows add little to a model of 25 features, so training keeps all the cutoffs of
a sample of people.
"""

from __future__ import annotations

# The subscriber key is an HMAC-SHA256 hex digest (ml.privacy), so its first 32 bits are
# uniform: a person is in the sample when they fall below share x 2^32.
_KEY_PREFIX_HEX_DIGITS = 8
_KEY_PREFIX_RANGE = 16**_KEY_PREFIX_HEX_DIGITS


def training_people_share(people: int, max_people: int) -> float:
    """The share of people to train on: all of them up to `max_people` (0 = no limit)."""
    if max_people < 0:
        raise ValueError("max_people must be 0 (no limit) or positive")
    return 1.0 if max_people == 0 or people <= max_people else max_people / people


def people_sample_predicate(key_column: str, share: float) -> str:
    """A DuckDB SQL predicate that keeps a stable `share` of people, by their subscriber key.

    Stable: the same person is in or out on every cutoff, every day and every retrain, so a
    sample never mixes one person's rows across the train/test split differently by day."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if share == 1:
        return "true"
    bound = int(share * _KEY_PREFIX_RANGE)
    return f"('0x' || left({key_column}, {_KEY_PREFIX_HEX_DIGITS}))::ubigint < {bound}"


def sampled_rows_query(table: str, columns: str, share: float, key_column: str = "subscriber_key") -> str:
    """The query that reads `columns` of every row of `table` whose person is in the sample."""
    return f"select {columns} from {table} where {people_sample_predicate(key_column, share)}"
