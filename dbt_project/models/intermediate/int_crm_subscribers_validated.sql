{#- The valid crm_subscribers rows: the staged rows whose final verdict is "keep". -#}
{{ config(materialized='view', database='pii') }}

select * exclude (row_issue, reason_code)
from {{ ref('int_crm_subscribers_classified') }}
where reason_code is null
