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
        when reason_code is distinct from 'value_too_long' and not {{ is_invalid_email('email') }}
        then subscriber_key({{ normalise_email('email') }})
    end as subscriber_key,
    reason_code is null as is_valid_record,
    is_superseded
from records
