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
    )
}}

with events as (
    select * from {{ ref('int_email_events_validated') }}
    {% if is_incremental() %}
    where occurred_at >= (
        select coalesce(max(occurred_at), timestamp '1900-01-01') - to_days({{ var('fact_lookback_days') | int }})
        from {{ this }}
    )
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
