{#- One row per landed row (initial export and drops up to as_of) of suppressions.parquet, typed, with its row-local issue. -#}
{%- set raw_columns = ['suppression_id', 'source_system', 'source_subscriber_id', 'reason', 'suppressed_at'] %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', raw_columns),
    'unknown_consent_status': clean_code('source.reason') ~ ' not in ' ~ sql_list(var('suppression_reasons')),
} %}
{%- do checks.update(timestamp_checks('source.suppressed_at')) %}

with source as (
    {{ landed_rows(source('consent', 'suppressions'), 'suppressions') }}
)

select
    'suppressions' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.suppression_id') }} as suppression_id,
    {{ clean_code('source.source_system') }} as source_system,
    {{ clean_text('source.source_subscriber_id') }} as source_subscriber_id,
    {{ clean_code('source.reason') }} as suppression_reason,
    {{ parse_utc_timestamp('source.suppressed_at') }} as suppressed_at,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
