{#- One row per landed row (initial export and drops up to as_of) of crm_subscribers.parquet, typed, with its row-local issue. Holds PII: lives in the vault. -#}
{#- A view: the vault stores no copy of raw subscriber rows (erasure, docs/privacy.md). -#}
{{ config(database='pii', materialized='view') }}

{%- set raw_columns = ['crm_id', 'email', 'first_name', 'signup_at', 'timezone', 'country'] %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', ['crm_id', 'email', 'signup_at', 'timezone']),
    'invalid_email': is_invalid_email('source.email'),
    'invalid_timezone': is_invalid_timezone('source.timezone'),
} %}
{%- do checks.update(timestamp_checks('source.signup_at')) %}

with source as (
    {{ landed_rows(source('crm', 'crm_subscribers'), 'crm_subscribers') }}
)

select
    'crm_subscribers' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.crm_id') }} as crm_id,
    {{ clean_text('source.email') }} as email,
    {{ clean_text('source.first_name') }} as first_name,
    {{ parse_utc_timestamp('source.signup_at') }} as signup_at,
    {{ clean_text('source.timezone') }} as timezone,
    {{ clean_text('source.country') }} as country,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
