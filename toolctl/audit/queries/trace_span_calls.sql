-- trace_span_calls: the tool spans of one trace as tool-call rows (0006 index on trace_id).
-- Parameters: $trace_id (lower-case). Output: span_call_columns.sql's columns, oldest first.
WITH hit AS MATERIALIZED (
    SELECT * FROM spans WHERE trace_id = $trace_id
)
SELECT {span_call_columns}
FROM hit
WHERE tool_rule IS NOT NULL
ORDER BY start_ns, span_id
