-- trace_span_calls: the tool spans of one trace as tool-call rows (0006 index on trace_id).
-- Parameters: $trace_id (lower-case). Output: span_call_columns.sql's columns, oldest first.
-- A span with an event of the same span id is that event's attempt: left out (migration
-- 0007); the span itself is still in the trace's tree (trace_spans.sql).
WITH hit AS MATERIALIZED (
    SELECT * FROM spans WHERE trace_id = $trace_id
), trace_events AS MATERIALIZED (
    SELECT trace_id, span_id FROM events WHERE trace_id = $trace_id
)
SELECT {span_call_columns}
FROM (SELECT s.* FROM hit s
      ANTI JOIN trace_events e ON e.trace_id = s.trace_id AND e.span_id = s.span_id
      WHERE s.tool_rule IS NOT NULL)
ORDER BY start_ns, span_id
