{#-
  One row per valid return or cancellation line (an order line of negative value), netted
  against the order it returns, keyed by subscriber_key (no PII). The order is, in turn:
    returns_order_id   the line names it (an order of the same customer);
    same_order         a purchase line of the same order_id (a cancelled line of an order);
    latest_order_with_product
                       the customer's latest order at or before the return that holds the
                       same product (exports such as UCI's write a cancellation as its own
                       invoice, with no reference to the original);
  and null (netted_order_id and matched_by) when none is found: the line stays here, with
  its value, and reduces no order. fct_orders holds the orders as placed; an order's net
  value is its amount minus the returned_amount of its rows here.
-#}
with lines as (
    select * from {{ ref('int_orders_validated') }}
),

returns as (
    select * from lines where amount < 0
),

purchases as (
    select order_id, crm_id, product_id, ordered_at, line_number from lines where amount > 0
),

by_reference as (
    select returns.order_id, returns.line_number, any_value(purchases.order_id) as netted_order_id
    from returns
    inner join purchases
        on purchases.order_id = returns.returns_order_id and purchases.crm_id = returns.crm_id
    group by all
),

by_same_order as (
    select returns.order_id, returns.line_number, any_value(purchases.order_id) as netted_order_id
    from returns
    inner join purchases
        on purchases.order_id = returns.order_id and purchases.crm_id = returns.crm_id
    group by all
),

by_product as (
    select
        returns.order_id,
        returns.line_number,
        arg_max(purchases.order_id, (purchases.ordered_at, purchases.order_id)) as netted_order_id
    from returns
    inner join purchases
        on purchases.crm_id = returns.crm_id
        and purchases.product_id = returns.product_id
        and purchases.ordered_at <= returns.ordered_at
        and purchases.order_id != returns.order_id
    group by all
)

select
    returns.order_id,
    returns.line_number,
    crosswalk.subscriber_key,
    returns.product_id,
    returns.ordered_at as returned_at,
    -returns.amount as returned_amount,
    returns.currency,
    -returns.amount * rates.usd_per_unit as returned_amount_usd,
    coalesce(by_reference.netted_order_id, by_same_order.netted_order_id, by_product.netted_order_id) as netted_order_id,
    case
        when by_reference.netted_order_id is not null then '{{ var('return_matches')[0] }}'
        when by_same_order.netted_order_id is not null then '{{ var('return_matches')[1] }}'
        when by_product.netted_order_id is not null then '{{ var('return_matches')[2] }}'
    end as matched_by
from returns
inner join {{ ref('subscriber_identity_crosswalk') }} as crosswalk
    on crosswalk.source_system = 'crm'
    and crosswalk.source_id = returns.crm_id
left join by_reference using (order_id, line_number)
left join by_same_order using (order_id, line_number)
left join by_product using (order_id, line_number)
left join {{ ref('currency_rates') }} as rates
    on rates.currency = returns.currency
