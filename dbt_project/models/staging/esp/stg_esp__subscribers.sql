{#- One row per landed row (initial export and drops up to as_of) of esp_subscribers.parquet, typed, with its row-local issue. Holds PII: lives in the vault. -#}
{#- A view: the vault stores no copy of raw subscriber rows (erasure, docs/privacy.md). -#}
{{ config(database='pii', materialized='view') }}

{%- set raw_columns = ['esp_id', 'email', 'first_name', 'created_at', 'timezone'] %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', ['esp_id', 'email', 'created_at']),
    'invalid_email': is_invalid_email('source.email'),
    'invalid_timezone': is_invalid_timezone('source.timezone'),
} %}
{%- do checks.update(timestamp_checks('source.created_at')) %}

with source as (
    {#- timezone is optional (docs/data_contract.md): null when the file has no such column. -#}
    {{ with_optional_columns(
        landed_rows(source('esp', 'esp_subscribers'), 'esp_subscribers'),
        var('landing_optional_columns')['esp_subscribers']
    ) }}
)

select
    'esp_subscribers' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.esp_id') }} as esp_id,
    {{ clean_text('source.email') }} as email,
    {{ clean_text('source.first_name') }} as first_name,
    {{ parse_utc_timestamp('source.created_at') }} as created_at,
    {{ clean_text('source.timezone') }} as timezone,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
