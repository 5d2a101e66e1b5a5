{#-
  May we email this subscriber as of the run's as_of? One row per canonical subscriber.
  `exclusion_reasons` lists every reason that applies, in the priority order of the var
  `exclusion_reasons`; `exclusion_reason` is the first of them. Consent fails closed:
  - erased: any erasure of any of the person's records, kept or quarantined, at any date;
  - suppressed_*: any suppression in force;
  - unsubscribed: the person's latest consent is a revocation, or any one of their
    records' latest consent is (a revocation on one record is not undone by a
    subscription on another);
  - consent_record_quarantined: a quarantined consent row is tied to the person and no
    later clean subscription supersedes it. Never superseded: a suppression, a row whose
    time cannot be read, and a consent row whose status is an erasure or unreadable (it
    may be one, and an erasure is never undone);
  - no_consent_record: no clean consent at all.
-#}
with subscribers as (
    select subscriber_key from {{ ref('int_subscribers_unified') }}
),

consent as (
    select history.*
    from {{ ref('consent_history') }} as history
    where {{ consent_valid_at('history', as_of()) }}
),

changes as (
    select * from {{ ref('int_consent_changes') }}
    where changed_at <= {{ as_of() }}
),

record_states as (
    select
        subscriber_key,
        record_system,
        record_id,
        arg_max(
            consent_status,
            (changed_at, case consent_status when 'erased' then 2 when 'unsubscribed' then 1 else 0 end)
        ) as latest_status
    from changes
    group by subscriber_key, record_system, record_id
),

records_revoked as (
    select subscriber_key, bool_or(latest_status = 'unsubscribed') as has_unsubscribed_record
    from record_states
    group by subscriber_key
),

erased as (
    select distinct subscriber_key from {{ ref('int_subscribers_erased') }}
    where subscriber_key is not null
),

{%- set supersedable_statuses = var('consent_statuses') | reject('equalto', 'erased') | list %}

quarantined_holds as (
    select quarantined.subscriber_key, count(*) as quarantined_records
    from {{ ref('int_consent_records_quarantined') }} as quarantined
    where quarantined.subscriber_key is not null
        and not (
            quarantined.record_kind <> 'suppression'
            and (quarantined.record_kind <> 'consent_event' or coalesce(quarantined.status in {{ sql_list(supersedable_statuses) }}, false))
            and quarantined.effective_at is not null
            and exists (
                select 1 from changes
                where changes.subscriber_key = quarantined.subscriber_key
                    and changes.consent_status = 'subscribed'
                    and changes.changed_at > quarantined.effective_at
            )
        )
    group by quarantined.subscriber_key
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

{%- set conditions = {
    'erased': "erased.subscriber_key is not null or consent.consent_status = 'erased'",
    'suppressed_legal_request': 'suppressions.has_legal_request',
    'suppressed_complaint': 'suppressions.has_complaint',
    'suppressed_hard_bounce': 'suppressions.has_hard_bounce',
    'unsubscribed': "consent.consent_status = 'unsubscribed' or records_revoked.has_unsubscribed_record",
    'consent_record_quarantined': 'quarantined_holds.subscriber_key is not null',
    'no_consent_record': 'consent.consent_status is null',
} %}
{%- for reason in var('exclusion_reasons') if reason not in conditions %}
    {{ exceptions.raise_compiler_error("subscriber_eligibility: no condition for exclusion reason " ~ reason) }}
{%- endfor %}

decided as (
    select
        subscribers.subscriber_key,
        list_filter(
            [
            {%- for reason in var('exclusion_reasons') %}
                case when coalesce({{ conditions[reason] }}, false) then '{{ reason }}' end{{ "," if not loop.last }}
            {%- endfor %}
            ],
            lambda reason: reason is not null
        ) as exclusion_reasons,
        consent.consent_status,
        consent.valid_from as consent_valid_from,
        consent.consent_source,
        consent.proof as consent_proof
    from subscribers
    left join consent on consent.subscriber_key = subscribers.subscriber_key
    left join suppressions on suppressions.subscriber_key = subscribers.subscriber_key
    left join records_revoked on records_revoked.subscriber_key = subscribers.subscriber_key
    left join erased on erased.subscriber_key = subscribers.subscriber_key
    left join quarantined_holds on quarantined_holds.subscriber_key = subscribers.subscriber_key
)

select
    subscriber_key,
    len(exclusion_reasons) = 0 as is_eligible,
    exclusion_reasons[1] as exclusion_reason,
    exclusion_reasons,
    consent_status,
    consent_valid_from,
    consent_source,
    consent_proof,
    {{ as_of() }} as as_of
from decided
