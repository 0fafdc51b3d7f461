-- call_events: every stored event of one tool call (ART index on call_id), in order.
-- Parameters: $call_id. Output: the event columns a timeline shows, oldest first,
-- stages in pipeline order within an attempt.
WITH hit AS MATERIALIZED (
    SELECT * FROM events WHERE call_id = $call_id
)
SELECT event_id, ts, tool, status, latency_ms, trace_id, span_id, call_id, attempt, stage,
       idempotency_key, timeout_ms, error_code, http_status, retryable, message, data
FROM hit
ORDER BY attempt, CASE stage WHEN 'validate' THEN 1 WHEN 'authorize' THEN 2 WHEN 'execute' THEN 3 ELSE 4 END,
         ts, event_id
