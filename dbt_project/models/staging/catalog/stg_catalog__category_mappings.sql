{#- One row per row of the optional category_mapping.csv (none without the file), text cleaned. -#}
with source as (
    select *, row_number() over () - 1 as source_row_key
    from {{ source('catalog', 'category_mapping') }}
)

select
    source.source_row_key,
    {{ clean_text('source.category') }} as category,
    {{ clean_text('source.model_category') }} as model_category
from source
