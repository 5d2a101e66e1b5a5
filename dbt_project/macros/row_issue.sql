{#-
  The first row-local reason code that applies, in the contract's priority order
  (var `reason_codes`), or null.

  checks: a dict {reason_code: sql_condition}. The caller decides which checks apply to
  its file; this macro alone decides their order, so every staging model agrees with
  docs/data_contract.md ("the first code in this table's order is recorded").
-#}
{% macro row_issue(checks) -%}
    {%- set known = var('reason_codes') -%}
    {%- for code in checks -%}
        {%- if code not in known -%}
            {{ exceptions.raise_compiler_error("row_issue: unknown reason code " ~ code) }}
        {%- endif -%}
    {%- endfor -%}
    case
    {%- for code in known if code in checks %}
        when {{ checks[code] }} then '{{ code }}'
    {%- endfor %}
    end
{%- endmacro %}
