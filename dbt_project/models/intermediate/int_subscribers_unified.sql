{#-
  One row per canonical subscriber (person), without PII: which systems know them, when
  they were first seen, and their time zone (the ESP's, which the sends use, else the
  CRM's) and country (CRM); for audits only, the age band at as_of and the gender (CRM,
  'unknown' when not exported). The birth year itself stays in the vault.
-#}
with identities as (
    select subscriber_key, source_system, source_id, signed_up_at, timezone, country, birth_year, gender
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
    {{ age_band('arg_min(birth_year, (signed_up_at, source_id)) filter (where birth_year is not null)', as_of()) }}
        as age_band,
    coalesce(arg_min(gender, (signed_up_at, source_id)) filter (where gender is not null), 'unknown') as gender,
    count(*) filter (where source_system = 'crm') as crm_record_count,
    count(*) filter (where source_system = 'esp') as esp_record_count
from identities
group by subscriber_key
