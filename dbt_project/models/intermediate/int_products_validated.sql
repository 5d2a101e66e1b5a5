{#- The valid products rows: the staged rows whose final verdict is "keep"
    (and, for a record, the version in force: not superseded by a later drop). -#}
-- depends_on: {{ ref('int_landing_files_judged') }}
{{ config(materialized='view') }}

select * exclude (row_issue, reason_code, is_superseded)
from {{ ref('int_products_classified') }}
where reason_code is null and not is_superseded
