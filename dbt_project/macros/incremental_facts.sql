{#-
  The incremental facts (fct_sends, fct_email_events, fct_orders) hold exactly the valid
  rows of the run's landing batches, keyed by their subscriber's current subscriber_key,
  while a daily run reads little more than the new day:

  1. pre-hook delete_stale_fact_rows: rows whose source row is no longer valid as of the run
     (a re-run of an earlier day, whose later drops are not read; a row a newer drop made
     invalid), or whose subscriber now has another subscriber_key (a drop updated the
     subscriber's email), are deleted;
  2. the model reads fact_rows_to_refresh: rows at or after the newest loaded timestamp
     minus var fact_lookback_days, and every valid row not loaded yet (a drop's late
     arrivals, the rows step 1 deleted, an earlier day's rows on a re-run), and
     delete+inserts them on the key.

  Other changes to a loaded row outside the lookback (a drop changing a campaign's
  category, say) need `dbt build --full-refresh --select fct_sends fct_email_events fct_orders`.
-#}

{#- Predicate on `alias` (a validated row): it must be (re)loaded by this incremental run. -#}
{% macro fact_rows_to_refresh(alias, key_column, timestamp_column) -%}
    (
        {{ alias }}.{{ timestamp_column }} >= (
            select coalesce(max({{ timestamp_column }}), timestamp '1900-01-01') - to_days({{ var('fact_lookback_days') | int }})
            from {{ this }}
        )
        or not exists (select 1 from {{ this }} as _loaded where _loaded.{{ key_column }} = {{ alias }}.{{ key_column }})
    )
{%- endmacro %}

{#- Pre-hook: delete the loaded rows that no valid source row with the same subscriber_key
    backs any more. `id_column` is the subscriber id of `source_system` on the validated row. -#}
{% macro delete_stale_fact_rows(key_column, validated_model, source_system, id_column) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as _loaded
    where not exists (
        select 1
        from {{ ref(validated_model) }} as _valid
        inner join {{ ref('subscriber_identity_crosswalk') }} as _crosswalk
            on _crosswalk.source_system = '{{ source_system }}'
            and _crosswalk.source_id = _valid.{{ id_column }}
        where _valid.{{ key_column }} = _loaded.{{ key_column }}
            and _crosswalk.subscriber_key = _loaded.subscriber_key
    )
    {%- endif -%}
{%- endmacro %}
