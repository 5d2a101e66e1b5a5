{#- The features of every canonical subscriber at cutoff_at = as_of, for scoring. -#}
with spine as (
    select subscriber_key, {{ as_of() }} as cutoff_at
    from {{ ref('int_subscribers_unified') }}
),

features as (
    {{ subscriber_features('spine') }}
)

select * from features
