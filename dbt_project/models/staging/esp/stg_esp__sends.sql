{#- One row per landed row (initial export and drops up to as_of) of sends.parquet, typed, with its row-local issue. -#}
{%- set raw_columns = ['send_id', 'campaign_id', 'esp_id', 'sent_at'] %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', raw_columns),
} %}
{%- do checks.update(timestamp_checks('source.sent_at')) %}

with source as (
    {{ landed_rows(source('esp', 'sends'), 'sends') }}
)

select
    'sends' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.send_id') }} as send_id,
    {{ clean_text('source.campaign_id') }} as campaign_id,
    {{ clean_text('source.esp_id') }} as esp_id,
    {{ parse_utc_timestamp('source.sent_at') }} as sent_at,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
