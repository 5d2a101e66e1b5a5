{#- The MineThatData e-mail experiment, one row per customer, typed. -#}
with source as (
    select * from {{ source('hillstrom', 'hillstrom') }}
)

select
    cast(recency as integer) as recency,
    cast(history_segment as varchar) as history_segment,
    cast(history as double) as history,
    cast(mens as integer) as mens,
    cast(womens as integer) as womens,
    cast(zip_code as varchar) as zip_code,
    cast(newbie as integer) as newbie,
    cast(channel as varchar) as channel,
    cast(segment as varchar) as segment,
    cast(visit as integer) as visit,
    cast(conversion as integer) as conversion,
    cast(spend as double) as spend
from source
