{#- Helpers that type raw landing strings; every one yields null instead of failing. -#}

{#-
  Regex class of the characters stripped from both ends of every landing value: ASCII
  whitespace and the other C0 separators, NEL, every Unicode space separator (NBSP, em
  space, ...), zero-width spaces and the byte-order mark. The twin in Python is
  ml.privacy.SURROUNDING_SPACE; a test compares them character by character.
-#}
{% macro surrounding_space_class() -%}
[\s\x{0B}\x{1C}-\x{1F}\x{85}\p{Z}\x{200B}-\x{200D}\x{2060}\x{FEFF}]
{%- endmacro %}

{#- Text without surrounding space of any kind, null when null or blank. -#}
{% macro clean_text(column) -%}
    nullif(regexp_replace(cast({{ column }} as varchar), '^{{ surrounding_space_class() }}+|{{ surrounding_space_class() }}+$', '', 'g'), '')
{%- endmacro %}

{#-
  A code value (status, reason, event type, system) in its canonical spelling: clean text,
  lower case, runs of spaces, hyphens and underscores as one underscore. `Hard_Bounce`,
  `hard bounce` and ` HARD-BOUNCE ` all become `hard_bounce`.
-#}
{% macro clean_code(column) -%}
    nullif(regexp_replace(lower({{ clean_text(column) }}), '[\s\p{Z}_-]+', '_', 'g'), '')
{%- endmacro %}

{#- True when the raw value is null or blank (the missing_required_field test). -#}
{% macro is_blank(column) -%}
    ({{ clean_text(column) }} is null)
{%- endmacro %}

{#-
  A contract timestamp as a UTC `timestamp`: ISO-8601 'YYYY-MM-DD HH:MM:SS' (a 'T'
  separator and fractional seconds accepted), either in UTC (no suffix, or 'Z') or with
  its offset from UTC ('+01:00', '-0530', '+01'), which is converted to UTC. Null when it
  is anything else, including impossible dates such as 2024-02-30. The offset form goes
  through `timestamptz` and `timezone('UTC', ...)`, so the session's time zone never
  enters; a plain cast to `timestamp` would drop the offset silently.
-#}
{% macro parse_utc_timestamp(column) -%}
    case
        when regexp_full_match(
            {{ clean_text(column) }},
            '{{ utc_timestamp_pattern() }}'
        )
        then try_cast(
            replace(rtrim({{ clean_text(column) }}, 'Z'), 'T', ' ') as timestamp
        )
        when regexp_full_match(
            {{ clean_text(column) }},
            '{{ offset_timestamp_pattern() }}'
        )
        then timezone('UTC', try_cast(replace({{ clean_text(column) }}, 'T', ' ') as timestamptz))
    end
{%- endmacro %}

{#- The accepted timestamp shapes (var timestamp_patterns; ml.landing.contract.TIMESTAMP_PATTERNS is the same). -#}
{% macro utc_timestamp_pattern() -%}
{{ var('timestamp_patterns')['utc'] }}
{%- endmacro %}

{% macro offset_timestamp_pattern() -%}
{{ var('timestamp_patterns')['with_offset'] }}
{%- endmacro %}

{#-
  Best-effort reading of a timestamp that broke the contract, used only to decide how long
  a quarantined consent record keeps its person ineligible (never to accept the row):
  the contract format; ISO-8601 with an offset or without seconds (converted to UTC); or
  epoch seconds (9-10 digits) or milliseconds (12-13 digits). Anything else is null, and
  a null time is never superseded.
-#}
{% macro lenient_utc_timestamp(column) -%}
    coalesce(
        {{ parse_utc_timestamp(column) }},
        case when regexp_full_match({{ clean_text(column) }}, '\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?')
            then cast(try_cast(replace({{ clean_text(column) }}, 'T', ' ') as timestamptz) as timestamp) end,
        case when regexp_full_match({{ clean_text(column) }}, '\d{9,10}')
            then cast(to_timestamp(cast({{ clean_text(column) }} as bigint)) as timestamp) end,
        case when regexp_full_match({{ clean_text(column) }}, '\d{12,13}')
            then cast(to_timestamp(cast({{ clean_text(column) }} as bigint) / 1000.0) as timestamp) end
    )
{%- endmacro %}

{#- True when a raw email does not look like local@domain.tld after cleaning. -#}
{% macro is_invalid_email(column) -%}
    (not coalesce(regexp_full_match({{ clean_text(column) }}, '[^@\s]+@[^@\s]+\.[^@\s.]+'), false))
{%- endmacro %}

{#- True when the value is not a time zone name known to DuckDB's ICU (IANA names). -#}
{% macro is_invalid_timezone(column) -%}
    ({{ clean_text(column) }} not in (select name from pg_timezone_names()))
{%- endmacro %}

{#- The longest accepted length of landing text column `column` (var max_text_length). -#}
{% macro max_text_length(column) -%}
    {%- set limits = var('max_text_length') -%}
    {{ return(limits.get(column, limits['default'])) }}
{%- endmacro %}

{#- True when any of the given raw columns is longer than its documented maximum. -#}
{% macro any_too_long(relation_alias, columns) -%}
    (
    {%- for column in columns %}
        coalesce(length(cast({{ relation_alias }}."{{ column }}" as varchar)) > {{ max_text_length(column) }}, false){{ " or" if not loop.last }}
    {%- endfor %}
    )
{%- endmacro %}

{#- A SQL list literal of strings, e.g. for `in (...)`. -#}
{% macro sql_list(values) -%}
    ({%- for value in values -%}'{{ value }}'{{ ", " if not loop.last }}{%- endfor -%})
{%- endmacro %}

{#- Fractional days from `start_at` to `end_at` (both timestamps), as double. Dispatched by
    adapter (docs/scaling.md): DuckDB's here; another warehouse adds `<adapter>__days_between`. -#}
{% macro days_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('days_between')(start_at, end_at)) }}
{%- endmacro %}

{% macro duckdb__days_between(start_at, end_at) -%}
    ((epoch({{ end_at }}) - epoch({{ start_at }})) / 86400.0)
{%- endmacro %}

{% macro default__days_between(start_at, end_at) -%}
    {{ exceptions.raise_compiler_error(
        "days_between has no implementation for the adapter '" ~ adapter.type() ~ "'. Fix: add a macro "
        ~ adapter.type() ~ "__days_between(start_at, end_at) to dbt_project/macros/parsing.sql (docs/scaling.md)."
    ) }}
{%- endmacro %}
