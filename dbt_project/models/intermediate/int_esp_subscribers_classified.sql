{#- Every esp_subscribers row with its final verdict (reason_code null = valid;
    is_superseded = a later drop holds a newer valid version of the record). Holds PII. -#}
{{ config(database='pii', materialized='view') }}

with checked as (
    select *, row_issue as pre_dedup_issue
    from {{ ref('stg_esp__subscribers') }}
)

{{ final_verdict('checked', 'esp_id', supersede=true) }}
