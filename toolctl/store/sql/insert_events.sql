-- insert_events: store the valid rows of `_parsed`; the first line of an event_id wins.
-- Parameters: $batch_id, $source. Returns the number of rows inserted. A stored event_id
-- makes the statement fail unless writer.SKIP_STORED is appended. Sorted by ts for zone maps.
-- writer.PARSED_EVENT_HASHES selects the same rows (for the ledger digest): keep the two equal.
INSERT INTO events
SELECT event_id, ts, tool, status, latency_ms, schema_version, trace_id, span_id, call_id,
       session_id, tenant, user_id, service, version, stage, attempt, idempotency_key,
       timeout_ms, error_code, message, retryable, http_status, confidence, args, data, extra,
       $batch_id, $source, line_no
FROM _parsed
WHERE reason IS NULL
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY line_no) = 1
ORDER BY ts
