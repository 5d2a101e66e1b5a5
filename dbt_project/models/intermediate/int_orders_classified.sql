{#- Every orders row with its final verdict (reason_code null = valid). -#}
with staged as (
    select * from {{ ref('stg_crm__orders') }}
),

subscribers as (
    select crm_id, signup_at from {{ ref('int_crm_subscribers_validated') }}
),

checked as (
    select
        staged.*,
        coalesce(
            staged.row_issue,
            case
                when subscribers.crm_id is null then 'unknown_subscriber'
                when staged.ordered_at < subscribers.signup_at then 'before_signup'
            end
        ) as pre_dedup_issue
    from staged
    left join subscribers on staged.crm_id = subscribers.crm_id
)

{#- An order line is keyed by its order and line number (line_number is '' in a file without
    line numbers, so there the order id alone is the key, as in contract v1). -#}
{{ final_verdict('checked', 'order_id, line_number') }}
