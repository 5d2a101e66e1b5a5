{#- Every suppressions row with its final verdict (reason_code null = valid). -#}
{{ verdict_for_source_subscriber_rows('stg_consent__suppressions', 'suppression_id') }}
