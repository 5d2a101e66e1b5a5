{#- Every suppressions row with its final verdict (reason_code null = valid). -#}
with staged as (
    select * from {{ ref('stg_consent__suppressions') }}
),

known_subscribers as (
    select 'crm' as source_system, crm_id as source_subscriber_id from {{ ref('int_crm_subscribers_validated') }}
    union all
    select 'esp' as source_system, esp_id as source_subscriber_id from {{ ref('int_esp_subscribers_validated') }}
),

checked as (
    select
        staged.*,
        coalesce(
            staged.row_issue,
            case when known_subscribers.source_subscriber_id is null then 'unknown_subscriber' end
        ) as pre_dedup_issue
    from staged
    left join known_subscribers
        on staged.source_system = known_subscribers.source_system
        and staged.source_subscriber_id = known_subscribers.source_subscriber_id
)

{{ final_verdict('checked', 'suppression_id') }}
