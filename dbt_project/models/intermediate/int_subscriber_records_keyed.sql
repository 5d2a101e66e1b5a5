{#-
  Every subscriber row of both systems, kept, superseded or quarantined, in every landing
  batch, with the person its email names (subscriber_key, null when the email is unusable).
  No PII. Consent records that point at a quarantined subscriber row, or at a record whose
  earlier version named another person, are tied to a person through it, so neither a
  broken subscriber row nor an updated one can hide a revocation (docs/warehouse.md,
  "Consent fails closed").
-#}
with records as (
    select 'crm' as source_system, source_file, landing_batch, source_row_key, crm_id as source_id, email, reason_code, is_superseded
    from {{ ref('int_crm_subscribers_classified') }}

    union all

    select 'esp' as source_system, source_file, landing_batch, source_row_key, esp_id as source_id, email, reason_code, is_superseded
    from {{ ref('int_esp_subscribers_classified') }}
)

select
    source_system,
    source_file,
    landing_batch,
    source_row_key,
    source_id,
    upper(source_id) as source_id_folded,
    case
        when reason_code is not distinct from 'value_too_long' then null
        when not {{ is_invalid_email('email') }} then subscriber_key({{ normalise_email('email') }})
        {#- A CRM record without an email (contract v2) is a person of its own, keyed by its
            id (hex, so ids that differ only in case stay apart; the "crm-id:" prefix can
            never be an email): ml.privacy.crm_record_key is the twin. -#}
        when source_system = 'crm' and {{ is_blank('email') }} and source_id is not null
        then subscriber_key('crm-id:' || hex(source_id))
    end as subscriber_key,
    reason_code is null as is_valid_record,
    is_superseded
from records
