"""The copy step in Dagster: the provider resource pointed at a local OpenAI-compatible
server, prompts in the MLflow Prompt Registry, traces, the approval log, previews, approval by
job and by CLI, and the planned-sends check's query."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest
from mlflow import MlflowClient

from ml.copy.prompts import DEFAULT_PROMPT_ALIAS, PROMPT_NAME
from ml.copy.render import parse_email
from orchestration import tables
from orchestration.defs.campaign import subject_line_variants
from orchestration.defs.copy_approval import main as approval_cli, review_copy_variant_job, unapproved_planned_sends
from orchestration.defs.copy_provider import COPY_EXPERIMENT, CopyProviderResource
from orchestration.resources import PipelineSettings
from tests.fixtures.chat_server import chat_server
from tests.ml.test_copy_providers import SCRIPTED

DAY = date(2026, 7, 1)
CATEGORY_OF = {"general": None}


def build_warehouse(state) -> None:
    people = [(f"{i:02d}{category}{stage}".ljust(64, "0"), CATEGORY_OF.get(category, category), stage)
              for i, (category, stage) in enumerate(SCRIPTED) for _ in range(3)]
    profiles = pd.DataFrame(people, columns=["subscriber_key", "top_category", "lifecycle_stage"])
    recommendations = pd.DataFrame([(key, rank, f"P{rank}{(category or 'general')[:2]}", "popularity", "run", DAY)
                                    for key, category, _ in people for rank in (1, 2, 3)],
                                   columns=["subscriber_key", "rank", "product_id", "source", "mlflow_run_id",
                                            "recommended_on"])
    orders = recommendations[["product_id"]].drop_duplicates().assign(
        product_category=lambda f: f["product_id"].map(lambda p: {"ap": "apparel", "be": "beauty", "el": "electronics",
                                                                  "ho": "home", "ou": "outdoor", "to": "toys",
                                                                  "ge": "home"}[p[2:]]))
    connection = duckdb.connect(str(state / "warehouse.duckdb"))
    for schema in ("marts", "ml"):
        connection.execute(f"create schema {schema}")
    for name, frame in ((tables.SUBSCRIBER_PROFILES, profiles), (tables.PRODUCT_RECOMMENDATIONS, recommendations),
                        (tables.FCT_ORDERS, orders)):
        connection.register("frame", frame)
        connection.execute(f"create table {name} as select * from frame")
        connection.unregister("frame")
    connection.close()


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    state = tmp_path_factory.mktemp("copy_state")
    build_warehouse(state)
    previous_uri = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        with chat_server(lambda stage, category: SCRIPTED[(category, stage)][0]) as server:
            result = dg.materialize(
                [subject_line_variants], partition_key=DAY.isoformat(), instance=dg.DagsterInstance.ephemeral(),
                resources={"settings": PipelineSettings(state_dir=str(state)),
                           "copy_provider": CopyProviderResource(provider="openai_compatible", base_url=server.base_url,
                                                                 model="scripted-model", timeout_seconds=0.4,
                                                                 max_retries=0)},
            )
        uri_after = os.environ.get("MLFLOW_TRACKING_URI")
    finally:
        if previous_uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = previous_uri
    assert result.success
    settings = PipelineSettings(state_dir=str(state))
    return state, settings, result, server.requests, uri_after


def variants(settings) -> pd.DataFrame:
    return settings.warehouse().read(f"select * from {tables.SUBJECT_LINE_VARIANTS}")


def test_each_scripted_answer_is_recorded_with_its_reason_and_provenance(copy_run):
    state, settings, result, requests, uri_after = copy_run
    table = variants(settings)
    generated = table[table["provider"] == "openai_compatible"].set_index(["top_category", "lifecycle_stage"])
    assert {segment: generated.loc[segment, "rejection_reason"] for segment in SCRIPTED} == {
        segment: reason for segment, (_, reason) in SCRIPTED.items()}
    client = MlflowClient(tracking_uri=settings.tracking_uri(), registry_uri=settings.tracking_uri())
    alias = client.get_prompt_version_by_alias(PROMPT_NAME, DEFAULT_PROMPT_ALIAS)
    assert set(generated["prompt_version"]) == {int(alias.version)} and set(generated["prompt_name"]) == {PROMPT_NAME}
    assert set(generated["model"]) == {"scripted-model"}
    metadata = result.asset_materializations_for_node("subject_line_variants")[0].metadata
    assert metadata["provider"].value == "openai_compatible"
    assert metadata["rejected_by_reason"].value == {
        "contains_email": 1, "banned_claim": 1, "invalid_json": 1, "timeout": 1, "too_long": 4, "unknown_block_id": 1}
    # MLflow's process-wide tracking URI is put back (it was unset).
    assert uri_after is None


def test_generation_calls_are_traced_in_mlflow_with_segment_inputs_and_tokens(copy_run):
    _, settings, _, _, _ = copy_run
    client = MlflowClient(tracking_uri=settings.tracking_uri())
    experiment = client.get_experiment_by_name(COPY_EXPERIMENT)
    traces = client.search_traces(locations=[experiment.experiment_id], max_results=50)
    assert len(traces) == len(SCRIPTED)
    recorded = set(variants(settings).query("provider == 'openai_compatible'")["trace_id"])
    assert {trace.info.trace_id for trace in traces} == recorded
    statuses = sorted(str(trace.info.state) for trace in traces)
    # The call fails for invalid JSON, an unknown block and the timeout; the guardrails judge the rest later.
    assert sum("OK" in s for s in statuses) == len(SCRIPTED) - 3
    root_attributes = [trace.data.spans[0].attributes for trace in traces]
    assert sum(a.get("completion_tokens") == 30 for a in root_attributes) == len(SCRIPTED) - 1  # all but the timeout
    inputs = [trace.data.spans[0].inputs for trace in traces]
    assert all(set(i["segment"]) == {"lifecycle_stage", "top_category", "recommendation_category", "season"}
               for i in inputs)
    assert {i["segment"]["top_category"] for i in inputs} == {category for category, _ in SCRIPTED}
    version = str(set(variants(settings)["prompt_version"].dropna()).pop())
    assert {trace.info.tags["mlflow.linkedPrompts"] for trace in traces} == {
        json.dumps([{"name": PROMPT_NAME, "version": version}])}


def test_the_good_answer_awaits_a_reviewer_and_compositions_of_approved_blocks_are_auto_approved(copy_run):
    _, settings, _, _, _ = copy_run
    log = settings.warehouse().read(f"select * from {tables.COPY_VARIANT_APPROVALS}")
    table = variants(settings)
    good = table.query("provider == 'openai_compatible' and guardrail_passed")["variant_id"].tolist()
    assert len(good) == 1
    assert log.loc[log["variant_id"] == good[0], "to_state"].tolist() == ["proposed"]
    composed = set(table.query("provider == 'approved_blocks' and guardrail_passed")["variant_id"])
    approved = set(log.loc[log["to_state"] == "approved", "variant_id"])
    assert approved == composed


def test_reviewers_see_each_approved_and_proposed_email_rendered(copy_run):
    state, settings, _, _, _ = copy_run
    folder = state / "reports" / "copy" / DAY.isoformat()
    table = variants(settings).query("guardrail_passed")
    files = {path.stem for path in folder.glob("v_*.html")} | {path.stem for path in folder.glob("g_*.html")}
    assert files == set(table["variant_id"])
    good = table.query("provider == 'openai_compatible'").iloc[0]
    email = parse_email((folder / f"{good['variant_id']}.html").read_text())
    assert email.title == good["subject_line"] and email.preheader == good["preheader"]
    assert email.body_block_ids == json.loads(good["body_block_ids"])
    assert email.product_ids == ["P1ap", "P2ap", "P3ap"]
    assert email.footer_ids == ["ft_standard"] and email.unsubscribe_links[0][1] == "Unsubscribe from these emails"
    assert "1 Market Street" in email.address_text
    index = (folder / "index.html").read_text()
    assert index.count('class="variant"') == len(files) and 'data-state="proposed"' in index


def test_approval_by_cli_and_by_job_and_the_planned_sends_check(copy_run, monkeypatch, capsys):
    _, settings, _, _, _ = copy_run
    warehouse = settings.warehouse()
    good = variants(settings).query("provider == 'openai_compatible' and guardrail_passed")["variant_id"].item()
    send_day = DAY + timedelta(days=1)
    with duckdb.connect(str(settings.warehouse_path())) as connection:
        connection.execute(f"create table {tables.PLANNED_SENDS} (planned_for timestamp, variant_id varchar)")
        connection.execute(f"insert into {tables.PLANNED_SENDS} values (?, ?), (?, ?)",
                           [send_day, good, send_day, "v_never_recorded"])
    assert unapproved_planned_sends(warehouse, send_day).to_dict("list") == {
        "approval_state": ["no_record", "proposed"], "sends": [1, 1]}

    monkeypatch.setenv("PIPELINE_STATE_DIR", str(settings.state_path() / "elsewhere"))
    assert approval_cli(["--list"]) == 2 and "no warehouse at" in capsys.readouterr().err
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(settings.state_path()))
    assert approval_cli(["--list"]) == 0 and good in capsys.readouterr().out
    assert approval_cli([good, "retired", "--reviewer", "Ana", "--reason", "x"]) == 2  # proposed cannot retire
    assert "can move to ['approved', 'rejected']" in capsys.readouterr().err
    assert approval_cli([good, "approved", "--reviewer", "Ana (lifecycle lead)", "--reason", "on brand"]) == 0
    assert unapproved_planned_sends(warehouse, send_day).to_dict("list") == {"approval_state": ["no_record"], "sends": [1]}

    result = review_copy_variant_job.execute_in_process(
        run_config={"ops": {"review_copy_variant": {"config": {
            "variant_id": good, "decision": "retired", "reviewer": "Ben", "reason": "season over"}}}},
        resources={"settings": settings}, instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    log = warehouse.read(f"select * from {tables.COPY_VARIANT_APPROVALS} where variant_id = ?", [good])
    assert log[["from_state", "to_state", "reviewer", "reason"]].values.tolist() == [
        [None, "proposed", "provider openai_compatible", "generated and passed the guardrails"],
        ["proposed", "approved", "Ana (lifecycle lead)", "on brand"],
        ["approved", "retired", "Ben", "season over"],
    ]
    assert unapproved_planned_sends(warehouse, send_day)["sends"].sum() == 2


def test_the_definitions_hold_the_provider_resource_the_review_job_and_the_blocking_check():
    from orchestration.definitions import defs as build_defs

    defs = build_defs()
    graph = defs.resolve_asset_graph()
    blocking = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys
                if graph.get_check_spec(key).blocking}
    assert ("planned_sends", "only_approved_variants_planned") in blocking
    assert defs.resolve_job_def("review_copy_variant_job") is not None
    provider = defs.resources["copy_provider"]
    assert isinstance(provider, CopyProviderResource) and provider.auto_approve_approved_blocks is True


def test_with_nothing_configured_the_provider_is_approved_blocks_and_a_bad_name_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("COPY_PROVIDER", raising=False)
    assert CopyProviderResource().provider_name() == "approved_blocks"
    monkeypatch.setenv("COPY_PROVIDER", "gpt")
    with pytest.raises(dg.Failure, match="'gpt'.*not one of"):
        CopyProviderResource().provider_name()
    monkeypatch.setenv("COPY_PROVIDER", "openai_compatible")
    monkeypatch.delenv("COPY_BASE_URL", raising=False)
    with pytest.raises(dg.Failure, match="COPY_BASE_URL"):
        CopyProviderResource().openai_client()


def test_a_changed_template_is_a_new_version_and_only_moving_the_alias_releases_it(copy_run):
    from ml.copy.prompts import ensure_registered_prompt

    _, settings, _, _, _ = copy_run
    client = settings.mlflow_client()
    current = ensure_registered_prompt(client, alias="staging")
    changed = [{"role": "user", "content": "Season {{ season }}, stage {{ lifecycle_stage }}"}]
    after_change = ensure_registered_prompt(client, alias="staging", template=changed)
    assert after_change.version == current.version  # registered, but the alias still decides
    versions = sorted(int(v.version) for v in client.search_prompt_versions(PROMPT_NAME))
    assert len(versions) == 2 and ensure_registered_prompt(client, alias="staging", template=changed).version == current.version
    assert len(client.search_prompt_versions(PROMPT_NAME)) == 2  # no third version for the same text
    client.set_prompt_alias(PROMPT_NAME, "staging", versions[-1])
    released = ensure_registered_prompt(client, alias="staging")
    assert released.version == versions[-1] and released.template[0]["content"].startswith("Season")
