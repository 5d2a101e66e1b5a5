"""The synthetic audience generator: contract, determinism, dirty data, oracle and signal."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ml.privacy import normalise_email
from ml.simulator import CORRUPTION_KINDS, AudienceConfig, DirtyDataConfig, generate_landing
from ml.simulator import behaviour, formatting, names
from ml.simulator import randomness as rnd
from ml.simulator.contract import CORRUPTIBLE_FILES, LANDING_COLUMNS
from ml.simulator.population import canonical_emails, draw_people, vary_emails
from ml.vocabulary import REVOKING_EMAIL_EVENT_TYPES

REPO = Path(__file__).resolve().parents[2]
EXTRACTED_AT = "2026-06-30 00:00:00"


def _generate(tmp: Path, config: AudienceConfig):
    return generate_landing(config, tmp / "landing", tmp / "oracle")


@pytest.fixture(scope="module")
def dirty_world(tmp_path_factory):
    """2,000 people over 45 days, every corruption kind at 2 %, several chunks."""
    tmp = tmp_path_factory.mktemp("dirty")
    config = AudienceConfig(n_people=2000, days=45, seed=11, chunk_size=700, dirty=DirtyDataConfig.uniform(0.02))
    return config, _generate(tmp, config), tmp


@pytest.fixture(scope="module")
def clean_world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clean")
    config = AudienceConfig(n_people=4000, days=60, seed=5, dirty=DirtyDataConfig.clean())
    return config, _generate(tmp, config), tmp


def _read(tmp: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(tmp / "landing" / name)


def _truth(tmp: Path) -> dict:
    return json.loads((tmp / "oracle" / "truth.json").read_text())


# -- the pipeline's own verdicts: dbt's compiled SQL run on the simulator's files ------------

# Landing file -> (system, subscriber id column) of the person a row belongs to.
_SUBSCRIBER_OF = {
    "crm_subscribers.parquet": ("crm", "crm_id"),
    "esp_subscribers.parquet": ("esp", "esp_id"),
    "consent_events.parquet": (None, "source_subscriber_id"),
    "suppressions.parquet": (None, "source_subscriber_id"),
    "sends.parquet": ("esp", "esp_id"),
    "email_events.parquet": ("esp", "esp_id"),
    "orders.parquet": ("crm", "crm_id"),
}


@pytest.fixture(scope="module")
def dbt_verdicts(tmp_path_factory):
    """A function: simulator folder -> {file: frame of rn, id, system, reason} as dbt judges it.

    The reasons come from the project's own dbt models (compiled once, replayed in memory by
    tests/dbt/compiled_sql.py), so this test checks the simulator against the one rule source.
    """
    from tests.dbt.compiled_sql import compile_project

    work = tmp_path_factory.mktemp("dbt_for_simulator")
    project = compile_project(work, work / "landing", EXTRACTED_AT, "tests-simulator-secret")
    classified = {
        f"{node['name'].removeprefix('int_').removesuffix('_classified')}.parquet": node["relation_name"]
        for node in project.nodes.values()
        if node["name"].startswith("int_") and node["name"].endswith("_classified")
    }

    def verdicts(tmp: Path) -> dict[str, pd.DataFrame]:
        shutil.rmtree(project.landing_dir, ignore_errors=True)
        shutil.copytree(tmp / "landing", project.landing_dir)
        connection = project.run([f"int_{name.removesuffix('.parquet')}_classified" for name in _SUBSCRIBER_OF])
        out = {}
        for name, (system, id_column) in _SUBSCRIBER_OF.items():
            reasons = connection.execute(
                f"select source_row_key as rn, reason_code as reason from {classified[name]} "
                "where landing_batch = 'initial' order by rn"
            ).df()
            raw = _read(tmp, name)
            assert len(reasons) == len(raw) and (reasons["rn"].to_numpy() == range(len(raw))).all(), name
            reasons["id"] = raw[id_column].to_numpy()
            reasons["system"] = system if system else raw["source_system"].to_numpy()
            reasons["reason"] = reasons["reason"].astype(object).where(reasons["reason"].notna(), None)
            out[name] = reasons
        return out

    return verdicts


def _logged(tmp: Path) -> pd.DataFrame:
    return pd.read_parquet(tmp / "oracle" / "corruptions.parquet")


# -- the contract ---------------------------------------------------------------------------


def _contract_columns() -> dict[str, list[str]]:
    """Column names per file, parsed from docs/data_contract.md."""
    files: dict[str, list[str]] = {}
    current = None
    for line in (REPO / "docs" / "data_contract.md").read_text().splitlines():
        heading = re.match(r"^### `(\w+\.parquet)`", line)
        if heading:
            current = heading.group(1)
            files[current] = []
        elif line.startswith("#"):
            current = None
        elif current and line.startswith("| `"):
            files[current].append(line.split("|")[1].strip().strip("`"))
    return files


def test_files_and_columns_match_the_contract_document(dirty_world):
    _, summary, tmp = dirty_world
    from ml.landing import contract

    documented = {name: set(columns) for name, columns in _contract_columns().items()}
    assert documented == {
        f"{table}.parquet": {*columns, *contract.OPTIONAL_COLUMNS.get(table, ())}
        for table, columns in contract.LANDING_COLUMNS.items()
    }
    # The simulator writes every required column and some optional ones.
    for name, columns in LANDING_COLUMNS.items():
        assert set(contract.LANDING_COLUMNS[name.removesuffix(".parquet")]) <= set(columns) <= documented[name], name
    written = sorted(p.name for p in (tmp / "landing").iterdir())
    assert written == sorted([*LANDING_COLUMNS, "_manifest.json"])
    for name, columns in LANDING_COLUMNS.items():
        schema = pq.read_schema(tmp / "landing" / name)
        assert tuple(schema.names) == columns, name
        for field in schema:
            expected = "double" if (name, field.name) == ("products.parquet", "price") else "string"
            assert str(field.type) == expected, (name, field.name)
        assert pq.read_metadata(tmp / "landing" / name).num_rows == summary.rows[name]
    assert not (tmp / "landing" / "hillstrom.csv").exists()


def test_manifest_carries_extracted_at_and_generator_parameters(dirty_world):
    config, _, tmp = dirty_world
    manifest = json.loads((tmp / "landing" / "_manifest.json").read_text())
    assert manifest["extracted_at"] == EXTRACTED_AT
    assert datetime.fromisoformat(manifest["extracted_at"]) == config.end
    generator = manifest["generator"]
    assert generator["seed"] == 11 and generator["n_people"] == 2000 and generator["days"] == 45
    assert generator["dirty"]["invalid_timezone"] == 0.02


def test_timestamps_are_contract_formatted_strings(clean_world):
    _, _, tmp = clean_world
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
    for name, column in (("email_events.parquet", "occurred_at"), ("orders.parquet", "ordered_at"),
                         ("crm_subscribers.parquet", "signup_at"), ("campaigns.parquet", "launched_at")):
        values = _read(tmp, name)[column]
        assert values.map(lambda v: bool(stamp.match(v))).all(), name
        parsed = pd.to_datetime(values, format="%Y-%m-%d %H:%M:%S")
        assert parsed.max() < pd.Timestamp(EXTRACTED_AT)
    amounts = _read(tmp, "orders.parquet")["amount"]
    assert amounts.str.fullmatch(r"\d+\.\d{2}").all() and (amounts.astype(float) > 0).all()


def test_every_send_and_event_is_plausible(clean_world):
    config, _, tmp = clean_world
    sends = _read(tmp, "sends.parquet")
    events = _read(tmp, "email_events.parquet").merge(
        sends[["send_id", "sent_at", "esp_id"]], on="send_id", suffixes=("", "_send")
    )
    assert len(events) == len(_read(tmp, "email_events.parquet"))  # every event has its send
    assert (events["esp_id"] == events["esp_id_send"]).all()
    assert (events["occurred_at"] > events["sent_at"]).all()
    per_send = events.groupby("send_id")["event_type"].agg(lambda t: set(t))
    assert per_send.map(lambda t: ("delivered" in t) != ("bounce" in t)).all()
    assert per_send.map(lambda t: "click" not in t or "open" in t).all()
    window_start = pd.Timestamp(config.end - timedelta(days=config.days))
    assert pd.to_datetime(sends["sent_at"]).min() >= window_start
    assert set(_read(tmp, "campaigns.parquet")["campaign_id"]) >= set(sends["campaign_id"])
    assert set(_read(tmp, "products.parquet")["product_id"]) >= set(_read(tmp, "orders.parquet")["product_id"])
    assert len(_read(tmp, "campaigns.parquet")) == pytest.approx(config.days / 2, abs=2)


def test_sends_respect_consent_and_suppression(clean_world):
    _, _, tmp = clean_world
    con = duckdb.connect()
    land = tmp / "landing"
    late = con.execute(f"""
        with optout as (
            select source_subscriber_id as esp_id, min(recorded_at) as moment from '{land}/consent_events.parquet'
            where source_system = 'esp' and status <> 'subscribed' group by 1
            union all
            select source_subscriber_id, min(suppressed_at) from '{land}/suppressions.parquet'
            where source_system = 'esp' group by 1
            union all
            select esp_id, min(occurred_at) from '{land}/email_events.parquet'
            where event_type in ('unsubscribe', 'bounce', 'complaint') group by 1
        ), first_optout as (select esp_id, min(moment) as moment from optout group by 1)
        select count(*) from '{land}/sends.parquet' s join first_optout o using (esp_id)
        where s.sent_at::timestamp > o.moment::timestamp + interval 2 hour
    """).fetchone()[0]
    assert late == 0
    before_created = con.execute(f"""
        select count(*) from '{land}/sends.parquet' s join '{land}/esp_subscribers.parquet' e using (esp_id)
        where s.sent_at <= e.created_at
    """).fetchone()[0]
    assert before_created == 0


# -- determinism and chunking ---------------------------------------------------------------


def _tables(tmp: Path) -> dict[str, pd.DataFrame]:
    return {name: _read(tmp, name) for name in LANDING_COLUMNS}


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    config = AudienceConfig(n_people=300, days=30, seed=3, dirty=DirtyDataConfig.uniform(0.02))
    first = _generate(tmp_path / "a", config)
    second = _generate(tmp_path / "b", config)
    assert first.rows == second.rows and first.corrupted_rows == second.corrupted_rows
    a, b = _tables(tmp_path / "a"), _tables(tmp_path / "b")
    for name in LANDING_COLUMNS:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert _truth(tmp_path / "a") == _truth(tmp_path / "b")
    for oracle_file in ("people.parquet", "corruptions.parquet", "send_probabilities.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "a" / "oracle" / oracle_file),
            pd.read_parquet(tmp_path / "b" / "oracle" / oracle_file),
        )
    _generate(tmp_path / "c", replace(config, seed=4))
    assert not _read(tmp_path / "c", "email_events.parquet").equals(a["email_events.parquet"])


def test_chunk_boundaries_neither_lose_nor_duplicate_rows(tmp_path):
    config = AudienceConfig(n_people=500, days=30, seed=9, dirty=DirtyDataConfig.uniform(0.02))
    whole = _generate(tmp_path / "whole", replace(config, chunk_size=500))
    chunked = _generate(tmp_path / "chunked", replace(config, chunk_size=37))
    assert whole.rows == chunked.rows
    assert whole.corrupted_rows == chunked.corrupted_rows
    assert whole.expected_canonical_subscribers == chunked.expected_canonical_subscribers
    a, b = _tables(tmp_path / "whole"), _tables(tmp_path / "chunked")
    for name, columns in LANDING_COLUMNS.items():
        left = a[name].sort_values(list(columns), na_position="first").reset_index(drop=True)
        right = b[name].sort_values(list(columns), na_position="first").reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right, obj=name)
    assert sorted(_truth(tmp_path / "whole")["quarantined_subscriber_ids"]["crm_subscribers.parquet"]) == sorted(
        _truth(tmp_path / "chunked")["quarantined_subscriber_ids"]["crm_subscribers.parquet"]
    )
    # The same corrupted rows are logged; only their positions may move between chunkings.
    assert len(_logged(tmp_path / "whole")) == len(_logged(tmp_path / "chunked"))


def test_oracle_folder_must_be_outside_the_landing_folder(tmp_path):
    config = AudienceConfig(n_people=10, days=5)
    with pytest.raises(ValueError, match="separate"):
        generate_landing(config, tmp_path / "landing", tmp_path / "landing" / "oracle")
    with pytest.raises(ValueError, match="separate"):
        generate_landing(config, tmp_path / "same", tmp_path / "same")


# -- dirty data -----------------------------------------------------------------------------


def test_every_kind_is_injected_at_its_configured_rate(dirty_world):
    config, summary, tmp = dirty_world
    logged = _logged(tmp)
    assert set(logged["kind"]) == set(CORRUPTION_KINDS)
    counts = logged.groupby(["source_file", "kind"]).size()
    for name, spec in CORRUPTIBLE_FILES.items():
        assert set(logged.loc[logged["source_file"] == name, "kind"]) <= set(spec.kinds), name
        for kind in spec.kinds:
            got = int(counts.get((name, kind), 0))
            assert got == summary.corrupted_rows[name].get(kind, 0)
            injected = summary.corrupted_rows[name]
            copies = injected.get("duplicate_event_id", 0) + injected.get("exact_duplicate", 0)
            expected = config.dirty.rate(kind) * (summary.rows[name] - copies)
            if expected >= 20:  # large enough for a binomial check; rows of broken subscribers are skipped
                assert 0.8 * expected - 4 * expected**0.5 <= got <= expected + 4 * expected**0.5, (name, kind, got)
    assert summary.total_corrupted_rows == len(logged)


def test_logged_corruptions_are_exactly_what_the_pipeline_finds(dirty_world, dbt_verdicts):
    _, _, tmp = dirty_world
    logged = _logged(tmp)
    truth = _truth(tmp)
    quarantined = {
        "crm": set(truth["quarantined_subscriber_ids"]["crm_subscribers.parquet"]),
        "esp": set(truth["quarantined_subscriber_ids"]["esp_subscribers.parquet"]),
    }
    for name, reasons in dbt_verdicts(tmp).items():
        mine = logged[logged["source_file"] == name].set_index("source_row_key")["kind"]
        assert mine.index.is_unique, name
        found = reasons.set_index("rn")["reason"]
        # Every logged row shows exactly its own problem (first in the contract's order).
        independent = found.reindex(mine.index)
        assert (independent == mine).all(), (name, independent[independent != mine].head())
        # Every other problem is a cascade: an event of a subscriber whose own row is quarantined.
        extra = reasons[reasons["reason"].notna() & ~reasons["rn"].isin(mine.index)]
        assert set(extra["reason"]) <= {"unknown_subscriber"}, (name, extra.head())
        for system, ids in extra.groupby("system")["id"]:
            assert set(ids) <= quarantined[system], name
        if name.startswith(("crm", "esp")):
            quarantined_rows = reasons[reasons["reason"].notna()]
            assert len(quarantined_rows) == len(quarantined[name[:3]])


def test_duplicates_come_after_their_original(dirty_world):
    _, _, tmp = dirty_world
    logged = _logged(tmp)
    for name in ("email_events.parquet", "sends.parquet", "consent_events.parquet"):
        frame = _read(tmp, name)
        key = CORRUPTIBLE_FILES[name].key
        for kind in ("duplicate_event_id", "exact_duplicate"):
            rows = logged.query("source_file == @name and kind == @kind")["source_row_key"].to_numpy()
            assert len(rows), (name, kind)
            for row in rows[:25]:
                earlier = frame.iloc[:row]
                same_key = earlier[earlier[key] == frame.iloc[row][key]]
                assert len(same_key) == 1
                identical = same_key.iloc[0].equals(frame.iloc[row])
                assert identical == (kind == "exact_duplicate")


def test_clean_mode_corrupts_nothing(clean_world, dbt_verdicts):
    _, summary, tmp = clean_world
    assert summary.total_corrupted_rows == 0
    assert len(_logged(tmp)) == 0
    for name, reasons in dbt_verdicts(tmp).items():
        assert reasons["reason"].isna().all(), (name, reasons[reasons["reason"].notna()].head())
    truth = _truth(tmp)
    assert all(not ids for ids in truth["quarantined_subscriber_ids"].values())
    assert truth["expected_canonical_subscribers"] == 4000


def test_dirty_data_config_validation():
    assert DirtyDataConfig.clean().is_clean
    assert not DirtyDataConfig().is_clean
    assert all(0.002 <= DirtyDataConfig().rate(k) <= 0.01 for k in CORRUPTION_KINDS)
    with pytest.raises(ValueError):
        DirtyDataConfig(invalid_email=0.5)
    with pytest.raises(ValueError):
        AudienceConfig(share_in_both=0.9, share_crm_only=0.2)
    with pytest.raises(ValueError):
        AudienceConfig(n_people=0)


# -- identity --------------------------------------------------------------------------------


@pytest.mark.parametrize("world", ["dirty_world", "clean_world"])
def test_expected_canonical_subscribers_counts_distinct_people_with_a_clean_row(world, request, dbt_verdicts):
    _, summary, tmp = request.getfixturevalue(world)
    reasons = dbt_verdicts(tmp)
    emails = []
    for name in ("crm_subscribers.parquet", "esp_subscribers.parquet"):
        frame = _read(tmp, name)
        valid = reasons[name].sort_values("rn")["reason"].isna().to_numpy()
        emails += [normalise_email(e) for e in frame.loc[valid, "email"]]
    assert len(set(emails)) == summary.expected_canonical_subscribers == _truth(tmp)["expected_canonical_subscribers"]


def test_expected_canonical_subscribers_on_a_tiny_hand_checked_case(tmp_path):
    config = AudienceConfig(n_people=40, days=10, seed=1, dirty=DirtyDataConfig(**{
        **{k: 0.0 for k in CORRUPTION_KINDS}, "invalid_email": 0.1, "invalid_timezone": 0.1}))
    summary = _generate(tmp_path, config)
    people = pd.read_parquet(tmp_path / "oracle" / "people.parquet")
    bad = _truth(tmp_path)["quarantined_subscriber_ids"]
    crm_ok = people["crm_id"].notna() & ~people["crm_id"].isin(bad["crm_subscribers.parquet"])
    esp_ok = people["esp_id"].notna() & ~people["esp_id"].isin(bad["esp_subscribers.parquet"])
    assert 0 < len(bad["crm_subscribers.parquet"]) + len(bad["esp_subscribers.parquet"])
    assert summary.expected_canonical_subscribers == int((crm_ok | esp_ok).sum())
    assert summary.expected_canonical_subscribers < 40  # someone lost their only row (seeded)


def test_overlap_and_email_variation_follow_the_configuration(clean_world, tmp_path):
    _, _, tmp = clean_world
    people = pd.read_parquet(tmp / "oracle" / "people.parquet")
    assert (people["in_crm"] & people["in_esp"]).mean() == pytest.approx(0.70, abs=0.025)
    assert (people["in_crm"] & ~people["in_esp"]).mean() == pytest.approx(0.15, abs=0.02)
    assert (~people["in_crm"] & people["in_esp"]).mean() == pytest.approx(0.15, abs=0.02)
    both = people[people["in_crm"] & people["in_esp"]]
    for name, key, share in (("esp_subscribers.parquet", "esp_id", 0.40), ("crm_subscribers.parquet", "crm_id", 0.10)):
        emails = _read(tmp, name).set_index(key)["email"].reindex(both[key])
        varied = (emails != emails.map(normalise_email)).mean()
        assert varied == pytest.approx(share, abs=0.03), name
    crm = _read(tmp, "crm_subscribers.parquet").set_index("crm_id").reindex(both["crm_id"])
    esp = _read(tmp, "esp_subscribers.parquet").set_index("esp_id").reindex(both["esp_id"])
    assert (crm["email"].map(normalise_email).to_numpy() == esp["email"].map(normalise_email).to_numpy()).all()
    assert (crm["first_name"].to_numpy() == esp["first_name"].to_numpy()).all()

    other = AudienceConfig(n_people=1500, days=10, share_in_both=0.4, share_crm_only=0.4, dirty=DirtyDataConfig.clean())
    _generate(tmp_path, other)
    people = pd.read_parquet(tmp_path / "oracle" / "people.parquet")
    assert (people["in_crm"] & people["in_esp"]).mean() == pytest.approx(0.4, abs=0.04)
    assert (~people["in_esp"]).mean() == pytest.approx(0.4, abs=0.04)


def test_emails_are_unique_realistic_and_on_example_domains(clean_world):
    _, _, tmp = clean_world
    emails = pd.concat([_read(tmp, n)["email"] for n in ("crm_subscribers.parquet", "esp_subscribers.parquet")])
    canonical = emails.map(normalise_email)
    assert canonical.str.fullmatch(r"[a-z]+[._]?[a-z]*\d+@example\.(com|org|net)").all()
    people = pd.read_parquet(tmp / "oracle" / "people.parquet")
    assert canonical.nunique() == len(people)
    assert set(_read(tmp, "crm_subscribers.parquet")["first_name"]) <= set(names.FIRST_NAMES)
    valid_zones = {r[0] for r in duckdb.sql("select name from pg_timezone_names()").fetchall()}
    assert {t[0] for t in names.TIMEZONES} <= valid_zones


def test_vary_emails_only_changes_case_and_spaces():
    people = draw_people(AudienceConfig(), np.arange(200))
    emails = canonical_emails(people)
    for variant in range(6):
        varied = vary_emails(emails, np.full(len(emails), variant))
        assert [normalise_email(v) for v in varied] == list(emails)
        assert (varied != emails).all() == (variant != 0)


# -- the oracle ------------------------------------------------------------------------------


def test_oracle_has_no_pii(dirty_world):
    _, _, tmp = dirty_world
    landing_emails = set()
    first = set()
    for name in ("crm_subscribers.parquet", "esp_subscribers.parquet"):
        frame = _read(tmp, name)
        landing_emails |= {normalise_email(e) for e in frame["email"].dropna()}
        first |= set(frame["first_name"].dropna())
    assert sorted(p.name for p in (tmp / "oracle").iterdir()) == sorted(
        ["people.parquet", "send_probabilities.parquet", "corruptions.parquet", "products.parquet", "truth.json", "world",
         "history_purchase_hazard.parquet"]
    )
    assert [p.name for p in (tmp / "oracle" / "world").iterdir()] == ["state_2026-06-29.parquet"]
    for path in [p for p in (tmp / "oracle").rglob("*") if p.is_file()]:
        raw = path.read_bytes()
        assert b"@example." not in raw.lower(), path.name
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            assert not {"email", "first_name", "last_name", "name"} & set(frame.columns), path.name
            for column in frame.select_dtypes(include="object"):
                values = set(frame[column].dropna().astype(str))
                assert not values & first and not values & landing_emails, (path.name, column)


def test_people_oracle_links_ids_and_traits(dirty_world):
    _, _, tmp = dirty_world
    people = pd.read_parquet(tmp / "oracle" / "people.parquet")
    assert len(people) == 2000 and people["person_id"].is_unique
    assert (people["crm_id"].notna() == people["in_crm"]).all()
    assert (people["esp_id"].notna() == people["in_esp"]).all()
    affinity = people[[c for c in people.columns if c.startswith("affinity_")]]
    assert np.allclose(affinity.sum(axis=1), 1.0)
    assert people["engagement"].between(0, 1).all() and (people["base_daily_purchase_hazard"] > 0).all()
    truth = _truth(tmp)
    assert truth["n_people"] == 2000 and truth["extracted_at"] == EXTRACTED_AT
    assert set(truth["rows"]) == set(LANDING_COLUMNS)


def test_send_probabilities_are_the_true_open_and_click_rates(clean_world):
    _, _, tmp = clean_world
    sends = _read(tmp, "sends.parquet")
    probabilities = pd.read_parquet(tmp / "oracle" / "send_probabilities.parquet")
    assert set(probabilities["send_id"]) == set(sends["send_id"])
    assert probabilities[["p_open", "p_click"]].apply(lambda c: c.between(0, 1).all()).all()
    assert np.allclose(probabilities["p_click"], probabilities["p_open"] * probabilities["p_click_given_open"])
    events = _read(tmp, "email_events.parquet")
    delivered = probabilities[probabilities["send_id"].isin(events.loc[events["event_type"] == "delivered", "send_id"])]
    opened = delivered["send_id"].isin(events.loc[events["event_type"] == "open", "send_id"])
    clicked = delivered["send_id"].isin(events.loc[events["event_type"] == "click", "send_id"])
    # A few opens after the export moment are censored, hence the one-sided slack.
    assert opened.mean() == pytest.approx(delivered["p_open"].mean(), rel=0.04)
    assert clicked.mean() == pytest.approx(delivered["p_click"].mean(), rel=0.12)
    # The oracle probabilities rank opens far better than chance.
    high = delivered["p_open"] > delivered["p_open"].median()
    assert opened[high].mean() > 2 * opened[~high].mean()


# -- the signal ------------------------------------------------------------------------------


def test_recent_clickers_buy_more_in_the_next_14_days(clean_world):
    _, _, tmp = clean_world
    land = tmp / "landing"
    rates = duckdb.sql(f"""
        with link as (
            select c.crm_id, e.esp_id
            from '{land}/crm_subscribers.parquet' c
            join '{land}/esp_subscribers.parquet' e on lower(trim(c.email)) = lower(trim(e.email))
        ), cutoffs as (
            select unnest([timestamp '2026-05-19', timestamp '2026-06-02', timestamp '2026-06-16']) as cutoff
        ), labelled as (
            select k.cutoff, l.crm_id,
                exists (select 1 from '{land}/email_events.parquet' ev where ev.esp_id = l.esp_id
                        and ev.event_type = 'click' and ev.occurred_at::timestamp >= k.cutoff - interval 14 day
                        and ev.occurred_at::timestamp < k.cutoff) as clicked,
                exists (select 1 from '{land}/orders.parquet' o where o.crm_id = l.crm_id
                        and o.ordered_at::timestamp >= k.cutoff
                        and o.ordered_at::timestamp < k.cutoff + interval 14 day) as bought
            from link l cross join cutoffs k
        )
        select clicked, avg(bought::int) as rate, count(*) as n from labelled group by 1
    """).df().set_index("clicked")
    assert rates.loc[True, "n"] > 300
    assert rates.loc[True, "rate"] > 2 * rates.loc[False, "rate"], rates


# -- building blocks -------------------------------------------------------------------------


def test_timestamp_formatting_matches_python():
    seconds = np.random.default_rng(0).integers(-2_000_000_000, 8_000_000_000, 5000)
    expected = [(datetime(1970, 1, 1) + timedelta(seconds=int(s))).strftime("%Y-%m-%d %H:%M:%S") for s in seconds]
    assert formatting.timestamps(seconds).to_pylist() == expected
    assert formatting.epoch_seconds(datetime(2026, 6, 30)) == 1_782_777_600


def test_amount_and_id_formatting():
    amounts = formatting.amounts(np.array([49.9, 0.01, 1234.5, 0.0, 9.999])).to_pylist()
    assert amounts == ["49.90", "0.01", "1234.50", "0.00", "10.00"]
    assert formatting.decimal_ids("C", np.array([5, 12345678]), 8).to_pylist() == ["C00000005", "C12345678"]
    assert formatting.hex_ids("e_", np.array([255, 2**64 - 1], dtype=np.uint64)).to_pylist() == [
        "e_00000000000000ff", "e_ffffffffffffffff"]
    with pytest.raises(ValueError):
        formatting.decimal_ids("C", np.array([10**8]), 8)


def test_counter_based_randomness_is_keyed_not_positional():
    keys = np.arange(10_000)
    u = rnd.uniform(1, "s", keys, 3)
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert np.array_equal(rnd.uniform(1, "s", keys[::-1], 3), u[::-1])  # order does not matter
    assert not np.array_equal(rnd.uniform(1, "t", keys, 3), u)
    assert not np.array_equal(rnd.uniform(2, "s", keys, 3), u)
    ids = rnd.unique_ids(1, "x", np.arange(100_000, dtype=np.uint64))
    assert len(np.unique(ids)) == 100_000


def test_behaviour_model_directions():
    engagement = np.full(3, 0.3)
    no_fatigue = behaviour.open_probability(engagement, np.full(3, 0.2), np.zeros(3), np.zeros(3, bool))
    tired = behaviour.open_probability(engagement, np.full(3, 0.2), np.full(3, 6), np.zeros(3, bool))
    churned = behaviour.open_probability(engagement, np.full(3, 0.2), np.zeros(3), np.ones(3, bool))
    assert (tired < no_fatigue).all() and (churned == 0).all()
    assert (behaviour.click_given_open_probability(engagement, np.full(3, 0.6))
            > behaviour.click_given_open_probability(engagement, np.full(3, 0.1))).all()
    daily = np.full((4, 14), 0.004)
    click = behaviour.CLICK_PURCHASE_BOOST + behaviour.OPEN_PURCHASE_BOOST
    p = behaviour.window_purchase_probability(
        daily, boost_level=np.array([0.0, 0.0, 0.0, 5.0]),
        added_boost=np.array([click, behaviour.OPEN_PURCHASE_BOOST, behaviour.AVERSE_DELIVERY_PENALTY, 0.0]),
    )
    no_email = behaviour.window_purchase_probability(daily[:1], np.zeros(1), 0.0)[0]
    assert p[0] > 2 * p[1] > 2 * no_email > 2 * p[2] > 0  # a click sells, an averse reader buys less
    assert p[3] > 2 * no_email  # a boost carried over from earlier clicks still sells
    assert behaviour.hazard_factor(np.array([-5.0]))[0] == behaviour.MIN_HAZARD_FACTOR
    averse = behaviour.unsubscribe_probability(np.zeros(1), np.zeros(1, bool), np.ones(1, bool))
    assert averse[0] == pytest.approx(behaviour.AVERSE_UNSUBSCRIBE_FACTOR * behaviour.BASE_UNSUBSCRIBE)
    affinity = np.array([[0.5, 0.1, 0.1, 0.1, 0.1, 0.1]])
    assert behaviour.category_match(affinity, 0)[0] == 0.5
    assert behaviour.category_match(affinity, behaviour.GENERAL)[0] == pytest.approx(1 / 6)
    appeal = behaviour.subject_appeal(["a", "b", "a", "a"], ["toys", "toys", "toys", "home"])
    assert appeal[0] == appeal[2] != appeal[3] and 0.8 <= appeal.min() and appeal.max() <= 1.2


def test_the_crm_exports_audit_attributes_with_real_gaps_and_spellings(clean_world):
    config, _, tmp = clean_world
    crm = _read(tmp, "crm_subscribers.parquet")
    year = pd.to_numeric(crm["birth_year"].replace("", None))
    age = config.end.year - year.dropna()
    assert 0.10 < year.isna().mean() < 0.20  # about 15 % not exported
    assert age.between(18, 80).all() and age.median() < 40  # skewed young
    gender = crm["gender"].replace("", None)
    assert set(gender.dropna()) == {"female", "male", "non_binary", "not_stated"}
    assert 0.05 < gender.isna().mean() < 0.15
    assert "gender" not in _read(tmp, "esp_subscribers.parquet").columns


def test_the_oracle_purchase_probability_matches_what_happened(clean_world):
    """Summed over people, the true window probabilities expect as many buyers as bought."""
    from ml.simulator.evaluation import history_purchase_probability

    config, _, tmp = clean_world
    crm_ids = _read(tmp, "crm_subscribers.parquet")["crm_id"]
    orders = _read(tmp, "orders.parquet")
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"])
    cutoff = pd.Timestamp(config.end) - pd.Timedelta(days=30)
    in_window = orders[(orders["ordered_at"] >= cutoff) & (orders["ordered_at"] < cutoff + pd.Timedelta(days=14))]
    probability = history_purchase_probability(tmp / "oracle", crm_ids, [cutoff] * len(crm_ids), 14)
    buyers = crm_ids.isin(in_window["crm_id"]).sum()
    assert buyers > 50
    assert probability.sum() == pytest.approx(buyers, rel=0.15)
    # ESP-only people cannot buy, and a window past the history has no oracle.
    assert history_purchase_probability(tmp / "oracle", [None], [cutoff], 14).tolist() == [0.0]
    assert np.isnan(history_purchase_probability(tmp / "oracle", crm_ids[:1], [pd.Timestamp(config.end)], 14)).all()


def test_audit_attributes_change_no_other_value(tmp_path, monkeypatch):
    """Birth year and gender come from streams of their own: a world whose audit attributes
    are drawn differently (another seed for those streams only) has the very same sends,
    events, orders, consent, every other CRM column and the same oracle."""
    from ml.simulator import population

    config = AudienceConfig(n_people=400, days=30, seed=3, chunk_size=150, dirty=DirtyDataConfig.uniform(0.02))
    first = _generate(tmp_path / "a", config)
    draw = population._audit_attributes
    monkeypatch.setattr(population, "_audit_attributes", lambda seed, pid, end: draw(seed + 7919, pid, end))
    second = _generate(tmp_path / "b", config)

    assert first.rows == second.rows and first.corrupted_rows == second.corrupted_rows
    a, b = _tables(tmp_path / "a"), _tables(tmp_path / "b")
    audit = ["birth_year", "gender"]
    for name in LANDING_COLUMNS:
        if name == "crm_subscribers.parquet":
            assert not a[name][audit].equals(b[name][audit])  # the switch did change them
            a[name], b[name] = a[name].drop(columns=audit), b[name].drop(columns=audit)
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)
    for name in ("sends.parquet", "email_events.parquet", "orders.parquet", "consent_events.parquet"):
        assert (tmp_path / "a" / "landing" / name).read_bytes() == (tmp_path / "b" / "landing" / name).read_bytes()
    assert _truth(tmp_path / "a") == _truth(tmp_path / "b")
    for path in sorted((tmp_path / "a" / "oracle").rglob("*.parquet")):
        other = tmp_path / "b" / "oracle" / path.relative_to(tmp_path / "a" / "oracle")
        pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(other), obj=path.name)


def test_every_revocation_names_a_subscriber_row_even_in_a_dirty_world(tmp_path):
    """A revocation whose subscriber id names nobody stops the pipeline by design
    (quality.consent_records_untied): 100,000- and 300,000-person worlds at the default rates
    never ran. So the generator never blanks a subscriber row's own id, and a revoking email
    event keeps an id that names its person (at worst in another case) even when its send's id
    is broken too."""
    dirty = replace(DirtyDataConfig.clean(), missing_required_field=0.1, unknown_subscriber=0.1)
    config = AudienceConfig(n_people=3000, days=90, seed=7, dirty=dirty)
    _generate(tmp_path, config)
    ids = set()
    for name, (_, id_column) in _SUBSCRIBER_OF.items():
        if name.startswith(("crm", "esp")):
            frame = _read(tmp_path, name)
            ids |= set(frame[id_column].dropna().str.strip().str.upper())
    consent = _read(tmp_path, "consent_events.parquet")
    events = _read(tmp_path, "email_events.parquet")
    events = events[events["event_type"].isin(REVOKING_EMAIL_EVENT_TYPES)]
    revocations = pd.concat([
        consent.loc[consent["status"] != "subscribed", "source_subscriber_id"],
        _read(tmp_path, "suppressions.parquet")["source_subscriber_id"],
        events["esp_id"],
    ]).fillna("").str.upper()
    assert len(revocations) > 200
    logged = _logged(tmp_path)
    blanked = logged.query("kind == 'missing_required_field'")
    assert blanked["source_file"].str.startswith(("crm", "esp")).sum() > 100  # the subscriber rows were hit
    assert not blanked.query("source_file == 'crm_subscribers.parquet'")["column"].eq("crm_id").any()
    # The sends of revoking events were hit too: their events must not rely on them.
    hit_sends = set(_read(tmp_path, "sends.parquet").iloc[
        logged.query("source_file == 'sends.parquet' and column == 'esp_id'")["source_row_key"]]["send_id"])
    assert events["send_id"].isin(hit_sends).sum() > 5
    untied = revocations[~revocations.isin(ids)]
    assert untied.empty, untied.head()
