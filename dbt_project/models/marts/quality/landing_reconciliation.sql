{#-
  Row conservation per landing file: every row read is either staged (validated) or
  quarantined (exact duplicates included). Only counts leave the vault.
-#}
{%- set files = [
    ('crm_subscribers', 'stg_crm__subscribers', 'int_crm_subscribers_validated'),
    ('esp_subscribers', 'stg_esp__subscribers', 'int_esp_subscribers_validated'),
    ('consent_events', 'stg_consent__events', 'int_consent_events_validated'),
    ('suppressions', 'stg_consent__suppressions', 'int_suppressions_validated'),
    ('products', 'stg_catalog__products', 'int_products_validated'),
    ('campaigns', 'stg_esp__campaigns', 'int_campaigns_validated'),
    ('sends', 'stg_esp__sends', 'int_sends_validated'),
    ('email_events', 'stg_esp__email_events', 'int_email_events_validated'),
    ('orders', 'stg_crm__orders', 'int_orders_validated'),
] %}

with file_counts as (
    {%- for source_file, staging_model, validated_model in files %}
    select
        '{{ source_file }}' as source_file,
        (select count(*) from {{ ref(staging_model) }}) as rows_in,
        (select count(*) from {{ ref(validated_model) }}) as rows_staged
    union all
    {%- endfor %}
    -- the vendored experiment has no quarantine: every row is staged
    select
        'hillstrom' as source_file,
        (select count(*) from {{ ref('stg_hillstrom__customers') }}) as rows_in,
        (select count(*) from {{ ref('stg_hillstrom__customers') }}) as rows_staged
),

quarantined as (
    select
        source_file,
        count(*) as rows_quarantined,
        count(*) filter (where reason_code = 'exact_duplicate') as rows_exact_duplicate
    from (
        select source_file, reason_code from {{ ref('quarantine_rows') }}
        union all
        select source_file, reason_code from {{ ref('quarantined_subscribers') }}
    )
    group by source_file
)

select
    file_counts.source_file,
    file_counts.rows_in,
    file_counts.rows_staged,
    coalesce(quarantined.rows_quarantined, 0) as rows_quarantined,
    coalesce(quarantined.rows_exact_duplicate, 0) as rows_exact_duplicate,
    file_counts.rows_in = file_counts.rows_staged + coalesce(quarantined.rows_quarantined, 0) as is_conserved
from file_counts
left join quarantined on quarantined.source_file = file_counts.source_file
