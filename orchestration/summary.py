"""`make demo` ends here: where the results are, in a few lines."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml.propensity.promotion import champion_version
from ml.propensity.scoring import no_champion_reason
from ml.propensity.specs import MODEL_SPECS
from ml.decisioning.policy import SCORED
from ml.decisioning.send_plan import NOT_SELECTED_BY_POLICY, PLANNED
from orchestration import tables
from orchestration.resources import PipelineSettings

SCHEMAS = ("marts", "quality", "experiments", "ml")

# The people the policy chose among for each send day, from its decision record: consented,
# contactable that day, outside the holdout, reachable at the ESP, and not in the random
# control (sent regardless of score).
_POLICY_POOL = f"""
select d.subscriber_key, x.esp_id, d.decision = '{PLANNED}' as emailed, d.propensity_score, d.uplift_estimate,
       d.targeting_policy
from {tables.SEND_DECISIONS} d
join (select subscriber_key, min(source_id) as esp_id from {tables.SUBSCRIBER_IDENTITY_CROSSWALK}
      where source_system = 'esp' group by all) x on x.subscriber_key = d.subscriber_key
where d.decided_for = ? and d.decision in ('{PLANNED}', '{NOT_SELECTED_BY_POLICY}')
  and d.targeting_group = '{SCORED}'
order by d.subscriber_key
"""

# What landed for each send day's sends (outcomes attributed in dbt).
_LANDED_BY_DAY = f"""
select cast(sent_at as date) as day, count(*) as sends,
       count(*) filter (opened) as opened, count(*) filter (clicked) as clicked,
       count(*) filter (purchased) as purchased
