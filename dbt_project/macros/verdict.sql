{#-
  Final per-row verdict for a landing file, after the row-local and relational checks.

  `relation` must have source_row_key, raw_values, the key column and `pre_dedup_issue`
  (the first row-local or relational reason code, or null). Among the rows that passed
  those checks, the first row (lowest source_row_key) per key is kept; a later row with the
  same key is an `exact_duplicate` when its raw values equal the kept row's, otherwise a
  `duplicate_event_id`. Returns every input column except pre_dedup_issue, plus
  `reason_code` (null = the row is valid).
-#}
{% macro final_verdict(relation, key_column) -%}
    select
        * exclude (pre_dedup_issue, _key_rank, _kept_raw_values),
        coalesce(
            pre_dedup_issue,
            case
                when _key_rank = 1 then null
                when raw_values = _kept_raw_values then 'exact_duplicate'
                else 'duplicate_event_id'
            end
        ) as reason_code
    from (
        select
            *,
            row_number() over (
                partition by {{ key_column }}, pre_dedup_issue is null order by source_row_key
            ) as _key_rank,
            first_value(raw_values) over (
                partition by {{ key_column }}, pre_dedup_issue is null order by source_row_key
            ) as _kept_raw_values
        from {{ relation }}
    )
{%- endmacro %}
