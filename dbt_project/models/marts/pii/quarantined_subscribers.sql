{#-
  Quarantined rows of the subscriber files (they carry PII, so they live in the vault);
  same columns as quality.quarantine_rows.
-#}
{%- set classified = [
    ('int_crm_subscribers_classified', 'crm_id'),
    ('int_esp_subscribers_classified', 'esp_id'),
] %}

{{ quarantined_rows(classified) }}
