{#- Every email_events row with its final verdict (reason_code null = valid). -#}
with staged as (
    select * from {{ ref('stg_esp__email_events') }}
),

subscribers as (
    select esp_id, created_at from {{ ref('int_esp_subscribers_validated') }}
),

checked as (
    select
        staged.*,
        coalesce(
            staged.row_issue,
            case
                when subscribers.esp_id is null then 'unknown_subscriber'
                when staged.occurred_at < subscribers.created_at then 'before_signup'
            end
        ) as pre_dedup_issue
    from staged
    left join subscribers on staged.esp_id = subscribers.esp_id
)

{{ final_verdict('checked', 'event_id') }}
