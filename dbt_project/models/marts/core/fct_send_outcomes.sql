{#-
  One row per valid send (fct_sends) with what followed it, computed from the landed email
  events and orders alone, so simulated and real exports are measured the same way
  (docs/data_contract.md, "Send outcomes and attribution"). No PII.

  delivered, bounced, opened, clicked, unsubscribed, complained
      an email event of that type (delivered, bounce, open, click, unsubscribe, complaint)
      carries this send's send_id. An event counts only for its own send; nothing is
      inferred (a click without an open event leaves opened false).
  attribution (last touch)
      an order is attributed to the latest send to the same subscriber_key at or before
      ordered_at (ties at one instant: the larger send_id), if the order falls in that
      send's window [sent_at, sent_at + var attribution_window_days). An order whose latest
      earlier send is older than the window is attributed to no send, never to an even
      older one.
  attributed_orders, attributed_revenue
      the orders attributed to the send and their USD value (fct_orders.amount_usd, the
      seed currency_rates conversion), summed exactly; purchased = attributed_orders > 0.
  observed_days, window_complete
      how much of the window as_of has seen: least(window, days from sent_at to as_of),
      fractional; window_complete once sent_at + window <= as_of. Until then purchased can
      still turn true, so the mart is rebuilt every run.
-#}
{%- set window_days = var('attribution_window_days') | int %}

with sends as (
    select send_id, campaign_id, subscriber_key, sent_at
    from {{ ref('fct_sends') }}
),

responses as (
    select
        send_id,
        bool_or(event_type = 'delivered') as delivered,
        bool_or(event_type = 'bounce') as bounced,
        bool_or(event_type = 'open') as opened,
        bool_or(event_type = 'click') as clicked,
        bool_or(event_type = 'unsubscribe') as unsubscribed,
        bool_or(event_type = 'complaint') as complained
    from {{ ref('fct_email_events') }}
    where send_id is not null
    group by send_id
),

last_touches as (
    -- Only sends whose window holds the order can be its latest touch: were the latest
    -- earlier send outside the window, every earlier one would be too.
    select
        orders.order_id,
        any_value(orders.amount_usd) as amount_usd,
        arg_max(sends.send_id, (sends.sent_at, sends.send_id)) as send_id
    from {{ ref('fct_orders') }} as orders
    inner join sends
        on sends.subscriber_key = orders.subscriber_key
        and sends.sent_at <= orders.ordered_at
        and orders.ordered_at < sends.sent_at + to_days({{ window_days }})
    group by orders.order_id
),

attributed as (
    select
        send_id,
        count(*) as attributed_orders,
        -- an exact sum: a sum of doubles depends on the order threads add them in
        cast(sum(cast(amount_usd as decimal(38, 10))) as double) as attributed_revenue
    from last_touches
    group by send_id
)

select
    sends.send_id,
    sends.campaign_id,
    sends.subscriber_key,
    sends.sent_at,
    coalesce(responses.delivered, false) as delivered,
    coalesce(responses.bounced, false) as bounced,
    coalesce(responses.opened, false) as opened,
    coalesce(responses.clicked, false) as clicked,
    coalesce(responses.unsubscribed, false) as unsubscribed,
    coalesce(responses.complained, false) as complained,
    attributed.send_id is not null as purchased,
    coalesce(attributed.attributed_orders, 0) as attributed_orders,
    coalesce(attributed.attributed_revenue, 0.0) as attributed_revenue,
    cast(least({{ window_days }}, {{ days_between('sends.sent_at', as_of()) }}) as double) as observed_days,
    sends.sent_at + to_days({{ window_days }}) <= {{ as_of() }} as window_complete
from sends
left join responses on responses.send_id = sends.send_id
left join attributed on attributed.send_id = sends.send_id
