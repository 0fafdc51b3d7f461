-- trace_events: every stored event sharing one trace id (ART index on trace_id).
-- Parameters: $trace_id (lower-case). Output: as call_events, oldest first.
WITH hit AS MATERIALIZED (
    SELECT * FROM events WHERE trace_id = $trace_id
)
SELECT event_id, ts, tool, status, latency_ms, trace_id, span_id, call_id, attempt, stage,
       idempotency_key, timeout_ms, error_code, http_status, retryable, message, data
FROM hit
ORDER BY ts, attempt, event_id
