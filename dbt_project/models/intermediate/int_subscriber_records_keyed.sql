{#-
  Every subscriber row of both systems, kept or quarantined, with the person its email
  names (subscriber_key, null when the email is unusable). No PII. Consent records that
  point at a quarantined subscriber row are tied to a person through it, so a broken
  subscriber row can never hide a revocation (docs/warehouse.md, "Consent fails closed").
-#}
with records as (
    select 'crm' as source_system, source_file, source_row_key, crm_id as source_id, email, reason_code
    from {{ ref('int_crm_subscribers_classified') }}

    union all

    select 'esp' as source_system, source_file, source_row_key, esp_id as source_id, email, reason_code
    from {{ ref('int_esp_subscribers_classified') }}
)

select
    source_system,
    source_file,
    source_row_key,
    source_id,
    upper(source_id) as source_id_folded,
    case
        when reason_code is distinct from 'value_too_long' and not {{ is_invalid_email('email') }}
        then subscriber_key({{ normalise_email('email') }})
    end as subscriber_key,
    reason_code is null as is_valid_record
from records
