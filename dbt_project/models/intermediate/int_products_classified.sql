{#- Every products row with its final verdict (reason_code null = valid;
    is_superseded = a later drop holds a newer valid version of the record). -#}
with checked as (
    select *, row_issue as pre_dedup_issue
    from {{ ref('stg_catalog__products') }}
)

{{ final_verdict('checked', 'product_id', supersede=true) }}
