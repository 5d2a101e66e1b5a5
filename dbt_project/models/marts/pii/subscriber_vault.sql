{#-
  The PII vault: one row per canonical subscriber with their normalised email and first
  name. Erased subscribers (current consent status `erased`) are left out.
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
    group by subscriber_key
),

erased as (
    select subscriber_key
    from {{ ref('consent_history') }}
    where is_current and consent_status = 'erased'
)

select people.*
from people
where people.subscriber_key not in (select subscriber_key from erased)
