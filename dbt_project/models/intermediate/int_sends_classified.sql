{#- Every sends row with its final verdict (reason_code null = valid). -#}
with staged as (
    select * from {{ ref('stg_esp__sends') }}
),

subscribers as (
    select esp_id from {{ ref('int_esp_subscribers_validated') }}
),

checked as (
    select
        staged.*,
        coalesce(
            staged.row_issue,
            case when subscribers.esp_id is null then 'unknown_subscriber' end
        ) as pre_dedup_issue
    from staged
    left join subscribers on staged.esp_id = subscribers.esp_id
)

{{ final_verdict('checked', 'send_id') }}
