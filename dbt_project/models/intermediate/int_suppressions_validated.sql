{#- The valid suppressions rows: the staged rows whose final verdict is "keep"
    (events are never superseded: is_superseded is always false here). -#}
-- depends_on: {{ ref('int_landing_files_judged') }}
{{ config(materialized='view') }}

select * exclude (row_issue, reason_code, is_superseded)
from {{ ref('int_suppressions_classified') }}
where reason_code is null and not is_superseded
