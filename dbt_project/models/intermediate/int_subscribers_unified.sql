{#-
  One row per canonical subscriber (person), without PII: which systems know them, when
  they were first seen (anywhere, and in the CRM: when they became a shop customer), their country (CRM) and their time zone, by the fallback chain of
  docs/data_contract.md: their own (the ESP's, which the sends use, else the CRM's), else
  their country's (seed country_timezones), else the var default_timezone;
  timezone_source says which. For audits only, the age band at as_of and the gender (CRM,
  'unknown' when not exported). The birth year itself stays in the vault.
-#}
with identities as (
    select subscriber_key, source_system, source_id, signed_up_at, timezone, country, birth_year, gender
    from {{ ref('int_subscriber_identities_resolved') }}
),

people as (
    select
        subscriber_key,
        string_agg(distinct source_system, '+' order by source_system) as source_systems,
        min(signed_up_at) as first_seen_at,
        min(signed_up_at) filter (where source_system = 'crm') as crm_first_seen_at,
        coalesce(
            arg_min(timezone, (signed_up_at, source_id)) filter (where source_system = 'esp' and timezone is not null),
            arg_min(timezone, (signed_up_at, source_id)) filter (where source_system = 'crm' and timezone is not null)
        ) as own_timezone,
        arg_min(country, (signed_up_at, source_id)) filter (where country is not null) as country,
        {{ age_band('arg_min(birth_year, (signed_up_at, source_id)) filter (where birth_year is not null)', as_of()) }}
            as age_band,
        coalesce(arg_min(gender, (signed_up_at, source_id)) filter (where gender is not null), 'unknown') as gender,
        count(*) filter (where source_system = 'crm') as crm_record_count,
        count(*) filter (where source_system = 'esp') as esp_record_count
    from identities
    group by subscriber_key
)

select
    people.subscriber_key,
    people.source_systems,
    people.first_seen_at,
    people.crm_first_seen_at,
    coalesce(people.own_timezone, countries.timezone, '{{ var("default_timezone") }}') as timezone,
    case
        when people.own_timezone is not null then 'subscriber'
        when countries.timezone is not null then 'country'
        else 'default'
    end as timezone_source,
    people.country,
    people.age_band,
    people.gender,
    people.crm_record_count,
    people.esp_record_count
from people
left join {{ ref('country_timezones') }} as countries
    on countries.country_code = upper(people.country)
