{#-
  One row per valid email event, keyed by subscriber_key (no PII), with the campaign (via
  the send) and its category. Incremental like fct_sends, on occurred_at.
-#}
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_stale_fact_rows('event_id', 'int_email_events_validated', 'esp', 'esp_id') }}",
    )
}}

with events as (
    select * from {{ ref('int_email_events_validated') }} as validated
    {% if is_incremental() %}
    where {{ fact_rows_to_refresh('validated', 'event_id', 'occurred_at') }}
    {% endif %}
)

select
    events.event_id,
    events.send_id,
    sends.campaign_id,
    campaigns.category as campaign_category,
    crosswalk.subscriber_key,
    events.event_type,
    events.occurred_at
from events
inner join {{ ref('subscriber_identity_crosswalk') }} as crosswalk
    on crosswalk.source_system = 'esp'
    and crosswalk.source_id = events.esp_id
left join {{ ref('int_sends_validated') }} as sends
    on sends.send_id = events.send_id
left join {{ ref('int_campaigns_validated') }} as campaigns
    on campaigns.campaign_id = sends.campaign_id
