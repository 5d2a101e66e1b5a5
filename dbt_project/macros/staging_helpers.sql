{#- Building blocks shared by the staging models. -#}

{#-
  JSON object of the raw contract columns of `relation_alias`, in contract order. A text
  value longer than its documented maximum is cut to its first 64 characters plus a note
  of its length, so an oversized value never reaches the quarantine or its checks whole.
-#}
{% macro raw_values_json(relation_alias, columns) -%}
    to_json(struct_pack(
        {%- for column in columns %}
        {%- set value = relation_alias ~ '."' ~ column ~ '"' %}
        {%- if column in var('landing_numeric_columns') %}
        "{{ column }}" := {{ value }}{{ "," if not loop.last }}
        {%- else %}
        "{{ column }}" := case
            when length(cast({{ value }} as varchar)) > {{ max_text_length(column) }}
            then left(cast({{ value }} as varchar), 64) || '... [cut: ' || length(cast({{ value }} as varchar)) || ' characters]'
            else cast({{ value }} as varchar)
        end{{ "," if not loop.last }}
        {%- endif %}
        {%- endfor %}
    ))
{%- endmacro %}

{#- True when any of the given raw columns is null or blank. -#}
{% macro any_blank(relation_alias, columns) -%}
    (
    {%- for column in columns %}
        {{ is_blank(relation_alias ~ '."' ~ column ~ '"') }}{{ " or" if not loop.last }}
    {%- endfor %}
    )
{%- endmacro %}

{#- The unparseable/future checks for one raw timestamp column (blank is caught earlier). -#}
{% macro timestamp_checks(raw_column) -%}
    {%- set parsed = parse_utc_timestamp(raw_column) -%}
    {{ return({
        'unparseable_timestamp': '(' ~ parsed ~ ') is null',
        'future_timestamp': '(' ~ parsed ~ ') > ' ~ as_of(),
    }) }}
{%- endmacro %}

{#- The rows of `rows_sql` with every one of `columns` (the optional landing columns of its
    file: ml/landing/contract.py OPTIONAL_COLUMNS, var landing_optional_columns) present,
    null where the file lacks them. UNION ALL BY NAME with an empty row set that has exactly
    those columns: the result has the union of both sides' columns, so the query binds
    whether every file, some files (union_by_name over the drops) or none carry a column,
    it is decided when the query runs (not when dbt compiles), and it costs nothing per row. -#}
{% macro with_optional_columns(rows_sql, columns) -%}
    select * from ({{ rows_sql }})
    union all by name
    select
        {%- for column in columns %}
        cast(null as varchar) as "{{ column }}"{{ "," if not loop.last }}
        {%- endfor %}
    where false
{%- endmacro %}
