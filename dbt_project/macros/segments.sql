{#-
  Segments that evaluations break results down by (the promotion gate, model cards,
  marts.subscriber_profiles). Values: ml/vocabulary.py LIFECYCLE_STAGES and TENURE_BANDS,
  the dbt vars lifecycle_stages and tenure_bands.
-#}

{#- Where a person is in their relationship with the shop at a moment, from days since
    their first signup and days since their last open, click and order (null when none):
    new (signed up < 30 days before), never_engaged (no open, click or order ever), active
    (the latest one <= 30 days before), at_risk (<= 90 days), lapsed. -#}
{% macro lifecycle_stage(tenure_days, days_since_last_open, days_since_last_click, days_since_last_order) -%}
    {%- set since_last_activity -%}
        least({{ days_since_last_open }}, {{ days_since_last_click }}, {{ days_since_last_order }})
    {%- endset -%}
    case
        when {{ tenure_days }} < 30 then 'new'
        when {{ since_last_activity }} is null then 'never_engaged'
        when {{ since_last_activity }} <= 30 then 'active'
        when {{ since_last_activity }} <= 90 then 'at_risk'
        else 'lapsed'
    end
{%- endmacro %}

{#- Tenure in bands of the vars tenure_bands: under 90 days, under a year, under two, longer. -#}
{% macro tenure_band(tenure_days) -%}
    case
        when {{ tenure_days }} < 90 then '0-89d'
        when {{ tenure_days }} < 365 then '90-364d'
        when {{ tenure_days }} < 730 then '365-729d'
        else '730d+'
    end
{%- endmacro %}

{#- Age band (var age_bands) at a moment, from a birth year (null: 'unknown'). Year
    difference only: exports hold the year, not the birthday. Ages outside 18..110 are
    implausible exports and read as 'unknown'. -#}
{% macro age_band(birth_year, at) -%}
    {%- set age -%}(year({{ at }}) - {{ birth_year }}){%- endset -%}
    case
        when {{ birth_year }} is null or {{ age }} < 18 or {{ age }} > 110 then 'unknown'
        when {{ age }} < 25 then '18-24'
        when {{ age }} < 35 then '25-34'
        when {{ age }} < 45 then '35-44'
        when {{ age }} < 55 then '45-54'
        when {{ age }} < 65 then '55-64'
        else '65+'
    end
{%- endmacro %}
