{#-
  One row per valid send, keyed by subscriber_key (no PII). Incremental: a run only
  re-reads sends at or after (newest loaded send - fact_lookback_days), so a daily run
  processes the new day plus a margin for late arrivals.
-#}
{{
    config(
        materialized='incremental',
        unique_key='send_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with sends as (
    select * from {{ ref('int_sends_validated') }}
    {% if is_incremental() %}
    where sent_at >= (
        select coalesce(max(sent_at), timestamp '1900-01-01') - to_days({{ var('fact_lookback_days') | int }})
        from {{ this }}
    )
    {% endif %}
)

select
    sends.send_id,
    sends.campaign_id,
    campaigns.category as campaign_category,
    crosswalk.subscriber_key,
    sends.sent_at
from sends
inner join {{ ref('subscriber_identity_crosswalk') }} as crosswalk
    on crosswalk.source_system = 'esp'
    and crosswalk.source_id = sends.esp_id
left join {{ ref('int_campaigns_validated') }} as campaigns
    on campaigns.campaign_id = sends.campaign_id
