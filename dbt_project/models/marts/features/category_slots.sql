{#-
  Which of the models' category slots each product category fills (docs/data_contract.md,
  "Product categories"): one row per category known as of the run, from the catalogue
  (valid products rows), the orders and the mapping file. The table an auditor reads to know
  what `top_category_slot` means.

  With the mapping file (landing category_mapping.csv, category -> model_category): the
  model categories, in alphabetical order, fill category_slot_1 .. N (N = the length of var
  category_slots); each category counts towards its model category's slot.
  Without it: the top N categories by revenue (USD value of purchase lines) fill the slots,
  slot 1 the largest, ties by category name. Revenue is counted only on orders placed before
  ranked_before = the first data day + 28 days: the earliest training cutoff there can be
  (marts.training_examples), so no cutoff's features are ranked on orders from its own label
  window or later, and the ranking stays the same from day to day (a slot keeps its meaning
  between a model's training and its scoring). A category first sold later goes to the
  other bucket until a mapping file says otherwise. The connector's 'uncategorised' is never
  ranked.
  Every other category is in the other bucket (slot category_other, label 'other'): never
  dropped.
-#}
{%- set n_slots = var('category_slots') | length %}
with mapping as (
    select category, model_category from {{ ref('stg_catalog__category_mappings') }}
    where category is not null and model_category is not null
),

mapping_in_use as (
    select count(*) > 0 as in_use from mapping
),

ranking_bounds as (
    select least({{ first_data_day() }} + to_days(28), {{ as_of() }}) as ranked_before
),

revenue as (
    select
        products.category,
        -- an exact sum: a sum of doubles depends on the order threads add them in
        cast(sum(cast(lines.amount * rates.usd_per_unit as decimal(38, 10))) as double) as ranking_revenue_usd
    from {{ ref('int_orders_validated') }} as lines
    inner join {{ ref('int_products_validated') }} as products on products.product_id = lines.product_id
    inner join {{ ref('currency_rates') }} as rates on rates.currency = lines.currency
    cross join ranking_bounds
    where lines.amount > 0 and lines.ordered_at < ranking_bounds.ranked_before
        and products.category <> '{{ var("uncategorised_category") }}'
    group by products.category
),

known_categories as (
    select category from {{ ref('int_products_validated') }} where category is not null
    union
    select product_category from {{ ref('fct_orders') }} where product_category is not null
    union
    select category from mapping
),

ranked_model_categories as (
    -- mapping file: its model categories by name; else categories by revenue
    select
        model_category,
        row_number() over (order by model_category) as slot_position
    from (select distinct model_category from mapping)
    union all
    select
        category as model_category,
        row_number() over (order by ranking_revenue_usd desc, category) as slot_position
    from revenue
    cross join mapping_in_use
    where ranking_revenue_usd > 0 and not mapping_in_use.in_use
),

slots as (
    select
        model_category,
        slot_position,
        case slot_position
            {%- for slot in var('category_slots') %}
            when {{ loop.index }} then '{{ slot }}'
            {%- endfor %}
        end as slot
    from ranked_model_categories
    where slot_position <= {{ n_slots }}
)

select
    known_categories.category,
    coalesce(slots.slot, '{{ var("category_other_slot") }}') as slot,
    coalesce(slots.slot_position, {{ n_slots + 1 }}) as slot_position,
    coalesce(slots.model_category, '{{ var("category_other_label") }}') as slot_label,
    case when mapping_in_use.in_use then '{{ var("category_slot_sources")[0] }}'
        else '{{ var("category_slot_sources")[1] }}' end as assigned_by,
    revenue.ranking_revenue_usd,
    ranking_bounds.ranked_before
from known_categories
cross join ranking_bounds
cross join mapping_in_use
left join mapping on mapping.category = known_categories.category
-- with a mapping, a category fills its model category's slot (unlisted: none, so other);
-- without one, its own slot when it ranked
left join slots
    on slots.model_category = case when mapping_in_use.in_use then mapping.model_category else known_categories.category end
left join revenue on revenue.category = known_categories.category
