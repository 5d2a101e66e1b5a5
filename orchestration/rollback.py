"""`make rollback MODEL=purchase VERSION=1 REASON="..."`: the champion back to an earlier version.

Runs roll_back_champion_job on the state folder's Dagster instance, so the rollback is a run
in the UI like any other; the decision is also tags on the version and a row in
ml.model_promotions. The daily scores use the restored version from the next run on.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

import dagster as dg


def main(argv: Sequence[str] | None = None) -> int:
    from ml.propensity.specs import MODEL_SPECS

    parser = argparse.ArgumentParser(prog="python -m orchestration.rollback", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=[spec.key for spec in MODEL_SPECS])
    parser.add_argument("--to-version", type=int, required=True)
    parser.add_argument("--reason", required=True, help="why; recorded with the rollback")
    args = parser.parse_args(argv)

    from orchestration.definitions import defs as build_defs

    job = build_defs().resolve_job_def("roll_back_champion_job")
    result = job.execute_in_process(
        run_config={"ops": {"roll_back_champion": {"config": {
            "model": args.model, "to_version": args.to_version, "reason": args.reason,
            "requested_by": getpass.getuser(),
        }}}},
        instance=dg.DagsterInstance.get(),
        raise_on_error=False,
    )
    if not result.success:
        failure = next((e for e in result.all_events if e.event_type_value == "STEP_FAILURE"), None)
        message = failure.step_failure_data.error.message.strip() if failure and failure.step_failure_data.error else "see the run's logs"
        print(f"The rollback failed (run {result.run_id}): {message}")
        return 2
    print(f"{args.model}: champion is now version {args.to_version} (run {result.run_id}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
