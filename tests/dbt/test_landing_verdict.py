"""A systemically broken landing file stops every mart inside the one `dbt build`
(int_landing_files_judged and its `has_no_rows` test; ml.landing.health judges)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb

from tests.dbt.conftest import TEST_SECRET, dbt_vars, run_dbt
from tests.fixtures.tiny_landing import write_tiny_landing


def test_a_file_over_the_quarantine_share_fails_the_build_and_no_mart_is_built(tmp_path: Path) -> None:
    expected = write_tiny_landing(tmp_path / "landing")
    quarantined = Counter(file for file, _ in expected["expected_reasons"])
    # The tiny fixture has a bad row of every kind: at a 50% limit some files break, some not.
    share = {file: quarantined[file] / rows for file, rows in expected["rows_per_file"].items() if file in quarantined}
    broken = sorted(file for file, s in share.items() if s > 0.50)
    assert broken and len(broken) < len(share), share

    variables = {**dbt_vars(tmp_path / "landing", tmp_path / "state", expected["extracted_at"]), "max_quarantine_share": 0.50}
    ran = run_dbt(tmp_path, variables, TEST_SECRET, "build", "--exclude-resource-type", "unit_test")
    assert not ran.success
    status = {result["unique_id"]: result["status"] for result in ran.results}
    nodes = json.loads((tmp_path / "target" / "manifest.json").read_text())["nodes"]
    marts = [uid for uid, node in nodes.items() if node["resource_type"] == "model" and node["original_file_path"].startswith("models/marts/")]
    assert marts and {status[uid] for uid in marts} == {"skipped"}
    (verdict_test,) = [uid for uid in status if uid.startswith("test.") and "int_landing_files_judged" in uid]
    assert status[verdict_test] == "fail"
    assert status["model.email_pipeline.int_orders_classified"] == "success"

    with duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True) as connection:
        judged = connection.execute(
            "select source_file, rows_quarantined, rows_in, message from intermediate.int_landing_files_judged order by 1"
        ).fetchall()
    assert [row[0] for row in judged] == broken
    assert all(row[1] == quarantined[row[0]] and row[2] == expected["rows_per_file"][row[0]] for row in judged)
    # Shapes only: no raw value of the fixture reaches the message.
    assert not any(value.lower() in row[3].lower() for row in judged for value in expected["pii_strings"])
