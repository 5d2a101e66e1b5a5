{#- One row per landed row (initial export and drops up to as_of) of consent_events.parquet, typed, with its row-local issue. -#}
{%- set raw_columns = ['consent_event_id', 'source_system', 'source_subscriber_id', 'status', 'recorded_at', 'consent_source', 'proof'] %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', ['consent_event_id', 'source_system', 'source_subscriber_id', 'status', 'recorded_at', 'consent_source']),
    'unknown_consent_status': clean_code('source.status') ~ ' not in ' ~ sql_list(var('consent_statuses')),
} %}
{%- do checks.update(timestamp_checks('source.recorded_at')) %}

with source as (
    {{ landed_rows(source('consent', 'consent_events'), 'consent_events') }}
)

select
    'consent_events' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.consent_event_id') }} as consent_event_id,
    {{ clean_code('source.source_system') }} as source_system,
    {{ clean_text('source.source_subscriber_id') }} as source_subscriber_id,
    {{ clean_code('source.status') }} as consent_status,
    {{ parse_utc_timestamp('source.recorded_at') }} as recorded_at,
    {{ clean_code('source.consent_source') }} as consent_source,
    {{ clean_text('source.proof') }} as proof,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
