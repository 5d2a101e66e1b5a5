{#-
  Every quarantined row that may carry a consent change, with the person(s) it can be tied
  to. No PII. Fail closed: a quarantined consent event, suppression, or revoking email
  event keeps its person ineligible (consent_record_quarantined) until a clean subscription
  supersedes it; see docs/warehouse.md.

  Tied means: its subscriber id matches a subscriber row of either system, kept or
  quarantined, ignoring case (and ignoring the system when the system is unreadable), or,
  for an email event, its send names such a row. A row tied to a subscriber row without a
  usable email has no subscriber_key: nobody can be emailed through it. Exact duplicates
  are left out: the identical kept copy already counts. Times are read from the row's raw
  values, leniently (lenient_utc_timestamp), only here: clean rows never need it.
-#}
-- depends_on: {{ ref('int_landing_files_judged') }}
{%- set revoking_fragments = var('revocation_event_type_fragments') | join('|') %}

with records as (
    select * from {{ ref('int_subscriber_records_keyed') }}
),

quarantined as (
    select
        'consent_event' as record_kind, source_file, landing_batch, source_row_key,
        consent_event_id as source_record_id, reason_code,
        source_system, source_subscriber_id, cast(null as varchar) as send_id,
        consent_status as status, {{ lenient_utc_timestamp("raw_values->>'recorded_at'") }} as happened_at,
        consent_status is distinct from 'subscribed' as may_revoke
    from {{ ref('int_consent_events_classified') }}
    where reason_code is not null and reason_code <> 'exact_duplicate'

    union all

    select
        'suppression', source_file, landing_batch, source_row_key,
        suppression_id, reason_code,
        source_system, source_subscriber_id, null,
        suppression_reason, {{ lenient_utc_timestamp("raw_values->>'suppressed_at'") }},
        true
    from {{ ref('int_suppressions_classified') }}
    where reason_code is not null and reason_code <> 'exact_duplicate'

    union all

    select
        'email_event', source_file, landing_batch, source_row_key,
        event_id, reason_code,
        'esp', esp_id, send_id,
        event_type, {{ lenient_utc_timestamp("raw_values->>'occurred_at'") }},
        true
    from {{ ref('int_email_events_classified') }}
    where reason_code is not null and reason_code <> 'exact_duplicate'
        and (event_type is null or regexp_matches(event_type, '{{ revoking_fragments }}'))
),

tied_by_subscriber_id as (
    select quarantined.source_file, quarantined.landing_batch, quarantined.source_row_key,
           records.subscriber_key, records.source_system as record_system, records.source_id as record_id
    from quarantined
    inner join records on {{ names_subscriber_record('quarantined', 'records') }}
),

tied_by_send as (
    select quarantined.source_file, quarantined.landing_batch, quarantined.source_row_key,
           records.subscriber_key, records.source_system, records.source_id
    from quarantined
    inner join {{ ref('stg_esp__sends') }} as sends on upper(sends.send_id) = upper(quarantined.send_id)
    inner join records on records.source_system = 'esp' and records.source_id_folded = upper(sends.esp_id)
    where quarantined.record_kind = 'email_event'
),

ties as (
    select * from tied_by_subscriber_id
    union
    select * from tied_by_send
)

select
    quarantined.record_kind,
    quarantined.source_file,
    quarantined.landing_batch,
    quarantined.source_row_key,
    quarantined.source_record_id,
    quarantined.reason_code,
    quarantined.status,
    quarantined.may_revoke,
    -- A revocation dated after the export is in force now, not ignored. (least() skips
    -- nulls, so an unreadable time stays null explicitly.)
    case when quarantined.happened_at is not null then least(quarantined.happened_at, {{ as_of() }}) end as effective_at,
    ties.source_file is not null as is_tied,
    ties.subscriber_key,
    ties.record_system,
    ties.record_id
from quarantined
left join ties using (source_file, landing_batch, source_row_key)
