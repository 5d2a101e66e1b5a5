{#-
  One row per canonical subscriber as of the run: identity facts, consent and suppression
  state, eligibility, RFM, engagement counts and a lifecycle stage. Counts and the top
  category come from scoring_features, so profiles and the model agree: top_category_slot
  is the model's feature, top_category its label in marts.category_slots (the category, or
  the mapping file's model category, 'other' for the other bucket, 'none' without signal).
  lifecycle_stage: new (first seen < 30 days ago), never_engaged (no open, click or
  order ever), active (last one <= 30 days ago), at_risk (<= 90 days), lapsed.
-#}
with subscribers as (
    select * from {{ ref('int_subscribers_unified') }}
),

eligibility as (
    select * from {{ ref('subscriber_eligibility') }}
),

suppressions as (
    select
        subscriber_key,
        arg_min(
            suppression_reason,
            case suppression_reason when 'legal_request' then 0 when 'complaint' then 1 else 2 end
        ) as suppression_reason
    from {{ ref('suppression_list') }}
    where suppressed_at <= {{ as_of() }}
    group by subscriber_key
),

features as (
    select * from {{ ref('scoring_features') }}
),

slot_labels as (
    select distinct slot, slot_label from {{ ref('category_slots') }}
)

select
    subscribers.subscriber_key,
    subscribers.source_systems,
    subscribers.first_seen_at,
    subscribers.timezone,
    subscribers.timezone_source,
    subscribers.country,
    subscribers.age_band,
    subscribers.gender,
    eligibility.consent_status,
    eligibility.consent_valid_from as consent_recorded_at,
    suppressions.suppression_reason is not null as is_suppressed,
    suppressions.suppression_reason,
    eligibility.is_eligible,
    eligibility.exclusion_reason,
    features.days_since_last_order as recency_days,
    cast(features.orders_total as bigint) as frequency_orders,
    features.monetary_total,
    {%- for kind in ['sends', 'opens', 'clicks'] %}
    {%- for days in [7, 30, 90] %}
    cast(features.{{ kind }}_{{ days }}d as bigint) as {{ kind }}_{{ days }}d,
    {%- endfor %}
    {%- endfor %}
    {{ lifecycle_stage(
        days_between('subscribers.first_seen_at', as_of()), 'features.days_since_last_open',
        'features.days_since_last_click', 'features.days_since_last_order'
    ) }} as lifecycle_stage,
    features.top_category_slot,
    coalesce(slot_labels.slot_label, features.top_category_slot) as top_category,
    {{ as_of() }} as as_of
from subscribers
left join eligibility on eligibility.subscriber_key = subscribers.subscriber_key
left join suppressions on suppressions.subscriber_key = subscribers.subscriber_key
left join features on features.subscriber_key = subscribers.subscriber_key
left join slot_labels on slot_labels.slot = features.top_category_slot
