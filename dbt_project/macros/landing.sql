{#-
  Landing batches (docs/data_contract.md, "Daily drops"). The sources read every file named
  `<file>.parquet` below the landing folder (`<landing>/**/<file>.parquet`: a glob that
  always matches, because the initial export is required, whether or not any drop exists
  yet or holds this file), with `filename`, `file_row_number` and `union_by_name`.

  landing_batch is 'initial' for the initial export at the top of the folder and the drop's
  date 'YYYY-MM-DD' for `drops/<YYYY-MM-DD>/<file>.parquet`. A landed row is identified by
  (source_file, landing_batch, source_row_key = file_row_number).
  ml.landing.contract.check_landing_folder refuses every other file of that name (a
  misnamed drop folder, a stray copy) before dbt runs; were one read anyway, it would count
  as 'initial' and fail the staging models' unique (landing_batch, source_row_key) tests.
-#}

{#- The rows of a landing source whose batch the run may see: the initial export and every
    drop dated on or before as_of's day, each with its landing_batch. -#}
{% macro landed_rows(relation, source_file) -%}
    {%- set drop_path = "'/drops/(\\d{4}-\\d{2}-\\d{2})/" ~ source_file ~ "\\.parquet$'" -%}
    select *
    from (
        select
            _landed.*,
            coalesce(nullif(regexp_extract(_landed.filename, {{ drop_path }}, 1), ''), 'initial') as landing_batch
        from {{ relation }} as _landed
    )
    where landing_batch = 'initial' or landing_batch <= strftime({{ as_of() }}, '%Y-%m-%d')
{%- endmacro %}

{#- A sort key of landing_batch: the initial export first, then drops by date. -#}
{% macro landing_batch_order(column='landing_batch') -%}
    (case when {{ column }} = 'initial' then '' else {{ column }} end)
{%- endmacro %}
