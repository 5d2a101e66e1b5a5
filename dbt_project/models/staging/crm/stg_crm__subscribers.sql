{#- One row per landed row (initial export and drops up to as_of) of crm_subscribers.parquet, typed, with its row-local issue. Holds PII: lives in the vault. -#}
{#- A view: the vault stores no copy of raw subscriber rows (erasure, docs/privacy.md). -#}
{{ config(database='pii', materialized='view') }}

{#- Contract v2: a CRM record may have no email (an order-lines export has none). Such a
    person is modelled, keyed by their crm_id, and can never be emailed. An email that is
    there must be valid. -#}
{%- set raw_columns = ['crm_id', 'email', 'first_name', 'signup_at', 'timezone', 'country'] %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', ['crm_id', 'signup_at']),
    'invalid_email': '(not ' ~ is_blank('source.email') ~ ' and ' ~ is_invalid_email('source.email') ~ ')',
    'invalid_timezone': is_invalid_timezone('source.timezone'),
} %}
{%- do checks.update(timestamp_checks('source.signup_at')) %}
{#- Optional audit columns (docs/data_contract.md): null when the file has no such column. -#}
{%- set birth_year_text = "trim(cast(source.birth_year as varchar))" %}
{%- set gender_text = "replace(replace(lower(trim(cast(source.gender as varchar))), '-', '_'), ' ', '_')" %}

with source as (
    {{ with_optional_columns(
        landed_rows(source('crm', 'crm_subscribers'), 'crm_subscribers'),
        var('landing_optional_columns')['crm_subscribers']
    ) }}
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
    -- Audit attributes: a blank or malformed value (not four digits, a year outside
    -- 1900..as_of's year, an unknown gender spelling) reads as null (unknown). None of it
    -- is a row issue: it never quarantines the person.
    case
        when regexp_full_match({{ birth_year_text }}, '[0-9]{4}')
            and try_cast({{ birth_year_text }} as integer) between 1900 and year({{ as_of() }})
        then try_cast({{ birth_year_text }} as integer)
    end as birth_year,
    case
        when {{ gender_text }} in ('female', 'f', 'woman') then 'female'
        when {{ gender_text }} in ('male', 'm', 'man') then 'male'
        when {{ gender_text }} in ('non_binary', 'nonbinary') then 'non_binary'
        when {{ gender_text }} in ('not_stated', 'prefer_not_to_say') then 'not_stated'
    end as gender,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
