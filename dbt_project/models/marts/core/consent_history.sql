{#-
  Type-2 consent history per subscriber, from the clean changes of int_consent_changes
  (consent events, and email `unsubscribe`/`complaint` events as revocations).
  Each row is in force on [valid_from, valid_to); see the consent_valid_at macro.
  Changes at the same instant collapse into one row: the most restrictive status wins
  (erased > unsubscribed > subscribed) and the other records are listed in
  `same_instant_record_ids`, so no window is empty and nothing is lost for audit.
-#}
with changes as (
    select * exclude (record_system, record_id) from {{ ref('int_consent_changes') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by subscriber_key, changed_at
            order by
                case consent_status when 'erased' then 0 when 'unsubscribed' then 1 else 2 end,
                source_record_id
        ) as rank_at_instant
    from changes
),

outranked as (
    select
        subscriber_key,
        changed_at,
        list(source_record_id order by source_record_id) as same_instant_record_ids
    from ranked
    where rank_at_instant > 1
    group by subscriber_key, changed_at
),

collapsed as (
    select
        ranked.* exclude (rank_at_instant),
        coalesce(outranked.same_instant_record_ids, []::varchar[]) as same_instant_record_ids
    from ranked
    left join outranked using (subscriber_key, changed_at)
    where ranked.rank_at_instant = 1
),

windowed as (
    select
        *,
        lead(changed_at) over (partition by subscriber_key order by changed_at) as next_changed_at
    from collapsed
)

select
    subscriber_key,
    consent_status,
    changed_at as valid_from,
    next_changed_at as valid_to,
    next_changed_at is null as is_current,
    consent_source,
    proof,
    source_system,
    source_record_id,
    same_instant_record_ids
from windowed
