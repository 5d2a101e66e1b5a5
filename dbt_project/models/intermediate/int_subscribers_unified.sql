{#-
  One row per canonical subscriber (person), without PII: which systems know them, when
  they were first seen, and their time zone (the ESP's, which the sends use, else the
  CRM's) and country (CRM).
-#}
with identities as (
    select subscriber_key, source_system, source_id, signed_up_at, timezone, country
    from {{ ref('int_subscriber_identities_resolved') }}
)

select
    subscriber_key,
    string_agg(distinct source_system, '+' order by source_system) as source_systems,
    min(signed_up_at) as first_seen_at,
    coalesce(
        arg_min(timezone, (signed_up_at, source_id)) filter (where source_system = 'esp'),
        arg_min(timezone, (signed_up_at, source_id)) filter (where source_system = 'crm')
    ) as timezone,
    arg_min(country, (signed_up_at, source_id)) filter (where country is not null) as country,
    count(*) filter (where source_system = 'crm') as crm_record_count,
    count(*) filter (where source_system = 'esp') as esp_record_count
from identities
group by subscriber_key
