{#-
  SQL twin of ml.privacy.normalise_email: strip surrounding space of every kind (the
  surrounding_space_class macro), lower-case, blank -> null. The key itself is computed by
  the subscriber_key() UDF, which calls the Python function, so keys always match Python.
-#}
{% macro normalise_email(column) -%}
    nullif(lower(regexp_replace({{ column }}, '^{{ surrounding_space_class() }}+|{{ surrounding_space_class() }}+$', '', 'g')), '')
{%- endmacro %}

{#-
  Join condition, failing closed: the consent row `row` (source_system,
  source_subscriber_id) names the subscriber row `record` of
  int_subscriber_records_keyed. Ids match ignoring case; an unreadable system (null, or
  neither crm nor esp) matches either system. Used to tie quarantined consent rows and
  erasures to people: matching too much only excludes or erases more.
-#}
{% macro names_subscriber_record(row, record) -%}
    ({{ record }}.source_id_folded = upper({{ row }}.source_subscriber_id)
     and ({{ row }}.source_system = {{ record }}.source_system
          or {{ row }}.source_system is null
          or {{ row }}.source_system not in ('crm', 'esp')))
{%- endmacro %}
