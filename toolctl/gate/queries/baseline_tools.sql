-- baseline_tools: per-tool figures and a latency sketch for `toolctl baseline save`.
-- Parameters: $since, $until (naive UTC, half-open; NULL = open), $version (NULL = all),
--   $fracs (DOUBLE[]: sketch fractions).
-- Output: one row per tool: tool, attempts, calls, errors, auth_failures, p50_ms, p95_ms,
--   p99_ms, sketch_values (quantile_cont at $fracs).
WITH a AS (
    SELECT tool, call_id, CASE WHEN call_id IS NULL THEN event_id END AS solo_id,
           attempt, ts, event_id, status, latency_ms, coalesce(auth_failure, false) AS is_auth  -- the one definition: the tool_calls view
    FROM tool_calls
    WHERE ($since::TIMESTAMP IS NULL OR ts >= $since::TIMESTAMP)
      AND ($until::TIMESTAMP IS NULL OR ts < $until::TIMESTAMP)
      AND ($version::VARCHAR IS NULL OR version = $version::VARCHAR)
), by_attempt AS (
    SELECT tool, count(*) AS attempts, count(*) FILTER (WHERE is_auth) AS auth_failures,
           quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q,
           quantile_cont(latency_ms, $fracs::DOUBLE[]) AS sketch_values
    FROM a GROUP BY tool
), final_attempt AS (
    SELECT tool, arg_max(status, (attempt, ts, event_id)) AS final_status
    FROM a GROUP BY tool, call_id, solo_id
), by_call AS (
    SELECT tool, count(*) AS calls, count(*) FILTER (WHERE final_status = 'error') AS errors
    FROM final_attempt GROUP BY tool
)
SELECT t.tool, t.attempts, c.calls, c.errors, t.auth_failures,
       t.q[1] AS p50_ms, t.q[2] AS p95_ms, t.q[3] AS p99_ms, t.sketch_values
FROM by_attempt t JOIN by_call c ON t.tool = c.tool
ORDER BY c.calls DESC, t.tool;
