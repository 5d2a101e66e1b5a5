{#-
  Every landing row of the files without PII that did not make it into the validated layer,
  with its reason code and raw values. Subscriber files: pii.quarantined_subscribers.
-#}
-- depends_on: {{ ref('int_landing_files_judged') }}
{%- set classified = [
    ('int_consent_events_classified', 'consent_event_id'),
    ('int_suppressions_classified', 'suppression_id'),
    ('int_products_classified', 'product_id'),
    ('int_campaigns_classified', 'campaign_id'),
    ('int_sends_classified', 'send_id'),
    ('int_email_events_classified', 'event_id'),
    ('int_orders_classified', 'order_id'),
] %}

{{ quarantined_rows(classified) }}
