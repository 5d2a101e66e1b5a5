{#-
  Row conservation per landing file and landing batch (the initial export, each drop up to
  as_of): every row read is either staged (validated), superseded by a later drop's version
  of its record, or quarantined (exact duplicates included). The initial batch of every
  file has a row even when the file is empty. Only counts leave the vault.
-#}
{%- set files = [
    ('crm_subscribers', 'stg_crm__subscribers', 'int_crm_subscribers_classified', 'int_crm_subscribers_validated'),
    ('esp_subscribers', 'stg_esp__subscribers', 'int_esp_subscribers_classified', 'int_esp_subscribers_validated'),
    ('consent_events', 'stg_consent__events', 'int_consent_events_classified', 'int_consent_events_validated'),
    ('suppressions', 'stg_consent__suppressions', 'int_suppressions_classified', 'int_suppressions_validated'),
    ('products', 'stg_catalog__products', 'int_products_classified', 'int_products_validated'),
    ('campaigns', 'stg_esp__campaigns', 'int_campaigns_classified', 'int_campaigns_validated'),
    ('sends', 'stg_esp__sends', 'int_sends_classified', 'int_sends_validated'),
    ('email_events', 'stg_esp__email_events', 'int_email_events_classified', 'int_email_events_validated'),
    ('orders', 'stg_crm__orders', 'int_orders_classified', 'int_orders_validated'),
] %}

with rows_read as (
    {%- for source_file, staging_model, _, _ in files %}
    select '{{ source_file }}' as source_file, landing_batch, count(*) as rows_in
    from {{ ref(staging_model) }}
    group by landing_batch
    union all
    {%- endfor %}
    -- the vendored experiment has no quarantine and no drops: every row is staged
    select 'hillstrom', 'initial', count(*) from {{ ref('stg_hillstrom__customers') }}
),

rows_staged as (
    {%- for source_file, _, _, validated_model in files %}
    select '{{ source_file }}' as source_file, landing_batch, count(*) as rows_staged
    from {{ ref(validated_model) }}
    group by landing_batch
    union all
    {%- endfor %}
    select 'hillstrom', 'initial', count(*) from {{ ref('stg_hillstrom__customers') }}
),

rows_superseded as (
    {%- for source_file, _, classified_model, _ in files %}
    select '{{ source_file }}' as source_file, landing_batch, count(*) as rows_superseded
    from {{ ref(classified_model) }}
    where is_superseded
    group by landing_batch
    {{- " union all" if not loop.last }}
    {%- endfor %}
),

quarantined as (
    select
        source_file,
        landing_batch,
        count(*) as rows_quarantined,
        count(*) filter (where reason_code = 'exact_duplicate') as rows_exact_duplicate
    from (
        select source_file, landing_batch, reason_code from {{ ref('quarantine_rows') }}
        union all
        select source_file, landing_batch, reason_code from {{ ref('quarantined_subscribers') }}
    )
    group by source_file, landing_batch
),

batches as (
    select source_file, landing_batch from rows_read
    union
    {%- for source_file, _, _, _ in files %}
    select '{{ source_file }}', 'initial'{{ " union" if not loop.last }}
    {%- endfor %}
)

select
    batches.source_file,
    batches.landing_batch,
    coalesce(rows_read.rows_in, 0) as rows_in,
    coalesce(rows_staged.rows_staged, 0) as rows_staged,
    coalesce(rows_superseded.rows_superseded, 0) as rows_superseded,
    coalesce(quarantined.rows_quarantined, 0) as rows_quarantined,
    coalesce(quarantined.rows_exact_duplicate, 0) as rows_exact_duplicate,
    coalesce(rows_read.rows_in, 0)
        = coalesce(rows_staged.rows_staged, 0) + coalesce(rows_superseded.rows_superseded, 0)
          + coalesce(quarantined.rows_quarantined, 0) as is_conserved
from batches
left join rows_read using (source_file, landing_batch)
left join rows_staged using (source_file, landing_batch)
left join rows_superseded using (source_file, landing_batch)
left join quarantined using (source_file, landing_batch)
