{#-
  Every valid CRM and ESP subscriber record with its normalised email and subscriber_key.
  Records with the same key are one person. Holds PII: lives in the vault.
-#}
{{ config(database='pii') }}

with identities as (
    select
        'crm' as source_system,
        crm_id as source_id,
        {{ normalise_email('email') }} as email_normalised,
        first_name,
        signup_at as signed_up_at,
        timezone,
        country
    from {{ ref('int_crm_subscribers_validated') }}

    union all

    select
        'esp' as source_system,
        esp_id as source_id,
        {{ normalise_email('email') }} as email_normalised,
        first_name,
        created_at as signed_up_at,
        timezone,
        cast(null as varchar) as country
    from {{ ref('int_esp_subscribers_validated') }}
)

select
    source_system,
    source_id,
    subscriber_key(email_normalised) as subscriber_key,
    email_normalised,
    first_name,
    signed_up_at,
    timezone,
    country
from identities
