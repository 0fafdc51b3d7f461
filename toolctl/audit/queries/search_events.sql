-- search_events: stored tool calls matching every given filter, newest first: JSON-line
-- events and tool spans (OTLP spans a rule counts as a tool call, tool_rule set), the rows
-- the tool_calls view counts; a span as span_call_columns.sql maps it. origin says which:
-- 'event' or 'span'. A tool span with an event of the same (trace_id, span_id) is that
-- event's attempt and is left out, as in tool_calls (migration 0007), whatever other ids the
-- event carries (its own event id, call id or idempotency key may differ from the span's): the
-- events it is checked against (`named`) are those of the found spans' traces, looked up by
-- trace id, so the lookup stays on the indexes. `named` may hold more events than that (the
-- anti join matches both ids); $span_key is in its list so that it is never empty: DuckDB
-- plans a sequential scan of events for an IN list that turns out empty (no span found).
-- {all_events} is `events`, or over a lake the view of the window's event files widened by an
-- hour (the line naming a span may lie just outside the window; toolctl.engines.NAMING_MARGIN).
-- {id_filter} is either `$id IS NULL` (no id given) or `<column> = $id` with <column> from the allowlist
-- ID_COLUMNS in lookups.py (event_id, call_id, trace_id, idempotency_key); {span_id_filter}
-- likewise `$span_key IS NULL` or `<column> = $span_key` from SPAN_ID_COLUMNS (an event id
-- is looked up by its trace id part). DuckDB uses an ART index only for a plain equality
-- on one table, so each id lookup is a MATERIALIZED CTE of its own and the other filters
-- apply to its few rows.
-- Parameters: id, span_key, event_id, call_id, trace_id, idempotency_key, user, tenant, tool,
-- version, status, error_code, http_status, since, until (NULL = no filter), limit.
-- Output: every stored column of an event; `user` for user_id; origin.
WITH hit AS MATERIALIZED (
    SELECT * FROM events WHERE {id_filter}
), span_hit AS MATERIALIZED (
    SELECT * FROM spans WHERE {span_id_filter}
), named AS MATERIALIZED (
    SELECT trace_id, span_id FROM {all_events}
    WHERE trace_id IN (SELECT trace_id FROM span_hit UNION ALL SELECT $span_key)
), calls AS (
    SELECT event_id, ts, tool, status, latency_ms, schema_version, trace_id, span_id, call_id,
           session_id, tenant, user_id AS "user", service, version, stage, attempt,
           idempotency_key, timeout_ms, error_code, message, retryable, http_status, confidence,
           args, data, extra, batch_id, source, line_no, 'event' AS origin
    FROM hit
    UNION ALL
    SELECT {span_call_columns}
    FROM (SELECT s.* FROM span_hit s
          ANTI JOIN named e ON e.trace_id = s.trace_id AND e.span_id = s.span_id
          WHERE s.tool_rule IS NOT NULL)
)
SELECT *
FROM calls
WHERE ($event_id IS NULL OR event_id = $event_id)
  AND ($call_id IS NULL OR call_id = $call_id)
  AND ($trace_id IS NULL OR trace_id = $trace_id)
  AND ($idempotency_key IS NULL OR idempotency_key = $idempotency_key)
  AND ($user IS NULL OR "user" = $user)
  AND ($tenant IS NULL OR tenant = $tenant)
  AND ($tool IS NULL OR tool = $tool)
  AND ($version IS NULL OR version = $version)
  AND ($status IS NULL OR status = $status)
  AND ($error_code IS NULL OR error_code = $error_code)
  AND ($http_status IS NULL OR http_status = $http_status)
  AND ($since IS NULL OR ts >= $since)
  AND ($until IS NULL OR ts < $until)
ORDER BY ts DESC, event_id DESC
LIMIT $limit
