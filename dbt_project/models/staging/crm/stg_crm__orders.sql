{#-
  One row per landed row (initial export and drops up to as_of) of orders.parquet, typed,
  with its row-local issue. Contract v2: a row is an order line. `line_number` (optional)
  numbers the lines of one order; `amount` is the line's value, or, when the file has no
  amount, `quantity` x `unit_price`. A negative value (a negative quantity or amount) is a
  return or cancellation line, netted against its order downstream (fct_order_returns);
  `returns_order_id` (optional) names that order. A v1 file (one row per order with an
  amount) reads as one-line orders.
-#}
{%- set raw_columns = ['order_id', 'crm_id', 'product_id', 'ordered_at', 'amount', 'currency',
                       'line_number', 'quantity', 'unit_price', 'returns_order_id'] %}
{%- set amount = "try_cast(" ~ clean_text('source.amount') ~ " as double)" %}
{#- A whole number only: DuckDB would round '1.5' to 2 in a cast. -#}
{%- set quantity = "case when regexp_full_match(" ~ clean_text('source.quantity') ~ ", '-?[0-9]{1,12}') then cast("
    ~ clean_text('source.quantity') ~ " as bigint) end" %}
{%- set unit_price = "try_cast(" ~ clean_text('source.unit_price') ~ " as double)" %}
{%- set has_amount = "(" ~ clean_text('source.amount') ~ " is not null)" %}
{%- set line_value = "case when " ~ has_amount ~ " then " ~ amount ~ " else " ~ quantity ~ " * " ~ unit_price ~ " end" %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': '(' ~ any_blank('source', ['order_id', 'crm_id', 'product_id', 'ordered_at', 'currency'])
        ~ ' or (not ' ~ has_amount ~ ' and (' ~ is_blank('source.quantity') ~ ' or ' ~ is_blank('source.unit_price') ~ ')))',
    'invalid_amount': '(' ~ line_value ~ ' is null or not isfinite(' ~ line_value ~ ') or ' ~ line_value ~ ' = 0'
        ~ ' or coalesce(' ~ unit_price ~ ' < 0, false)'
        ~ ' or (' ~ clean_text('source.quantity') ~ ' is not null and ' ~ quantity ~ ' is null)'
        ~ ' or (' ~ has_amount ~ ' and ' ~ quantity ~ ' is not null and sign(' ~ amount ~ ') != sign(' ~ quantity ~ ')))',
    'unknown_currency': clean_text('source.currency') ~ ' not in ' ~ sql_list(var('accepted_currencies')),
} %}
{%- do checks.update(timestamp_checks('source.ordered_at')) %}

with source as (
    {{ with_optional_columns(landed_rows(source('crm', 'orders'), 'orders'), var('landing_optional_columns')['orders']) }}
)

select
    'orders' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.order_id') }} as order_id,
    -- The line within its order; '' for a file without line numbers (one line per order).
    coalesce({{ clean_text('source.line_number') }}, '') as line_number,
    {{ clean_text('source.crm_id') }} as crm_id,
    {{ clean_text('source.product_id') }} as product_id,
    {{ parse_utc_timestamp('source.ordered_at') }} as ordered_at,
    case when isfinite({{ line_value }}) then {{ line_value }} end as amount,
    {{ quantity }} as quantity,
    {{ unit_price }} as unit_price,
    {{ clean_text('source.returns_order_id') }} as returns_order_id,
    {{ clean_text('source.currency') }} as currency,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
