-- call_spans: the tool spans (OTLP) of one tool call (0006 index on call_id), oldest first.
-- Parameters: $call_id. Output: the span as a tool-call row (span_call_columns.sql), plus
-- the span's name, duration_ms and status_code. A span with an event that names it (same
-- trace_id and span_id) is that event's attempt: left out (migration 0007), whatever call id
-- the event carries; such events are looked up by the spans' trace ids (0004 index). $call_id
-- keeps that list from being empty, which DuckDB would plan as a sequential scan of events
-- (an event whose trace id equals it is harmless: the anti join matches both ids).
WITH hit AS MATERIALIZED (
    SELECT * FROM spans WHERE call_id = $call_id
), call_events AS MATERIALIZED (
    SELECT trace_id, span_id FROM events WHERE trace_id IN (SELECT trace_id FROM hit UNION ALL SELECT $call_id)
)
SELECT {span_call_columns}, name, (end_ns - start_ns) / 1e6 AS duration_ms, status_code
FROM (SELECT s.* FROM hit s
      ANTI JOIN call_events e ON e.trace_id = s.trace_id AND e.span_id = s.span_id
      WHERE s.tool_rule IS NOT NULL)
ORDER BY start_ns, span_id
