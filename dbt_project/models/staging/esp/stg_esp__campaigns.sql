{#- One row per landed row (initial export and drops up to as_of) of campaigns.parquet, typed, with its row-local issue. -#}
{%- set raw_columns = ['campaign_id', 'campaign_name', 'category', 'subject_line', 'launched_at'] %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', ['campaign_id', 'category', 'launched_at']),
} %}
{%- do checks.update(timestamp_checks('source.launched_at')) %}

with source as (
    {{ landed_rows(source('esp', 'campaigns'), 'campaigns') }}
)

select
    'campaigns' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.campaign_id') }} as campaign_id,
    {{ clean_text('source.campaign_name') }} as campaign_name,
    {{ clean_text('source.category') }} as category,
    {{ clean_text('source.subject_line') }} as subject_line,
    {{ parse_utc_timestamp('source.launched_at') }} as launched_at,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
