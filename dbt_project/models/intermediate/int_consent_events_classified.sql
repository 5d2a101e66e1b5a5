{#- Every consent_events row with its final verdict (reason_code null = valid). -#}
{{ verdict_for_source_subscriber_rows('stg_consent__events', 'consent_event_id') }}
