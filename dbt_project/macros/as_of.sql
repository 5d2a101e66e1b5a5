{#-
  The pipeline's "as of" moment as a UTC `timestamp`, one value for every model of the run
  (unlike current_timestamp). In order:
  1. the `as_of` var, when given (`dbt build --vars '{"as_of": "..."}'`, the unit tests);
  2. the row of the table named by the var `as_of_relation` (ml.warehouse_as_of), which the
     orchestration writes before each build: the partition day's last second. It is read
     when the model runs, not passed as a var, because dbt re-parses the whole project
     whenever a var changes, and a var that changes every day made every daily build pay
     for a full parse;
  3. the moment this dbt invocation started.
  Strings with an offset ('...Z', '+02:00') are converted to UTC; bare ones are read as UTC
  (the profile pins the session TimeZone to UTC).
-#}
{% macro as_of() -%}
    {%- set configured = var('as_of', none) -%}
    {%- if configured is none or (configured | string | trim) == '' -%}
        {%- set configured = as_of_written_by_the_orchestration() -%}
    {%- endif -%}
    {%- if configured is none -%}
        {%- set configured = run_started_at.strftime('%Y-%m-%d %H:%M:%S') -%}
    {%- endif -%}
    cast(cast('{{ configured | string | trim | replace("'", "''") }}' as timestamptz) as timestamp)
{%- endmacro %}

{#- The as_of in `var('as_of_relation')`, or none (at parse time, or when the table is absent). -#}
{% macro as_of_written_by_the_orchestration() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set schema, identifier = var('as_of_relation').split('.') -%}
    {%- set relation = adapter.get_relation(database=target.database, schema=schema, identifier=identifier) -%}
    {%- if relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set rows = run_query("select strftime(max(as_of), '%Y-%m-%d %H:%M:%S') from " ~ relation).rows -%}
    {{ return(rows[0][0] if rows and rows[0][0] is not none else none) }}
{%- endmacro %}
