{#- The valid suppressions rows: the staged rows whose final verdict is "keep". -#}
{{ config(materialized='view') }}

select * exclude (row_issue, reason_code)
from {{ ref('int_suppressions_classified') }}
where reason_code is null
