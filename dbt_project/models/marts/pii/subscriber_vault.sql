{#-
  The PII vault: one row per canonical subscriber with their normalised email and first
  name. Subscribers who asked for erasure (int_subscribers_erased) are left out.
-#}
with identities as (
    select * from {{ ref('int_subscriber_identities_resolved') }}
),

people as (
    select
        subscriber_key,
        min(email_normalised) as email,
        -- the CRM's first name (the shop account) wins over the ESP's
        arg_min(
            first_name,
            (case source_system when 'crm' then 0 else 1 end, signed_up_at, source_id)
        ) filter (where first_name is not null) as first_name,
        min(signed_up_at) as first_seen_at
    from identities
    where email_normalised is not null
    group by subscriber_key
),

erased as (
    select distinct subscriber_key from {{ ref('int_subscribers_erased') }} where subscriber_key is not null
)

select people.*
from people
where people.subscriber_key not in (select subscriber_key from erased)
