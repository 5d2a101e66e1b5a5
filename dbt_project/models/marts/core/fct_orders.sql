{#-
  One row per valid order, keyed by subscriber_key (no PII), with the product category and
  the amount in USD (seed currency_rates). Incremental like fct_sends, on ordered_at.
-#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_stale_fact_rows('order_id', 'int_orders_validated', 'crm', 'crm_id') }}",
    )
}}

with orders as (
    select * from {{ ref('int_orders_validated') }} as validated
    {% if is_incremental() %}
    where {{ fact_rows_to_refresh('validated', 'order_id', 'ordered_at') }}
    {% endif %}
)

select
    orders.order_id,
    crosswalk.subscriber_key,
    orders.product_id,
    products.category as product_category,
    orders.ordered_at,
    orders.amount,
    orders.currency,
    orders.amount * rates.usd_per_unit as amount_usd
from orders
inner join {{ ref('subscriber_identity_crosswalk') }} as crosswalk
    on crosswalk.source_system = 'crm'
    and crosswalk.source_id = orders.crm_id
left join {{ ref('int_products_validated') }} as products
    on products.product_id = orders.product_id
left join {{ ref('currency_rates') }} as rates
    on rates.currency = orders.currency
