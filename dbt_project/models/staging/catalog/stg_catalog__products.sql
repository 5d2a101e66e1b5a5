{#- One row per landed row (initial export and drops up to as_of) of products.parquet, typed, with its row-local issue. -#}
{%- set raw_columns = ['product_id', 'category', 'price', 'currency'] %}
{%- set checks = {
    'value_too_long': any_too_long('source', raw_columns),
    'missing_required_field': any_blank('source', ['product_id', 'category']),
} %}

with source as (
    {{ landed_rows(source('catalog', 'products'), 'products') }}
)

select
    'products' as source_file,
    source.landing_batch,
    source.file_row_number as source_row_key,
    {{ clean_text('source.product_id') }} as product_id,
    {{ clean_text('source.category') }} as category,
    try_cast(source.price as double) as price,
    {{ clean_text('source.currency') }} as currency,
    {{ raw_values_json('source', raw_columns) }} as raw_values,
    {{ row_issue(checks) }} as row_issue
from source
