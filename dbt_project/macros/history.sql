{#- The day (00:00 UTC) of the first behavioural data, the first send or order: where the
    history the models learn from starts (marts.training_examples counts its cutoffs from it,
    marts.category_slots ranks categories on the revenue before its warm-up ends). -#}
{% macro first_data_day() -%}
    cast(date_trunc('day', least(
        (select min(sent_at) from {{ ref('fct_sends') }}),
        (select min(ordered_at) from {{ ref('fct_orders') }})
    )) as timestamp)
{%- endmacro %}
