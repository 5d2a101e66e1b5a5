{#-
  Every subscriber row whose person asked for erasure: named by an `erased` consent event
  (kept or quarantined, at any date: an erasure is never ignored), or sharing a
  subscriber_key with such a row. No PII. The vault removes the email and name of these
  rows everywhere it stores them (docs/privacy.md).
-#}
-- depends_on: {{ ref('int_landing_files_judged') }}
with records as (
    select * from {{ ref('int_subscriber_records_keyed') }}
),

named as (
    select distinct records.source_system, records.source_id, records.subscriber_key
    from {{ ref('int_consent_events_classified') }} as events
    inner join records on {{ names_subscriber_record('events', 'records') }}
    where events.consent_status = 'erased'
)

select distinct records.source_system, records.source_id, records.subscriber_key
from records
where exists (
    select 1 from named
    where named.subscriber_key = records.subscriber_key
        or (named.source_system = records.source_system and named.source_id = records.source_id)
)
