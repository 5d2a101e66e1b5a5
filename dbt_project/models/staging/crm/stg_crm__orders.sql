{#- One row per landed row (initial export and drops up to as_of) of orders.parquet, typed, with its row-local issue. -#}
{%- set raw_columns = ['order_id', 'crm_id', 'product_id', 'ordered_at', 'amount', 'currency'] %}
{%- set amount = 'try_cast(trim(cast(source.amount as varchar)) as double)' %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', raw_columns),
    'invalid_amount': '(' ~ amount ~ ' is null or not isfinite(' ~ amount ~ ') or ' ~ amount ~ ' <= 0)',
    'unknown_currency': clean_text('source.currency') ~ ' not in ' ~ sql_list(var('accepted_currencies')),
} %}
{%- do checks.update(timestamp_checks('source.ordered_at')) %}

with source as (
    {{ landed_rows(source('crm', 'orders'), 'orders') }}
)

select
    'orders' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.order_id') }} as order_id,
    {{ clean_text('source.crm_id') }} as crm_id,
    {{ clean_text('source.product_id') }} as product_id,
    {{ parse_utc_timestamp('source.ordered_at') }} as ordered_at,
    case when isfinite({{ amount }}) then {{ amount }} end as amount,
    {{ clean_text('source.currency') }} as currency,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
