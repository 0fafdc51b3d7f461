-- duplicates: idempotency keys executed successfully more than once (duplicate side
-- effects), over every tool call stats counts: events and tool spans (a span as
-- span_call_columns.sql maps it: no stage). A success is a call row with status 'ok' at the
-- execute stage (or no stage); distinct calls / attempts are counted separately. A span with
-- an event of the same (trace_id, span_id) is that event's attempt (migration 0007): left out.
-- Parameters: $tool, $since, $until (NULL = no filter), $limit.
-- Output: idempotency_key, tool, successes, calls (distinct call ids), call_ids, event_ids
--         (a span's is trace_id:span_id), first_ts, last_ts.
WITH calls AS (
    SELECT event_id, ts, tool, status, stage, call_id, idempotency_key FROM events
    UNION ALL
    SELECT event_id, ts, tool, status, stage, call_id, idempotency_key
    FROM (SELECT {span_call_columns}
          FROM (SELECT s.* FROM spans s
                ANTI JOIN events e ON e.trace_id = s.trace_id AND e.span_id = s.span_id
                WHERE s.tool_rule IS NOT NULL))
)
SELECT idempotency_key,
       string_agg(DISTINCT tool, ',' ORDER BY tool) AS tool,
       count(*) AS successes,
       count(DISTINCT call_id) AS calls,
       list(DISTINCT call_id ORDER BY call_id) FILTER (WHERE call_id IS NOT NULL) AS call_ids,
       list(event_id ORDER BY ts, event_id) AS event_ids,
       min(ts) AS first_ts, max(ts) AS last_ts
FROM calls
WHERE idempotency_key IS NOT NULL
  AND status = 'ok'
  AND coalesce(stage, 'execute') = 'execute'
  AND ($tool IS NULL OR tool = $tool)
  AND ($since IS NULL OR ts >= $since)
  AND ($until IS NULL OR ts < $until)
GROUP BY idempotency_key
HAVING count(*) > 1
ORDER BY successes DESC, idempotency_key
LIMIT $limit
