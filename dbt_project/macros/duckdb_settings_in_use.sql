{#- The DuckDB settings dbt's connection runs with, as one line of JSON on stdout:
    `dbt run-operation duckdb_settings_in_use` (tests/dbt/test_duckdb_settings.py pins them). -#}
{% macro duckdb_settings_in_use() %}
    {%- set names = ['memory_limit', 'threads', 'temp_directory'] -%}
    {%- set columns = [] -%}
    {%- for name in names %}{% do columns.append("current_setting('" ~ name ~ "') as " ~ name) %}{% endfor -%}
    {%- set row = run_query('select ' ~ columns | join(', ')).rows[0] -%}
    {%- set found = {} -%}
    {%- for name in names %}{% do found.update({name: row[name] | string}) %}{% endfor -%}
    {{ print('duckdb_settings_in_use ' ~ tojson(found)) }}
{% endmacro %}
