{#-
  The pipeline's "as of" moment as a UTC `timestamp`: the `as_of` var (the export's
  extracted_at, passed by the orchestration) or, when unset, the moment this dbt invocation
  started — one value for every model of the run, unlike current_timestamp.
  Strings with an offset ('...Z', '+02:00') are converted to UTC; bare ones are read as UTC
  (the profile pins the session TimeZone to UTC).
-#}
{% macro as_of() -%}
    {%- set configured = var('as_of', none) -%}
    {%- if configured is none or (configured | string | trim) == '' -%}
        {%- set configured = run_started_at.strftime('%Y-%m-%d %H:%M:%S') -%}
    {%- endif -%}
    cast(cast('{{ configured | string | trim | replace("'", "''") }}' as timestamptz) as timestamp)
{%- endmacro %}
