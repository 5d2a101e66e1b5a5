{#- The valid esp_subscribers rows: the staged rows whose final verdict is "keep"
    (and, for a record, the version in force: not superseded by a later drop). -#}
{{ config(materialized='view', database='pii') }}

select * exclude (row_issue, reason_code, is_superseded)
from {{ ref('int_esp_subscribers_classified') }}
where reason_code is null and not is_superseded
