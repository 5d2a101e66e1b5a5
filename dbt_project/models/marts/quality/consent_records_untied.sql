{#-
  Quarantined rows that may revoke consent (suppressions, revoking email events, consent
  events whose status is not a clean `subscribed`) and match no subscriber row of either
  system, even ignoring case and through the email event's send. Nobody can be excluded
  for them, so a blocking check stops the run while any exist. Names the row, never raw
  values. No PII.
-#}
select distinct
    source_file,
    landing_batch,
    source_row_key,
    source_record_id,
    record_kind,
    reason_code
from {{ ref('int_consent_records_quarantined') }}
where not is_tied and may_revoke
