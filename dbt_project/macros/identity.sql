{#-
  SQL twin of ml.privacy.normalise_email: trim surrounding whitespace, lower-case, blank ->
  null. The key itself is computed by the subscriber_key() UDF, which calls the Python
  function, so keys always match Python even where the two normalisations could differ.
-#}
{% macro normalise_email(column) -%}
    nullif(lower(regexp_replace({{ column }}, '^\s+|\s+$', '', 'g')), '')
{%- endmacro %}
