{#-
  The model features of ml/propensity/features.py (NUMERIC_FEATURES, then top_category_slot, in that order)
  for every (subscriber_key, cutoff_at) pair of `spine` (a relation or CTE name).

  Point in time: only facts strictly before cutoff_at are used (events at exactly cutoff_at
  belong to the label window). Windows "Nd" are [cutoff_at - N days, cutoff_at).

  tenure_days            days from the subscriber's first signup to the cutoff
  customer_tenure_days   days from their first CRM signup (when they became a shop customer:
                         orders name CRM ids) to the cutoff; null when the CRM did not know
                         them before the cutoff (a newsletter-only subscriber)
  consent_age_days       days since the consent row in force just before the cutoff began
  orders_total, monetary_total, orders_90d, monetary_90d   orders and USD amounts
  days_since_last_order  null when no order
  sends_Nd/opens_Nd/clicks_Nd   event counts in the window
  open_rate_Nd/click_rate_Nd    sends in the window opened/clicked (before the cutoff) /
                                sends in the window; null when no sends
  days_since_last_open/click    null when none
  preferred_send_hour    most frequent local hour (subscriber time zone) of opens, ties to
                         the earliest hour; null when no opens
  fatigue_score          sends_30d / (1 + opens_30d + 2 * clicks_30d)
  top_category_slot      the category slot (marts.category_slots) with most orders + clicks:
                         an order counts for its product's category, a click for its
                         campaign's category when that is a known product category ('general'
                         and other campaign-only categories are ignored); a category outside
                         the slots counts for category_other; ties to the lower slot
                         (category_other last); 'none' without signal
  Numeric outputs are double so their types are stable between training and scoring.
-#}
{% macro subscriber_features(spine) -%}
{%- set windows = [7, 30, 90] -%}
with _spine as (
    select distinct subscriber_key, cast(cutoff_at as timestamp) as cutoff_at
    from {{ spine }}
),

_subscribers as (
    select subscriber_key, first_seen_at, crm_first_seen_at, coalesce(timezone, 'UTC') as timezone
    from {{ ref('int_subscribers_unified') }}
),

_send_responses as materialized (
    -- Each send with when its own subscriber first opened and first clicked it, once per send
    -- (not once per send and cutoff): "opened before the cutoff" is first_open_at < cutoff_at.
    select sends.subscriber_key, sends.sent_at, firsts.first_open_at, firsts.first_click_at
    from {{ ref('fct_sends') }} as sends
    left join (
        select
            subscriber_key,
            send_id,
            min(occurred_at) filter (where event_type = 'open') as first_open_at,
            min(occurred_at) filter (where event_type = 'click') as first_click_at
        from {{ ref('fct_email_events') }}
        where event_type in ('open', 'click')
        group by subscriber_key, send_id
    ) as firsts
        on firsts.subscriber_key = sends.subscriber_key and firsts.send_id = sends.send_id
),

_engagements as (
    select
        _spine.subscriber_key,
        _spine.cutoff_at,
        events.event_type,
        events.send_id,
        events.occurred_at,
        events.campaign_category
    from _spine
    inner join {{ ref('fct_email_events') }} as events
        on events.subscriber_key = _spine.subscriber_key
        and events.occurred_at < _spine.cutoff_at
        and events.event_type in ('open', 'click')
),

_send_stats as (
    select
        _spine.subscriber_key,
        _spine.cutoff_at,
        {%- for days in windows %}
        count(*) filter (where sends.sent_at >= _spine.cutoff_at - to_days({{ days }})) as sends_{{ days }}d,
        count(*) filter (
            where sends.sent_at >= _spine.cutoff_at - to_days({{ days }}) and sends.first_open_at < _spine.cutoff_at
        ) as opened_sends_{{ days }}d,
        count(*) filter (
            where sends.sent_at >= _spine.cutoff_at - to_days({{ days }}) and sends.first_click_at < _spine.cutoff_at
        ) as clicked_sends_{{ days }}d{{ "," if not loop.last }}
        {%- endfor %}
    from _spine
    inner join _send_responses as sends
        on sends.subscriber_key = _spine.subscriber_key
        and sends.sent_at < _spine.cutoff_at
        and sends.sent_at >= _spine.cutoff_at - to_days(90)
    group by _spine.subscriber_key, _spine.cutoff_at
),

_engagement_stats as (
    select
        subscriber_key,
        cutoff_at,
        {%- for days in windows %}
        count(*) filter (where event_type = 'open' and occurred_at >= cutoff_at - to_days({{ days }})) as opens_{{ days }}d,
        count(*) filter (where event_type = 'click' and occurred_at >= cutoff_at - to_days({{ days }})) as clicks_{{ days }}d,
        {%- endfor %}
        max(occurred_at) filter (where event_type = 'open') as last_open_at,
        max(occurred_at) filter (where event_type = 'click') as last_click_at
    from _engagements
    group by subscriber_key, cutoff_at
),

_orders as (
    select _spine.subscriber_key, _spine.cutoff_at, orders.ordered_at, orders.amount_usd, orders.product_category
    from _spine
    inner join {{ ref('fct_orders') }} as orders
        on orders.subscriber_key = _spine.subscriber_key
        and orders.ordered_at < _spine.cutoff_at
),

