{#- Source id -> subscriber_key, for every valid CRM and ESP subscriber record. No PII. -#}
select
    source_system,
    source_id,
    subscriber_key
from {{ ref('int_subscriber_identities_resolved') }}
