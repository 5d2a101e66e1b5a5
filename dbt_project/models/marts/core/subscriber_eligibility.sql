{#-
  May we email this subscriber as of the run's as_of? One row per canonical subscriber;
  exclusion_reason is the first that applies of: erased, suppressed_legal_request,
  suppressed_complaint, suppressed_hard_bounce, unsubscribed, no_consent_record.
-#}
with subscribers as (
    select subscriber_key from {{ ref('int_subscribers_unified') }}
),

consent as (
    select history.*
    from {{ ref('consent_history') }} as history
    where {{ consent_valid_at('history', as_of()) }}
),

suppressions as (
    select
        subscriber_key,
        bool_or(suppression_reason = 'legal_request') as has_legal_request,
        bool_or(suppression_reason = 'complaint') as has_complaint,
        bool_or(suppression_reason = 'hard_bounce') as has_hard_bounce
    from {{ ref('suppression_list') }}
    where suppressed_at <= {{ as_of() }}
    group by subscriber_key
),

decided as (
    select
        subscribers.subscriber_key,
        case
            when consent.consent_status = 'erased' then 'erased'
            when suppressions.has_legal_request then 'suppressed_legal_request'
            when suppressions.has_complaint then 'suppressed_complaint'
            when suppressions.has_hard_bounce then 'suppressed_hard_bounce'
            when consent.consent_status = 'unsubscribed' then 'unsubscribed'
            when consent.consent_status is null then 'no_consent_record'
        end as exclusion_reason,
        consent.consent_status,
        consent.valid_from as consent_valid_from,
        consent.consent_source,
        consent.proof as consent_proof
    from subscribers
    left join consent on consent.subscriber_key = subscribers.subscriber_key
    left join suppressions on suppressions.subscriber_key = subscribers.subscriber_key
)

select
    subscriber_key,
    exclusion_reason is null as is_eligible,
    exclusion_reason,
    consent_status,
    consent_valid_from,
    consent_source,
    consent_proof,
    {{ as_of() }} as as_of
from decided
