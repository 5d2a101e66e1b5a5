{#-
  One row per valid send, keyed by subscriber_key (no PII). Incremental (macros/
  incremental_facts.sql): a run deletes the rows no valid send backs any more, then re-reads
  the sends at or after (newest loaded send - fact_lookback_days) and every valid send not
  loaded yet, so a daily run processes the new day's drop plus a margin for late arrivals,
  and a re-run of an earlier day gives exactly that day's rows.
-#}
{{
    config(
        materialized='incremental',
        unique_key='send_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_stale_fact_rows('send_id', 'int_sends_validated', 'esp', 'esp_id') }}",
    )
}}

with sends as (
    select * from {{ ref('int_sends_validated') }} as validated
    {% if is_incremental() %}
    where {{ fact_rows_to_refresh('validated', 'send_id', 'sent_at') }}
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
