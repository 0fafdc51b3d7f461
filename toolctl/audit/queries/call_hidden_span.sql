-- call_hidden_span: a tool span of call $call_id that a JSON line records as its own attempt
-- (same trace_id and span_id, migration 0007), with that line's event id and call id: what
-- `audit call` names when the call has no attempt of its own. Not-found path only.
-- Events are looked up by the spans' trace ids (0004 index; $call_id keeps the list non-empty,
-- see call_spans.sql). Parameters: $call_id. Output: trace_id, span_id, event_id, call_id.
WITH hit AS MATERIALIZED (
    SELECT trace_id, span_id FROM spans WHERE call_id = $call_id AND tool_rule IS NOT NULL
), named AS MATERIALIZED (
    SELECT trace_id, span_id, event_id, call_id, ts FROM events
    WHERE trace_id IN (SELECT trace_id FROM hit UNION ALL SELECT $call_id)
)
SELECT h.trace_id, h.span_id, e.event_id, e.call_id
FROM hit h
JOIN named e ON e.trace_id = h.trace_id AND e.span_id = h.span_id
ORDER BY e.ts, e.event_id
LIMIT 1
