{#-
  Every valid CRM and ESP subscriber record with its normalised email and subscriber_key
  (the one int_subscriber_records_keyed computed for the row, so the HMAC runs once per
  row). Records with the same key are one person. Holds PII: lives in the vault. The email,
  first name, birth year and gender of a person who asked for erasure are removed (null);
  their key and record ids stay, so they stay excluded (docs/privacy.md). Birth year and
  gender (CRM only) are audit attributes: the warehouse gets only the age band and gender.
-#}
{{ config(database='pii') }}

with identities as (
    select
        'crm' as source_system,
        source_file,
        landing_batch,
        source_row_key,
        crm_id as source_id,
        {{ normalise_email('email') }} as email_normalised,
        first_name,
        signup_at as signed_up_at,
        timezone,
        country,
        birth_year,
        gender
    from {{ ref('int_crm_subscribers_validated') }}

    union all

    select
        'esp' as source_system,
        source_file,
        landing_batch,
        source_row_key,
        esp_id as source_id,
        {{ normalise_email('email') }} as email_normalised,
        first_name,
        created_at as signed_up_at,
        timezone,
        cast(null as varchar) as country,
        cast(null as integer) as birth_year,
        cast(null as varchar) as gender
    from {{ ref('int_esp_subscribers_validated') }}
),

keyed as (
    select identities.*, records.subscriber_key
    from identities
    inner join {{ ref('int_subscriber_records_keyed') }} as records using (source_file, landing_batch, source_row_key)
),

erased as (
    select distinct subscriber_key from {{ ref('int_subscribers_erased') }} where subscriber_key is not null
)

select
    source_system,
    source_id,
    subscriber_key,
    case when subscriber_key in (select subscriber_key from erased) then null else email_normalised end as email_normalised,
    case when subscriber_key in (select subscriber_key from erased) then null else first_name end as first_name,
    signed_up_at,
    timezone,
    country,
    case when subscriber_key in (select subscriber_key from erased) then null else birth_year end as birth_year,
    case when subscriber_key in (select subscriber_key from erased) then null else gender end as gender
from keyed
