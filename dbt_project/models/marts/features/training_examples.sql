{#-
  Point-in-time training rows: weekly cutoffs (00:00 UTC, every 7 days back from as_of's
  date), kept when the 14-day label window is complete (cutoff + 14 days <= as_of) and the
  cutoff is at least 28 days after the first behavioural data (first send or order). One
  row per subscriber who signed up before the cutoff, with the features of
  subscriber_features (events strictly before the cutoff) and labels from the window
  starting at the cutoff:
    label_purchase_14d  an order in [cutoff, cutoff + 14 days)
    label_click_7d      a click in [cutoff, cutoff + 7 days)
    label_churn_28d     churn as inactivity: no open, click or order in
                        [cutoff, cutoff + 28 days); null while that window is not fully
                        observed (cutoff + 28 days > as_of). 28 days, not 60, so the label
                        exists for every cutoff but the latest three and a churn model has
                        training cutoffs that end before its test cutoff.
  and the segments that evaluations break results down by (not model features):
    lifecycle_stage, tenure_band  at the cutoff (macros/segments.sql)
    source_systems                where the subscriber is known ('crm', 'esp', 'crm+esp')
-#}
with bounds as (
    select
        {{ as_of() }} as as_of,
        cast(date_trunc('day', {{ as_of() }}) as timestamp) as anchor_day,
        {{ first_data_day() }} as first_data_day
),

cutoffs as (
    select bounds.anchor_day - to_days(cast(7 * weeks_back.k as integer)) as cutoff_at
    from bounds
    cross join range(0, coalesce(datediff('day', bounds.first_data_day, bounds.anchor_day) // 7 + 1, 0)) as weeks_back(k)
    where bounds.anchor_day - to_days(cast(7 * weeks_back.k as integer)) + to_days(14) <= bounds.as_of
        and bounds.anchor_day - to_days(cast(7 * weeks_back.k as integer)) >= bounds.first_data_day + to_days(28)
),

spine as (
    select subscribers.subscriber_key, cutoffs.cutoff_at
    from cutoffs
    inner join {{ ref('int_subscribers_unified') }} as subscribers
        on subscribers.first_seen_at < cutoffs.cutoff_at
),

features as (
    {{ subscriber_features('spine') }}
),

purchases as (
    select spine.subscriber_key, spine.cutoff_at
    from spine
    inner join {{ ref('fct_orders') }} as orders
        on orders.subscriber_key = spine.subscriber_key
        and orders.ordered_at >= spine.cutoff_at
        and orders.ordered_at < spine.cutoff_at + to_days(14)
    group by all
),

clicks as (
    select spine.subscriber_key, spine.cutoff_at
    from spine
    inner join {{ ref('fct_email_events') }} as events
        on events.subscriber_key = spine.subscriber_key
        and events.event_type = 'click'
        and events.occurred_at >= spine.cutoff_at
        and events.occurred_at < spine.cutoff_at + to_days(7)
    group by all
),

activity_times as (
    select subscriber_key, occurred_at as active_at
    from {{ ref('fct_email_events') }}
    where event_type in ('open', 'click')
    union all
    select subscriber_key, ordered_at as active_at
    from {{ ref('fct_orders') }}
),

active as (
    select spine.subscriber_key, spine.cutoff_at
    from spine
    inner join activity_times
        on activity_times.subscriber_key = spine.subscriber_key
        and activity_times.active_at >= spine.cutoff_at
        and activity_times.active_at < spine.cutoff_at + to_days(28)
    group by all
)

select
    features.*,
    {{ lifecycle_stage(
        'features.tenure_days', 'features.days_since_last_open',
        'features.days_since_last_click', 'features.days_since_last_order'
    ) }} as lifecycle_stage,
    {{ tenure_band('features.tenure_days') }} as tenure_band,
    subscribers.source_systems,
    cast(purchases.subscriber_key is not null as integer) as label_purchase_14d,
    cast(clicks.subscriber_key is not null as integer) as label_click_7d,
    case
        when features.cutoff_at + to_days(28) > (select as_of from bounds) then null
        else cast(active.subscriber_key is null as integer)
    end as label_churn_28d
from features
left join {{ ref('int_subscribers_unified') }} as subscribers
    on subscribers.subscriber_key = features.subscriber_key
left join purchases
    on purchases.subscriber_key = features.subscriber_key and purchases.cutoff_at = features.cutoff_at
left join clicks
    on clicks.subscriber_key = features.subscriber_key and clicks.cutoff_at = features.cutoff_at
left join active
    on active.subscriber_key = features.subscriber_key and active.cutoff_at = features.cutoff_at
