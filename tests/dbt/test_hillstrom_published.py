"""The singular test `hillstrom_published_means` on full-size files: the vendored file passes,
a 64,000-row file with other means fails. (On smaller files it checks nothing, by design:
the published means are for the full experiment.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

VENDORED = Path(__file__).resolve().parents[2] / "data" / "hillstrom" / "hillstrom.csv"


def failing_rows(compiled_project, frame_or_file) -> list[tuple]:
    target = compiled_project.landing_dir / "hillstrom.csv"
    compiled_project.landing_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(frame_or_file, Path):
        shutil.copyfile(frame_or_file, target)
    else:
        frame_or_file.to_csv(target, index=False)
    connection = compiled_project.run(["hillstrom_arm_outcomes"])
    return connection.execute(compiled_project.singular_tests["hillstrom_published_means"]).fetchall()


def test_the_vendored_file_reproduces_the_published_means(compiled_project) -> None:
    assert failing_rows(compiled_project, VENDORED) == []


@pytest.mark.parametrize("change", ["conversion", "customers"])
def test_a_full_size_file_with_other_means_fails(compiled_project, change: str) -> None:
    frame = pd.read_csv(VENDORED)
    if change == "conversion":
        # 40 more conversions in the Womens arm: +0.0019 on its rate, far beyond 4 decimals.
        flip = frame.index[(frame["segment"] == "Womens E-Mail") & (frame["conversion"] == 0)][:40]
        frame.loc[flip, "conversion"] = 1
    else:
        # One customer moved between arms: totals stay 64,000, arm sizes do not match.
        frame.loc[frame.index[frame["segment"] == "No E-Mail"][0], "segment"] = "Mens E-Mail"
    assert len(frame) == 64_000
    failing = failing_rows(compiled_project, frame)
    assert failing, "the published-means test let a changed file through"
    segments = {row[0] for row in failing}
    assert segments == ({"Womens E-Mail"} if change == "conversion" else {"Mens E-Mail", "No E-Mail"})
