{#-
  Every clean consent change, mapped to its person and to the subscriber record it was
  made on: consent events (through the resolved identities) and email `unsubscribe`/`complaint`
  events, which revoke consent from their timestamp (consent_source `email_event`, proof =
  the event id). No PII. consent_history tiles these per person; eligibility also reads
  them per record, because a revocation on one record is not undone by a subscription on
  another.

  A record may have had other emails: an earlier version superseded by a daily drop, or a
  quarantined row with the same id. A revocation (anything but `subscribed`) also reaches
  every person such a row names (same system, id ignoring case, as the quarantine ties
  match): consent fails closed. A subscription reaches only the person the record names
  now.
-#}
with crosswalk as (
    select source_system, source_id, subscriber_key from {{ ref('int_subscriber_identities_resolved') }}
),

changes as (
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
),

revocations_of_other_versions as (
    select distinct
        records.subscriber_key,
        changes.* exclude (subscriber_key)
    from changes
    inner join {{ ref('int_subscriber_records_keyed') }} as records
        on records.source_system = changes.record_system
        and records.source_id_folded = upper(changes.record_id)
    where changes.consent_status <> 'subscribed'
        and records.subscriber_key <> changes.subscriber_key
        -- only people who exist: a key no current record names has nobody to exclude
        and records.subscriber_key in (select subscriber_key from crosswalk)
)

select * from changes
union all
select * from revocations_of_other_versions
