-- stats: the tool-call figures per group (definitions: README "Figure definitions").
-- Parameters: $since, $until (naive UTC, half-open window; NULL = open), $every (INTERVAL
--   or NULL), $tool, $tenant, $version, $service, $status (NULL = no filter).
-- Identifiers: {dims} / {dim_cols} are filled only from metrics.stats.DIMENSIONS.
-- Output: one row per group: the group keys, attempts, calls, retries, errors,
--   error_rate, auth_failures, p50_ms, p95_ms, p99_ms.
-- Two hash aggregations (attempt level and call level) joined on the group key: cheaper at
-- 10M rows than a window function that sorts every call's attempts.
WITH a AS (
    SELECT
        0 AS _g,  -- a constant key: "no dims" still yields no row when nothing matches
        {dim_cols}
        time_bucket($every::INTERVAL, ts) AS bucket,  -- NULL when not bucketing
        call_id,
        CASE WHEN call_id IS NULL THEN event_id END AS solo_id,  -- no call_id: its own call
        attempt, ts, event_id, status, latency_ms,
        auth_failure AS is_auth  -- defined once, in the tool_calls view (migration 0002)
    FROM tool_calls
    WHERE ($since::TIMESTAMP IS NULL OR ts >= $since::TIMESTAMP)
      AND ($until::TIMESTAMP IS NULL OR ts < $until::TIMESTAMP)
      AND ($tool::VARCHAR IS NULL OR tool = $tool::VARCHAR)
      AND ($tenant::VARCHAR IS NULL OR tenant = $tenant::VARCHAR)
      AND ($version::VARCHAR IS NULL OR version = $version::VARCHAR)
      AND ($service::VARCHAR IS NULL OR service = $service::VARCHAR)
      AND ($status::VARCHAR IS NULL OR status = $status::VARCHAR)
), by_attempt AS (
    SELECT _g, {dims} bucket,
           count(*) AS attempts,
           count(*) FILTER (WHERE is_auth) AS auth_failures,
           quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q
    FROM a
    GROUP BY _g, {dims} bucket
), final_attempt AS (
    -- The final attempt of a call: highest attempt, then latest ts, then greatest event_id.
    SELECT _g, {dims} bucket, arg_max(status, (attempt, ts, event_id)) AS final_status
    FROM a
    GROUP BY _g, {dims} bucket, call_id, solo_id
), by_call AS (
    SELECT _g, {dims} bucket,
           count(*) AS calls,
           count(*) FILTER (WHERE final_status = 'error') AS errors
    FROM final_attempt
    GROUP BY _g, {dims} bucket
)
SELECT {dims_out}
       strftime(t.bucket, '%Y-%m-%dT%H:%M:%SZ') AS bucket,
       t.attempts, c.calls, t.attempts - c.calls AS retries, c.errors,
       c.errors / c.calls AS error_rate, t.auth_failures,
       t.q[1] AS p50_ms, t.q[2] AS p95_ms, t.q[3] AS p99_ms
FROM by_attempt t
JOIN by_call c
  ON t._g = c._g AND t.bucket IS NOT DISTINCT FROM c.bucket {join_dims}
ORDER BY t.bucket NULLS FIRST, c.calls DESC {order_dims};
