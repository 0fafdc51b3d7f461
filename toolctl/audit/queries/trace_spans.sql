-- trace_spans: every stored span of one trace, in start order.
-- Parameters: $trace_id (lower-case hex). Output: span columns the timeline shows.
SELECT span_id, parent_span_id, name, kind, start_ns, end_ns, (end_ns - start_ns) / 1e6 AS duration_ms,
       status_code, status_message, service, tool, status, call_id, attempt, error_code,
       http_status, attributes, events
FROM spans
WHERE trace_id = $trace_id
ORDER BY start_ns, span_id
