"""The loop's clock: one partition per day, the day being everything known at its end.

A partition is "as of the last second of that day" (PipelineSettings.as_of): its landing
drop, the warehouse as of then, the scores, and the sends planned for the next day. The
range starts early enough for real exports of past years; runs and backfills pick the
days that have data.
"""

from datetime import date, timedelta

import dagster as dg

FIRST_PARTITION_DAY = "2009-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_PARTITION_DAY, timezone="UTC")
# One run per day: a day builds on the one before (the world's state, the sends planned for
# it), so a backfill runs its days one by one, in order (the run queue takes one at a time).
one_run_per_day = dg.BackfillPolicy.multi_run(1)


def partition_day(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    """The day of the run's partition."""
    key = context.partition_key if isinstance(context, dg.AssetExecutionContext) else context.run.tags["dagster/partition"]
    return date.fromisoformat(key)


def next_day(day: date) -> date:
    return day + timedelta(days=1)
