{#- Helpers that type raw landing strings; every one yields null instead of failing. -#}

{#- Trimmed text, null when null or blank. -#}
{% macro clean_text(column) -%}
    nullif(trim(cast({{ column }} as varchar)), '')
{%- endmacro %}

{#- True when the raw value is null or blank (the missing_required_field test). -#}
{% macro is_blank(column) -%}
    ({{ clean_text(column) }} is null)
{%- endmacro %}

{#-
  A contract timestamp ('YYYY-MM-DD HH:MM:SS', optional 'T' separator, fractional seconds
  and trailing 'Z', all UTC) as a `timestamp`; null when it is anything else, including
  impossible dates such as 2024-02-30.
-#}
{% macro parse_utc_timestamp(column) -%}
    case
        when regexp_full_match(
            trim(cast({{ column }} as varchar)),
            '\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z?'
        )
        then try_cast(
            replace(rtrim(trim(cast({{ column }} as varchar)), 'Z'), 'T', ' ') as timestamp
        )
    end
{%- endmacro %}

{#- True when a raw email does not look like local@domain.tld after trimming. -#}
{% macro is_invalid_email(column) -%}
    (not regexp_full_match(trim(cast({{ column }} as varchar)), '[^@\s]+@[^@\s]+\.[^@\s.]+'))
{%- endmacro %}

{#- True when the value is not a time zone name known to DuckDB's ICU (IANA names). -#}
{% macro is_invalid_timezone(column) -%}
    ({{ clean_text(column) }} not in (select name from pg_timezone_names()))
{%- endmacro %}

{#- A SQL list literal of strings, e.g. for `in (...)`. -#}
{% macro sql_list(values) -%}
    ({%- for value in values -%}'{{ value }}'{{ ", " if not loop.last }}{%- endfor -%})
{%- endmacro %}

{#- Fractional days from `start_at` to `end_at` (both timestamps), as double. -#}
{% macro days_between(start_at, end_at) -%}
    ((epoch({{ end_at }}) - epoch({{ start_at }})) / 86400.0)
{%- endmacro %}
