{#-
  Every clean consent change, mapped to its person and to the subscriber record it was
  made on: consent events (through the resolved identities) and email `unsubscribe`/`complaint`
  events, which revoke consent from their timestamp (consent_source `email_event`, proof =
  the event id). No PII. consent_history tiles these per person; eligibility also reads
  them per record, because a revocation on one record is not undone by a subscription on
  another.
-#}
with crosswalk as (
    select source_system, source_id, subscriber_key from {{ ref('int_subscriber_identities_resolved') }}
)

select
    crosswalk.subscriber_key,
    events.consent_status,
    events.recorded_at as changed_at,
    events.consent_source,
    events.proof,
    events.source_system,
    events.consent_event_id as source_record_id,
    events.source_system as record_system,
    events.source_subscriber_id as record_id
from {{ ref('int_consent_events_validated') }} as events
inner join crosswalk
    on crosswalk.source_system = events.source_system
    and crosswalk.source_id = events.source_subscriber_id

union all

select
    crosswalk.subscriber_key,
    'unsubscribed' as consent_status,
    events.occurred_at as changed_at,
    'email_event' as consent_source,
    events.event_id as proof,
    'esp' as source_system,
    events.event_id as source_record_id,
    'esp' as record_system,
    events.esp_id as record_id
from {{ ref('int_email_events_validated') }} as events
inner join crosswalk
    on crosswalk.source_system = 'esp'
    and crosswalk.source_id = events.esp_id
where events.event_type in ('unsubscribe', 'complaint')
