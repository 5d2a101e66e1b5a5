{#-
  Predicate: the consent_history row `history` (a table alias) is the one in force at `at`.

  Rows of one subscriber tile time as [valid_from, valid_to), so at most one row matches:
      valid_from <= at and (valid_to is null or valid_to > at)

  strictly_before=true asks "what did we know from events strictly before `at`" (used by
  the point-in-time features): a change recorded exactly at `at` is not known yet, so the
  windows become (valid_from, valid_to]:
      valid_from < at and (valid_to is null or valid_to >= at)

  Example: where {{ consent_valid_at('h', "timestamp '2024-05-01'") }}
-#}
{% macro consent_valid_at(history, at, strictly_before=false) -%}
    {%- if strictly_before -%}
    ({{ history }}.valid_from < {{ at }} and ({{ history }}.valid_to is null or {{ history }}.valid_to >= {{ at }}))
    {%- else -%}
    ({{ history }}.valid_from <= {{ at }} and ({{ history }}.valid_to is null or {{ history }}.valid_to > {{ at }}))
    {%- endif -%}
{%- endmacro %}
