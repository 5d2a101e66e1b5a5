{#-
  Quarantined rows of the subscriber files (they carry PII, so they live in the vault);
  same columns as quality.quarantine_rows.
-#}
{%- set classified = [
    ('int_crm_subscribers_classified', 'crm_id'),
    ('int_esp_subscribers_classified', 'esp_id'),
] %}

{%- for model_name, key_column in classified %}
select
    source_file,
    source_row_key,
    {{ key_column }} as source_record_id,
    reason_code,
    raw_values
from {{ ref(model_name) }}
where reason_code is not null
{% if not loop.last %}union all{% endif %}
{%- endfor %}
