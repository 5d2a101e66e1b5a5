{#-
  The contact policy (var contact_policy, versioned): may we email this subscriber on the
  send day, the day after as_of, and if not, every reason why. One row per canonical
  subscriber. `exclusion_reasons` holds the consent reasons of subscriber_eligibility (consent
  is absolute), then the contact rules that protect the person from too much mail, in the
  order of the var contact_exclusion_reasons:
  - frequency_cap: max_sends_per_7_days or more sends in the 7 days before the send window
    opens, so one more would exceed the cap;
  - minimum_gap: the last send less than min_hours_between_sends before the window opens;
  - fatigue_backoff: the latest fatigue_unopened_streak sends (or more) all unopened, and the
    last of them less than fatigue_cooldown_days before the window opens. After the cool-down
    the person re-enters: one send is allowed, and if it goes unopened too, the streak is
    still long enough and the back-off starts again from it.
  Both time rules are judged when the send window opens (send_window_opens_hour_utc on the
  send day), the earliest moment the ESP sends: a later send only lengthens the gap and lets
  older sends leave the 7 days, so the rules hold whenever in the window the email goes.
  An open or a click (a click is an open the tracking pixel missed) counts as opened.
-#}
{%- set policy = var('contact_policy') %}

with send_window as (
    select
        cast({{ as_of() }} as date) + 1 as send_day,
        cast(cast({{ as_of() }} as date) + 1 as timestamp)
            + to_hours({{ policy['send_window_opens_hour_utc'] | int }}) as opens_at
),

sends as (
    select subscriber_key, send_id, sent_at
    from {{ ref('fct_sends') }}
    where sent_at <= {{ as_of() }}
),

opened_sends as (
    select distinct send_id
    from {{ ref('fct_email_events') }}
    where event_type in ('open', 'click') and occurred_at <= {{ as_of() }}
),

sends_by_recency as (
    select
        sends.subscriber_key,
        sends.sent_at,
        opened_sends.send_id is not null as was_opened,
        row_number() over (
            partition by sends.subscriber_key order by sends.sent_at desc, sends.send_id desc
        ) as recency_rank
    from sends
    left join opened_sends on opened_sends.send_id = sends.send_id
),

history as (
    select
        sends_by_recency.subscriber_key,
        max(sends_by_recency.sent_at) as last_sent_at,
        count(*) filter (
            where sends_by_recency.sent_at > send_window.opens_at - to_days(7)
        ) as sends_in_last_7_days,
        -- The sends after the latest opened one (all of them when none was opened).
        coalesce(min(sends_by_recency.recency_rank) filter (where sends_by_recency.was_opened) - 1, count(*))
            as unopened_streak
    from sends_by_recency
    cross join send_window
    group by sends_by_recency.subscriber_key
),

judged as (
    select
        eligibility.subscriber_key,
        eligibility.is_eligible as has_consent,
        eligibility.exclusion_reasons as consent_reasons,
        send_window.send_day,
        send_window.opens_at as send_window_opens_at,
        coalesce(history.sends_in_last_7_days, 0) as sends_in_last_7_days,
        history.last_sent_at,
        round(date_diff('second', history.last_sent_at, send_window.opens_at) / 3600.0, 2) as hours_since_last_send,
        coalesce(history.unopened_streak, 0) as unopened_streak,
        case
            when history.unopened_streak >= {{ policy['fatigue_unopened_streak'] | int }}
                then history.last_sent_at + to_days({{ policy['fatigue_cooldown_days'] | int }})
        end as backed_off_until
    from {{ ref('subscriber_eligibility') }} as eligibility
    cross join send_window
    left join history on history.subscriber_key = eligibility.subscriber_key
),

{%- set conditions = {
    'frequency_cap': 'sends_in_last_7_days >= ' ~ (policy['max_sends_per_7_days'] | int),
    'minimum_gap': 'last_sent_at > send_window_opens_at - to_hours(' ~ (policy['min_hours_between_sends'] | int) ~ ')',
    'fatigue_backoff': 'backed_off_until > send_window_opens_at',
} %}
{%- for reason in var('contact_exclusion_reasons') if reason not in conditions %}
    {{ exceptions.raise_compiler_error("subscriber_contact_policy: no condition for contact exclusion reason " ~ reason) }}
{%- endfor %}

reasoned as (
    select
        *,
        list_concat(
            consent_reasons,
            list_filter(
                [
                {%- for reason in var('contact_exclusion_reasons') %}
                    case when coalesce({{ conditions[reason] }}, false) then '{{ reason }}' end{{ "," if not loop.last }}
                {%- endfor %}
                ],
                lambda reason: reason is not null
            )
        ) as exclusion_reasons
    from judged
)

select
    subscriber_key,
    send_day,
    len(exclusion_reasons) = 0 as is_contactable,
    exclusion_reasons[1] as exclusion_reason,
    exclusion_reasons,
    has_consent,
    sends_in_last_7_days,
    last_sent_at,
    hours_since_last_send,
    unopened_streak,
    backed_off_until,
    send_window_opens_at,
    '{{ policy['version'] }}' as contact_policy_version,
    {{ as_of() }} as as_of
from reasoned
