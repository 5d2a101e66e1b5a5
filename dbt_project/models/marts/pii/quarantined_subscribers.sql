{#-
  Quarantined rows of the subscriber files (they carry PII, so they live in the vault);
  same columns as quality.quarantine_rows. The raw values of a row whose person asked for
  erasure are removed (docs/privacy.md); the row itself, its reason and row number stay.
-#}
{%- set classified = [
    ('int_crm_subscribers_classified', 'crm_id'),
    ('int_esp_subscribers_classified', 'esp_id'),
] %}

with quarantined as (
    {{ quarantined_rows(classified) }}
),

erased_rows as (
    select records.source_file, records.landing_batch, records.source_row_key
    from {{ ref('int_subscriber_records_keyed') }} as records
    inner join {{ ref('int_subscribers_erased') }} as erased
        on erased.source_system = records.source_system and erased.source_id = records.source_id
)

select
    quarantined.source_file,
    quarantined.landing_batch,
    quarantined.source_row_key,
    quarantined.source_record_id,
    quarantined.reason_code,
    case
        when erased_rows.source_file is not null then '{"removed": "erasure request"}'::json
        else quarantined.raw_values
    end as raw_values
from quarantined
left join erased_rows using (source_file, landing_batch, source_row_key)