from {tables.FCT_SEND_OUTCOMES}
where starts_with(campaign_id, ?)
group by all order by day
"""


def record_oracle_auc(settings: PipelineSettings) -> dict[str, tuple[float, float]] | None:
    """Simulator mode only (the demo harness, not an asset): the AUC of the world's true
    purchase probabilities on the test rows of the latest purchase model version, logged
    beside the model's own AUC on its run (`oracle_test_auc`, `auc_ratio_to_oracle`).
    Run right after training: the test cutoff must still be among the warehouse's cutoffs.
    Returns {version: (model AUC, oracle AUC)}, or None with your own data."""
    from sklearn.metrics import roc_auc_score

    from ml.propensity.service import ModelService
    from ml.propensity.specs import PURCHASE
    from ml.simulator.evaluation import history_purchase_probability

    if settings.user_landing_dir() is not None:
        return None
    client = settings.mlflow_client()
    latest = max(client.search_model_versions(f"name = '{PURCHASE.registered_model_name}'"), key=lambda v: int(v.version))
    run = client.get_run(latest.run_id)
    cutoff = run.data.params["first_test_cutoff"]
    rows = settings.warehouse().read(
        f"""
        select t.*, x.crm_id
        from {tables.TRAINING_EXAMPLES} t
        left join (select subscriber_key, min(source_id) as crm_id from {tables.SUBSCRIBER_IDENTITY_CROSSWALK}
                   where source_system = 'crm' group by all) x using (subscriber_key)
        where t.cutoff_at = cast(? as timestamp) and t.{PURCHASE.label} is not null
        """,
        [cutoff],
    )
    if rows.empty:
        return None
    truth = history_purchase_probability(settings.simulator_path(), rows["crm_id"], rows["cutoff_at"], PURCHASE.horizon_days)
    if np.isnan(truth).any():
        return None  # the window reaches past the simulated history: no oracle for it
    labels = rows[PURCHASE.label].to_numpy(dtype=int)
    model_auc = float(roc_auc_score(labels, ModelService.load(client, PURCHASE, version=latest.version).predict(rows)))
    oracle_auc = float(roc_auc_score(labels, truth))
    client.log_metric(latest.run_id, "oracle_test_auc", oracle_auc)
    client.log_metric(latest.run_id, "auc_ratio_to_oracle", model_auc / oracle_auc)
    return {str(latest.version): (model_auc, oracle_auc)}


def policy_value_by_day(connection: duckdb.DuckDBPyConnection, simulator_dir: Path) -> dict:
    """Per live day, the policy's true incremental purchases against random targeting of the
    same volume from the same pool, from the simulator's oracle. For the demo summary and
    tests only: no asset reads it."""
    return {day: value for day, (value, _, _) in _pool_truth_by_day(connection, simulator_dir).items()}


def capture_by_day(connection: duckdb.DuckDBPyConnection, simulator_dir: Path) -> dict:
    """Per live day: {ranking: share of the pool's true incremental purchases captured} at the
    volume the policy emailed, for the propensity score, the uplift estimate (when the day
    has one), random targeting and the oracle; and the targeting policy that acted."""
    from ml.simulator.evaluation import captured_share

    out = {}
    for day, (value, pool, truth) in _pool_truth_by_day(connection, simulator_dir).items():
        rankings = {"propensity": pool["propensity_score"].to_numpy(dtype=float)}
        if pool["uplift_estimate"].notna().all():
            rankings["uplift"] = pool["uplift_estimate"].to_numpy(dtype=float)
        out[day] = (captured_share(truth, rankings, value.emailed), str(pool["targeting_policy"].iloc[0]))
    return out


def _pool_truth_by_day(connection: duckdb.DuckDBPyConnection, simulator_dir: Path) -> dict:
    """{day: (TargetingValue, the policy's pool, its true uplifts)} for every live day."""
    from ml.simulator.evaluation import targeting_value
    from ml.simulator.world import World

    world = World(simulator_dir)
    values = {}
    for path in sorted((simulator_dir / "world").glob("send_truth_*.parquet")):
        day = date.fromisoformat(path.stem.removeprefix("send_truth_"))
        pool = connection.execute(_POLICY_POOL, [day]).df()
        if pool.empty:
            continue
        truth = world.true_uplift(day, pool["esp_id"])["true_uplift"].to_numpy()
        values[day] = (targeting_value(truth, pool["emailed"].to_numpy(dtype=bool)), pool, truth)
    return values


def print_decisions(connection: duckdb.DuckDBPyConnection) -> None:
    """The latest send day's decision record, the send-time experiment and the recommendations."""
    from ml.decisioning.send_time import send_time_readout

    day = connection.execute(f"select max(decided_for) from {tables.SEND_DECISIONS}").fetchone()[0]
    if day is None:
        return
    counts = connection.execute(
        f"select decision, count(*) from {tables.SEND_DECISIONS} where decided_for = ? group by 1 order by 2 desc", [day]
    ).fetchall()
    print(f"\nDecisions for {day} (ml.send_decisions, one row per person): "
          + ", ".join(f"{decision} {n:,}" for decision, n in counts))
    outcomes = connection.execute(
        f"""select ps.send_time_arm, o.delivered, o.opened from {tables.FCT_SEND_OUTCOMES} o
            join {tables.PLANNED_SENDS} ps on ps.send_plan_id = o.send_id where ps.send_time_arm is not null"""
    ).df()
    if len(outcomes):
        readout = send_time_readout(outcomes)
        print(
            f"  Send time: open rate optimised {readout.optimised_opens / max(readout.optimised_sends, 1):.2%} "
            f"({readout.optimised_sends:,} delivered) vs fixed 10:00 local "
            f"{readout.fixed_hour_opens / max(readout.fixed_hour_sends, 1):.2%} ({readout.fixed_hour_sends:,}): "
            f"{readout.difference * 100:+.2f} pp [{readout.ci_low * 100:+.2f}, {readout.ci_high * 100:+.2f}] "
            "(all live sends, including opens still to land)"
        )
    recommendations = connection.execute(
        f"select source, count(distinct subscriber_key) from {tables.PRODUCT_RECOMMENDATIONS} "
        f"where recommended_on = (select max(recommended_on) from {tables.PRODUCT_RECOMMENDATIONS}) group by 1 order by 1"
    ).fetchall()
    if recommendations:
        print("  Recommendations (latest day, people per source): "
              + ", ".join(f"{source} {n:,}" for source, n in recommendations)
              + "; held-out recall@5 per day in the MLflow experiment product-recommendations")


def print_live_days(connection: duckdb.DuckDBPyConnection, settings: PipelineSettings) -> None:
    landed = connection.execute(_LANDED_BY_DAY, [settings.experiment() + ":"]).df().set_index("day")
    truth = (
        policy_value_by_day(connection, settings.simulator_path())
        if settings.user_landing_dir() is None and (settings.simulator_path() / "truth.json").exists()
        else {}
    )
    if landed.empty:
        print("\nNo live day has run yet.")
        return
    print("\nLive days: sends and what landed for them (attributed in dbt; purchases within the window so far)")
    header = f"  {'day':<10} {'sends':>7} {'opened':>7} {'clicked':>8} {'purchased':>10}"
    if truth:
        header += "   true incremental purchases: policy / random same volume = ratio"
    print(header)
    for day, row in landed.iterrows():
        day = day.date() if hasattr(day, "date") else day
        line = f"  {day!s:<10} {row.sends:>7,} {row.opened:>7,} {row.clicked:>8,} {row.purchased:>10,}"
        value = truth.get(day)
        if value is not None:
            line += (
                f"   {value.policy_incremental_purchases:8.2f} / {value.random_incremental_purchases:8.2f}"
                f" = {value.ratio_to_random:.2f}x (oracle ranking {value.ratio_to_oracle:.2f}x of best)"
            )
        print(line)
    if truth:
        print_capture(connection, settings.simulator_path())
        shift = json.loads((settings.simulator_path() / "truth.json").read_text())["generator"]["shift"]
        print(
            f"  The world's scripted shift starts on live day {shift['live_day']}: people whose top category is "
            f"{shift['category']} open {shift['responsiveness_factor']}x and buy {shift['demand_factor']}x as often."
        )
        print_bandit_regret(connection, settings)


def print_bandit_regret(connection: duckdb.DuckDBPyConnection, settings: PipelineSettings) -> None:
    """Simulator only: the experiment's arms judged by the oracle (ml.simulator.evaluation.campaign_regret):
    the regret of this run's allocation, of a uniform split and of the declared Thompson-sampling bandit
    simulated on the same daily sends, against always sending the truly best arm."""
    import pandas as pd

    from ml.experiments.bandit import ThompsonBandit
    from ml.experiments.design import BANDIT_EXPERIMENT_ID, declared_design
    from ml.simulator.evaluation import TRUTH_COLUMN_OF_REWARD, campaign_regret
    from ml.simulator.world import send_truth_path

    design = declared_design(settings.experiment())
    bandit_design = design if design.is_bandit else declared_design(BANDIT_EXPERIMENT_ID)
    bandit = ThompsonBandit.declared(bandit_design)
    planned = connection.execute(
        f"select send_plan_id as send_id, arm, cast(planned_for as date) as day from {tables.PLANNED_SENDS} "
        "where experiment_id = ?", [design.experiment_id]).df()
    paths = [send_truth_path(settings.simulator_path(), day) for day in sorted(set(pd.to_datetime(planned["day"]).dt.date))]
    reward_column = TRUTH_COLUMN_OF_REWARD[bandit_design.bandit.reward_metric]
    truth = [pd.read_parquet(path, columns=list(dict.fromkeys(["send_id", "p_purchase_if_sent", reward_column])))
             for path in paths if path.exists()]
    sends = planned.merge(pd.concat(truth), on="send_id") if truth else planned.iloc[:0]
    if set(sends["arm"]) != set(bandit.arms):
        return
    regret = campaign_regret(sends, bandit, reward_column=reward_column)
    kind = "bandit" if design.is_bandit else "fixed split"
    print(f"\nBandit regret against the oracle's best arm ({regret.best_arm}), in expected purchases given up over "
          f"{regret.sends:,} sends on {sends['day'].nunique()} days (evaluation only)")
    print("  true purchase rates as sent: " + ", ".join(f"{arm} {rate:.3%}" for arm, rate in regret.true_rates.items()))
    print(f"  this run's allocation ({kind}) {regret.campaign_regret:8.1f}   uniform split {regret.uniform_regret:8.1f}   "
          f"Thompson-sampling bandit rewarded by {bandit_design.bandit.reward_metric}s, same daily sends "
          f"({len(regret.bandit_regrets)} seeds) {regret.bandit_regret:8.1f} "
          f"({min(regret.bandit_regrets):.1f} to {max(regret.bandit_regrets):.1f})")


def print_what_the_data_allows(connection: duckdb.DuckDBPyConnection) -> None:
    """Who can be emailed, and what is missing for the rest of the loop: with your own data,
    the summary says why a step had nothing to do instead of leaving empty tables unexplained."""
    from ml.propensity.scoring import ELIGIBILITY_COUNT_COLUMNS, nobody_scored_reason

    counts = connection.execute(
        f"select {', '.join(ELIGIBILITY_COUNT_COLUMNS[:2])}, count(*) as subscribers "
        f"from {tables.SUBSCRIBER_ELIGIBILITY} group by all"
    ).df()
    eligible = int(counts.loc[counts["is_eligible"].fillna(False).astype(bool), "subscribers"].sum())
    print(f"\nWho can be emailed today: {nobody_scored_reason(counts) if eligible == 0 else f'{eligible:,} eligible'}")
    if eligible == 0:
        print("  Consent comes from consent_events.parquet: without a subscription on record nobody is emailed "
              "(consent fails closed; docs/data_contract.md).")
    sends, events = connection.execute(
        f"select (select count(*) from {tables.FCT_SENDS}), (select count(*) from marts.fct_email_events)"
    ).fetchone()
    if sends == 0:
        print(
            "  No ESP data: no send, open or click has landed, so there are no outcomes to attribute, no experiment "
            "to read and no click model.\n  Experiments need an ESP's event export: python -m ml.connectors "
            "esp-events EXPORT LANDING --into-existing (docs/connectors.md)."
        )
    else:
        print(f"  ESP data: {sends:,} sends and {events:,} email events landed.")


def print_capture(connection: duckdb.DuckDBPyConnection, simulator_dir: Path) -> None:
    """Per live day, the share of the pool's true incremental purchases each ranking captures
    at the volume the policy emailed (the oracle's view; the pipeline never reads it)."""
    captured = capture_by_day(connection, simulator_dir)
    if not captured:
        return
    print("\nShare of the true incremental purchases captured at the policy's volume (simulator oracle)")
    print(f"  {'day':<10} {'uplift':>7} {'propensity':>11} {'random':>7} {'oracle':>7}   policy that acted")
    for day, (shares, policy) in captured.items():
        uplift = f"{shares['uplift']:.1%}" if "uplift" in shares else "-"
        print(f"  {day!s:<10} {uplift:>7} {shares['propensity']:>11.1%} {shares['random']:>7.1%} "
              f"{shares['oracle']:>7.1%}   {policy.split('(')[0]}")


def main() -> None:
    settings = PipelineSettings()
    state = settings.state_path()
    print(f"\nState folder: {state}")

    print(f"\nWarehouse (no PII): {settings.warehouse_path()}")
    with settings.warehouse().connect(read_only=True) as connection:
        listed = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in {SCHEMAS} order by 1, 2"
        ).fetchall()
        for schema, table in listed:
            rows = connection.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            print(f"  {schema + '.' + table:<42} {rows:>10,} rows")
        reconciliation = connection.execute(
            f"select sum(rows_in), sum(rows_staged), sum(rows_quarantined) from {tables.LANDING_RECONCILIATION}"
        ).fetchone()
        print(
            f"  landing rows in {reconciliation[0]:,} = staged {reconciliation[1]:,} "
            f"+ quarantined {reconciliation[2]:,}"
        )
        print_what_the_data_allows(connection)
        print_live_days(connection, settings)
        present = {f"{schema}.{table}" for schema, table in listed}
        if {tables.SEND_DECISIONS, tables.PLANNED_SENDS, tables.PRODUCT_RECOMMENDATIONS} <= present:
            print_decisions(connection)
    print(f"PII vault (the only place with emails and names): {settings.pii_vault_path()}")

    client = settings.mlflow_client()
    warehouse = settings.warehouse()
    promotions = warehouse.read_table_if_exists(tables.MODEL_PROMOTIONS)
    if not promotions.empty:
        promotions = promotions.sort_values("decided_at", kind="stable")
    print(f"\nMLflow: {settings.tracking_uri()}")
    for spec in MODEL_SPECS:
        champion = champion_version(client, spec.registered_model_name)
        if champion is None:
            untrainable = warehouse.read(
                f"select count(distinct {spec.label}) as classes, count({spec.label}) as labelled "
                f"from {tables.TRAINING_EXAMPLES}"
            ).iloc[0] if warehouse.has_table(tables.TRAINING_EXAMPLES) else None
            if untrainable is not None and untrainable["labelled"] > 0 and untrainable["classes"] == 1 and (
                    promotions.empty or spec.registered_model_name not in set(promotions["model_name"])):
                print(f"  {spec.registered_model_name}: not trained, {spec.label} has one value in every labelled "
                      f"example. {spec.label_source or ''}".rstrip())
            else:
                print(f"  {no_champion_reason(spec.registered_model_name, promotions)}")
            continue
        run = client.get_run(client.get_model_version(spec.registered_model_name, champion).run_id)
        metric = run.data.metrics
        oracle = f", oracle AUC {metric['oracle_test_auc']:.4f}" if "oracle_test_auc" in metric else ""
        print(
            f"  {spec.registered_model_name}: champion v{champion}, test AUC {metric['test_auc']:.4f} "
            f"[{metric['test_auc_low']:.4f}, {metric['test_auc_high']:.4f}]{oracle}, ECE {metric['test_ece']:.4f}"
        )
    for decision in promotions.itertuples():
        after = f"v{decision.champion_after}" if decision.champion_after else "none"
        as_of = getattr(decision, "data_as_of", None)
        day = f", data as of {pd.Timestamp(as_of).date()}" if as_of is not None and not pd.isna(as_of) else ""
        print(f"    {decision.model_name} v{decision.version}: {decision.action} (champion after: {after}{day})")

    from orchestration.reports import write_index

    print(f"\nReports: {settings.reports_path()}")
    for path in sorted(settings.reports_path().glob("*.html")):
        if path.name != "index.html":
            print(f"  {path.name}")
    print(f"  Every report, the Data Docs, the dbt docs (`make docs`) and the model cards: {write_index(settings).as_uri()}")
    print("\nBrowse it all with `make ui` (Dagster on :3000, MLflow on :5000).")


if __name__ == "__main__":
    main()
