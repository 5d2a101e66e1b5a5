{#-
  Every landing row of the files without PII that did not make it into the validated layer,
  with its reason code and raw values. Subscriber files: pii.quarantined_subscribers.
-#}
{%- set classified = [
    ('int_consent_events_classified', 'consent_event_id'),
    ('int_suppressions_classified', 'suppression_id'),
    ('int_products_classified', 'product_id'),
    ('int_campaigns_classified', 'campaign_id'),
    ('int_sends_classified', 'send_id'),
    ('int_email_events_classified', 'event_id'),
    ('int_orders_classified', 'order_id'),
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
