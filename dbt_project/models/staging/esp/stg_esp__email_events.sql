{#- One row per landed row (initial export and drops up to as_of) of email_events.parquet, typed, with its row-local issue. -#}
{%- set raw_columns = ['event_id', 'send_id', 'esp_id', 'event_type', 'occurred_at'] %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', raw_columns),
    'unknown_event_type': clean_code('source.event_type') ~ ' not in ' ~ sql_list(var('email_event_types')),
} %}
{%- do checks.update(timestamp_checks('source.occurred_at')) %}

with source as (
    {{ landed_rows(source('esp', 'email_events'), 'email_events') }}
)

select
    'email_events' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.event_id') }} as event_id,
    {{ clean_text('source.send_id') }} as send_id,
    {{ clean_text('source.esp_id') }} as esp_id,
    {{ clean_code('source.event_type') }} as event_type,
    {{ parse_utc_timestamp('source.occurred_at') }} as occurred_at,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
