{#- Fails with the model's rows: for models whose every row is a problem to stop on. -#}
{% test has_no_rows(model) %}
select * from {{ model }}
{% endtest %}
