-- call_spans: the tool spans (OTLP) of one tool call (0006 index on call_id), oldest first.
-- Parameters: $call_id. Output: the span as a tool-call row (span_call_columns.sql), plus
-- the span's name, duration_ms and status_code.
WITH hit AS MATERIALIZED (
    SELECT * FROM spans WHERE call_id = $call_id
)
SELECT {span_call_columns}, name, (end_ns - start_ns) / 1e6 AS duration_ms, status_code
FROM hit
WHERE tool_rule IS NOT NULL
ORDER BY start_ns, span_id
