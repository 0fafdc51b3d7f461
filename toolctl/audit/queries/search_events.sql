-- search_events: stored events matching every given filter, newest first.
-- {id_filter} is either `$id IS NULL` (no id given) or `<column> = $id` with <column> from the allowlist
-- ID_COLUMNS in lookups.py (event_id, call_id, trace_id, idempotency_key): DuckDB uses an
-- ART index only for a plain equality on one table, so the id lookup is a MATERIALIZED CTE
-- of its own and the other filters apply to its few rows.
-- Parameters: $id, $event_id, $call_id, $trace_id, $idempotency_key, $user, $tenant, $tool,
-- $version, $status, $error_code, $http_status, $since, $until (NULL = no filter), $limit.
-- Output: every stored column; `user` for user_id.
WITH hit AS MATERIALIZED (
    SELECT * FROM events WHERE {id_filter}
)
SELECT event_id, ts, tool, status, latency_ms, schema_version, trace_id, span_id, call_id,
       session_id, tenant, user_id AS "user", service, version, stage, attempt,
       idempotency_key, timeout_ms, error_code, message, retryable, http_status, confidence,
       args, data, extra, batch_id, source, line_no
FROM hit
WHERE ($event_id IS NULL OR event_id = $event_id)
  AND ($call_id IS NULL OR call_id = $call_id)
  AND ($trace_id IS NULL OR trace_id = $trace_id)
  AND ($idempotency_key IS NULL OR idempotency_key = $idempotency_key)
  AND ($user IS NULL OR user_id = $user)
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
