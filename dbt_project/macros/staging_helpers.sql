{#- Building blocks shared by the staging models. -#}

{#- JSON object of the raw contract columns of `relation_alias`, in contract order. -#}
{% macro raw_values_json(relation_alias, columns) -%}
    to_json(struct_pack(
        {%- for column in columns %}
        "{{ column }}" := {{ relation_alias }}."{{ column }}"{{ "," if not loop.last }}
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
