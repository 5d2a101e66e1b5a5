{#- Every crm_subscribers row with its final verdict (reason_code null = valid). Holds PII. -#}
{{ config(database='pii', materialized='view') }}

with checked as (
    select *, row_issue as pre_dedup_issue
    from {{ ref('stg_crm__subscribers') }}
)

{{ final_verdict('checked', 'crm_id') }}
