{#-
  SQL twin of ml.privacy.normalise_email: strip surrounding space of every kind (the
  surrounding_space_class macro), lower-case, blank -> null. The key itself is computed by
  the subscriber_key() UDF, which calls the Python function, so keys always match Python.
-#}
{% macro normalise_email(column) -%}
    nullif(lower(regexp_replace({{ column }}, '^{{ surrounding_space_class() }}+|{{ surrounding_space_class() }}+$', '', 'g')), '')
{%- endmacro %}