_order_stats as (
    -- Sums of money are exact decimals: a sum of doubles depends on the order DuckDB's
    -- threads add them in, and a re-run must give the same marts bit for bit.
    select
        subscriber_key,
        cutoff_at,
        count(*) as orders_total,
        coalesce(sum(cast(amount_usd as decimal(38, 10))), 0) as monetary_total,
        count(*) filter (where ordered_at >= cutoff_at - to_days(90)) as orders_90d,
        coalesce(sum(cast(amount_usd as decimal(38, 10))) filter (where ordered_at >= cutoff_at - to_days(90)), 0) as monetary_90d,
        max(ordered_at) as last_order_at
    from _orders
    group by subscriber_key, cutoff_at
),

_open_hours as (
    select
        _engagements.subscriber_key,
        _engagements.cutoff_at,
        hour((_engagements.occurred_at at time zone 'UTC') at time zone _subscribers.timezone) as local_hour,
        count(*) as opens
    from _engagements
    inner join _subscribers on _subscribers.subscriber_key = _engagements.subscriber_key
    where _engagements.event_type = 'open'
    group by all
),

_preferred_hours as (
    select subscriber_key, cutoff_at, local_hour as preferred_send_hour
    from _open_hours
    qualify row_number() over (partition by subscriber_key, cutoff_at order by opens desc, local_hour) = 1
),

_category_signals as (
    select subscriber_key, cutoff_at, product_category as category from _orders
    union all
    select subscriber_key, cutoff_at, campaign_category as category from _engagements where event_type = 'click'
),

_top_categories as (
    select subscriber_key, cutoff_at, slot as top_category_slot
    from (
        select _category_signals.subscriber_key, _category_signals.cutoff_at, slots.slot, slots.slot_position, count(*) as signals
        from _category_signals
        inner join {{ ref('category_slots') }} as slots on slots.category = _category_signals.category
        group by all
    )
    qualify row_number() over (partition by subscriber_key, cutoff_at order by signals desc, slot_position) = 1
),

_consent as (
    select _spine.subscriber_key, _spine.cutoff_at, history.valid_from as consent_valid_from
    from _spine
    inner join {{ ref('consent_history') }} as history
        on history.subscriber_key = _spine.subscriber_key
        and {{ consent_valid_at('history', '_spine.cutoff_at', strictly_before=true) }}
)

select
    _spine.subscriber_key,
    _spine.cutoff_at,
    cast({{ days_between('_subscribers.first_seen_at', '_spine.cutoff_at') }} as double) as tenure_days,
    cast(case when _subscribers.crm_first_seen_at < _spine.cutoff_at
        then {{ days_between('_subscribers.crm_first_seen_at', '_spine.cutoff_at') }} end as double) as customer_tenure_days,
    cast({{ days_between('_consent.consent_valid_from', '_spine.cutoff_at') }} as double) as consent_age_days,
    cast(coalesce(_order_stats.orders_total, 0) as double) as orders_total,
    cast(coalesce(_order_stats.monetary_total, 0) as double) as monetary_total,
    cast(coalesce(_order_stats.orders_90d, 0) as double) as orders_90d,
    cast(coalesce(_order_stats.monetary_90d, 0) as double) as monetary_90d,
    cast({{ days_between('_order_stats.last_order_at', '_spine.cutoff_at') }} as double) as days_since_last_order,
    {%- for kind in ['sends', 'opens', 'clicks'] %}
    {%- set stats = '_send_stats' if kind == 'sends' else '_engagement_stats' %}
    {%- for days in windows %}
    cast(coalesce({{ stats }}.{{ kind }}_{{ days }}d, 0) as double) as {{ kind }}_{{ days }}d,
    {%- endfor %}
    {%- endfor %}
    {%- for days in [30, 90] %}
    cast(_send_stats.opened_sends_{{ days }}d as double) / nullif(_send_stats.sends_{{ days }}d, 0) as open_rate_{{ days }}d,
    cast(_send_stats.clicked_sends_{{ days }}d as double) / nullif(_send_stats.sends_{{ days }}d, 0) as click_rate_{{ days }}d,
    {%- endfor %}
    cast({{ days_between('_engagement_stats.last_open_at', '_spine.cutoff_at') }} as double) as days_since_last_open,
    cast({{ days_between('_engagement_stats.last_click_at', '_spine.cutoff_at') }} as double) as days_since_last_click,
    cast(_preferred_hours.preferred_send_hour as double) as preferred_send_hour,
    cast(coalesce(_send_stats.sends_30d, 0) as double)
        / (1 + coalesce(_engagement_stats.opens_30d, 0) + 2 * coalesce(_engagement_stats.clicks_30d, 0))
        as fatigue_score,
    coalesce(_top_categories.top_category_slot, 'none') as top_category_slot
from _spine
left join _subscribers
    on _subscribers.subscriber_key = _spine.subscriber_key
left join _consent
    on _consent.subscriber_key = _spine.subscriber_key and _consent.cutoff_at = _spine.cutoff_at
left join _order_stats
    on _order_stats.subscriber_key = _spine.subscriber_key and _order_stats.cutoff_at = _spine.cutoff_at
left join _send_stats
    on _send_stats.subscriber_key = _spine.subscriber_key and _send_stats.cutoff_at = _spine.cutoff_at
left join _engagement_stats
    on _engagement_stats.subscriber_key = _spine.subscriber_key and _engagement_stats.cutoff_at = _spine.cutoff_at
left join _preferred_hours
    on _preferred_hours.subscriber_key = _spine.subscriber_key and _preferred_hours.cutoff_at = _spine.cutoff_at
left join _top_categories
    on _top_categories.subscriber_key = _spine.subscriber_key and _top_categories.cutoff_at = _spine.cutoff_at
{%- endmacro %}
