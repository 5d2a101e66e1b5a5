{#-
  One row per valid order as it was placed, keyed by subscriber_key (no PII): its purchase
  lines (value > 0) summed, the product of its largest line with that product's category,
  and the amount in USD (seed currency_rates). Return and cancellation lines (value < 0) are
  not subtracted here: they happen later, and features and labels read an order as of its
  placement, so a return after a training cutoff cannot leak into it. They are netted
  against their orders in fct_order_returns. A contract v1 file (one line per order) gives
  the same rows as before. Incremental like fct_sends, on ordered_at: an order with a line
  to refresh is rebuilt from all its lines.
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

with purchase_lines as (
    select * from {{ ref('int_orders_validated') }}
    where amount > 0
),

orders_to_refresh as (
    select distinct validated.order_id
    from purchase_lines as validated
    {% if is_incremental() %}
    where {{ fact_rows_to_refresh('validated', 'order_id', 'ordered_at') }}
    {% endif %}
),

orders as (
    select
        lines.order_id,
        arg_max(lines.crm_id, (lines.amount, lines.line_number)) as crm_id,
        arg_max(lines.product_id, (lines.amount, lines.line_number)) as product_id,
        min(lines.ordered_at) as ordered_at,
        -- an exact sum: a sum of doubles depends on the order threads add them in
        cast(sum(cast(lines.amount as decimal(38, 10))) as double) as amount,
        arg_max(lines.currency, (lines.amount, lines.line_number)) as currency,
        count(*) as line_count
    from purchase_lines as lines
    inner join orders_to_refresh using (order_id)
    group by lines.order_id
)

select
    orders.order_id,
    crosswalk.subscriber_key,
    orders.product_id,
    products.category as product_category,
    orders.ordered_at,
    orders.amount,
    orders.currency,
    orders.amount * rates.usd_per_unit as amount_usd,
    orders.line_count
from orders
inner join {{ ref('subscriber_identity_crosswalk') }} as crosswalk
    on crosswalk.source_system = 'crm'
    and crosswalk.source_id = orders.crm_id
left join {{ ref('int_products_validated') }} as products
    on products.product_id = orders.product_id
left join {{ ref('currency_rates') }} as rates
    on rates.currency = orders.currency
