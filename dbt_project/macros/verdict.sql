{#-
  Final per-row verdict for a landing file, after the row-local and relational checks.

  `relation` must have landing_batch, source_row_key, raw_values, the key column and
  `pre_dedup_issue` (the first row-local or relational reason code, or null). Rows are in
  landing order: the initial export, then the drops by date, each file by row number.

  Events (supersede=false: consent events, suppressions, sends, email events, orders) are
  written once. Among the rows that passed those checks, the first row per key in landing
  order is kept; a later row with the same key, in the same file or a later drop, is an
  `exact_duplicate` when its raw values equal the kept row's, otherwise a
  `duplicate_event_id`.

  Entities (supersede=true: subscribers, products, campaigns) may change. Within one batch
  the same rule holds; across batches, the latest batch's kept row is the record in force
  and the kept rows of earlier batches are `is_superseded` (not quarantined: they were
  valid, and the record has a newer version). A later row that is quarantined supersedes
  nothing.

  Returns every input column except pre_dedup_issue, plus `reason_code` (null = the row
  passed every check) and `is_superseded` (always false for events). The row is in the
  validated layer when reason_code is null and it is not superseded.
-#}
{% macro final_verdict(relation, key_column, supersede=false) -%}
    {%- set partition = key_column ~ ", pre_dedup_issue is null" ~ (", landing_batch" if supersede else "") -%}
    {%- set order = "order by " ~ landing_batch_order() ~ ", source_row_key" -%}
    select
        * exclude (pre_dedup_issue, _key_rank, _kept_raw_values, _latest_batch),
        coalesce(
            pre_dedup_issue,
            case
                when _key_rank = 1 then null
                when raw_values = _kept_raw_values then 'exact_duplicate'
                else 'duplicate_event_id'
            end
        ) as reason_code,
        {%- if supersede %}
        coalesce(
            pre_dedup_issue is null and _key_rank = 1 and {{ landing_batch_order() }} < _latest_batch,
            false
        ) as is_superseded
        {%- else %}
        false as is_superseded
        {%- endif %}
    from (
        select
            *,
            row_number() over (partition by {{ partition }} {{ order }}) as _key_rank,
            first_value(raw_values) over (partition by {{ partition }} {{ order }}) as _kept_raw_values,
            {%- if supersede %}
            max({{ landing_batch_order() }}) over (partition by {{ key_column }}, pre_dedup_issue is null) as _latest_batch
            {%- else %}
            null as _latest_batch
            {%- endif %}
        from {{ relation }}
    )
{%- endmacro %}


{#-
  Final verdict for a file whose rows point at a subscriber of either system through
  (source_system, source_subscriber_id): consent_events and suppressions. A row whose
  subscriber is not a validated CRM/ESP subscriber is `unknown_subscriber`.
-#}
{% macro verdict_for_source_subscriber_rows(staged_model, key_column) -%}
with staged as (
    select * from {{ ref(staged_model) }}
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

{{ final_verdict('checked', key_column) }}
{%- endmacro %}


{#-
  The quarantined rows of several classified models, in the quarantine's columns.
  `classified` is a list of (model name, key column) pairs.
-#}
{% macro quarantined_rows(classified) -%}
{%- for model_name, key_column in classified %}
select
    source_file,
    landing_batch,
    source_row_key,
    {{ key_column }} as source_record_id,
    reason_code,
    raw_values
from {{ ref(model_name) }}
where reason_code is not null
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{%- endmacro %}
