{#- Per arm of the Hillstrom e-mail experiment: size and mean visit, conversion and spend. -#}
-- depends_on: {{ ref('int_landing_files_judged') }}
select
    segment,
    count(*) as customers,
    cast(avg(visit) as double) as visit_rate,
    cast(avg(conversion) as double) as conversion_rate,
    cast(avg(cast(spend as decimal(18, 2))) as double) as spend_per_customer
from {{ ref('stg_hillstrom__customers') }}
group by segment
