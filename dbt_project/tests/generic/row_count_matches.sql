{#- Fails when `model` and `compare_model` have different row counts. -#}
{% test row_count_matches(model, compare_model) %}
select model_rows, compare_rows
from
    (select count(*) as model_rows from {{ model }}),
    (select count(*) as compare_rows from {{ compare_model }})
where model_rows <> compare_rows
{% endtest %}
