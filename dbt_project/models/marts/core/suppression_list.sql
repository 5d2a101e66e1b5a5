{#-
  Who must never be emailed and why: suppressions (mapped through the crosswalk), hard
  `bounce` events (hard_bounce) and `complaint` events. One row per (subscriber_key,
  reason) with the earliest time and the record that caused it.
-#}
with crosswalk as (
    select * from {{ ref('subscriber_identity_crosswalk') }}
),

suppressions as (
    select
        crosswalk.subscriber_key,
        suppressions.suppression_reason,
        suppressions.suppressed_at,
        suppressions.suppression_id as source_record_id
    from {{ ref('int_suppressions_validated') }} as suppressions
    inner join crosswalk
        on crosswalk.source_system = suppressions.source_system
        and crosswalk.source_id = suppressions.source_subscriber_id

    union all

    select
        crosswalk.subscriber_key,
        case events.event_type when 'bounce' then 'hard_bounce' else 'complaint' end as suppression_reason,
        events.occurred_at as suppressed_at,
        events.event_id as source_record_id
    from {{ ref('int_email_events_validated') }} as events
    inner join crosswalk
        on crosswalk.source_system = 'esp'
        and crosswalk.source_id = events.esp_id
    where events.event_type in ('bounce', 'complaint')
)

select
    subscriber_key,
    suppression_reason,
    min(suppressed_at) as suppressed_at,
    arg_min(source_record_id, (suppressed_at, source_record_id)) as source_record_id
from suppressions
group by subscriber_key, suppression_reason
