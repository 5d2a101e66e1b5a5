{#- The valid campaigns rows: the staged rows whose final verdict is "keep". -#}
{{ config(materialized='view') }}

select * exclude (row_issue, reason_code)
from {{ ref('int_campaigns_classified') }}
where reason_code is null
