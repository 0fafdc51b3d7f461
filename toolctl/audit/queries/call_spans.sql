-- call_spans: tool spans (OTLP) carrying one call id, oldest first.
-- Parameters: $call_id. Output: span id, trace id, name, start, duration, status, attempt.
SELECT trace_id, span_id, name, make_timestamp(start_ns // 1000) AS ts,
       (end_ns - start_ns) / 1e6 AS duration_ms, status, status_code, attempt, error_code,
       http_status, tool
FROM spans
WHERE call_id = $call_id
ORDER BY start_ns, span_id
