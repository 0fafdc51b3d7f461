-- trace_spans: every stored span of one trace, in start order (0006 index on trace_id).
-- Parameters: $trace_id (lower-case hex). Output: span columns the timeline shows.
WITH hit AS MATERIALIZED (
    SELECT * FROM spans WHERE trace_id = $trace_id
)
SELECT span_id, parent_span_id, name, kind, start_ns, end_ns, (end_ns - start_ns) / 1e6 AS duration_ms,
       status_code, status_message, service, tool, status, call_id, attempt, error_code,
       http_status, attributes, events
FROM hit
ORDER BY start_ns, span_id
