-- arm_counts: the gate's count figures per arm (same definitions as `toolctl stats`).
-- Parameters: $since, $until (naive UTC, half-open window), $all (BOOLEAN: one arm '*' with
--   every version), $baseline, $candidate (versions; ignored when $all), $tools (VARCHAR[] or
--   NULL = every tool), $low_conf (confidence below this counts as low).
-- Identifiers: {auth_expr} is one of the two constants in toolctl.gate.data (never user text).
-- Output: one row per arm: arm, attempts, calls, errors, auth_failures, retries, abandoned,
--   validation_errors, conf_n, conf_mean, conf_var, conf_low.
WITH a AS (
    SELECT CASE WHEN $all::BOOLEAN THEN '*' ELSE version END AS arm,
           call_id,
           CASE WHEN call_id IS NULL THEN event_id END AS solo_id,  -- no call_id: its own call
           attempt, ts, event_id, status, retryable, error_code, confidence,
           {auth_expr} AS is_auth
    FROM tool_calls
    WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP
      AND ($all::BOOLEAN OR version = $baseline::VARCHAR OR version = $candidate::VARCHAR)
      AND ($tools::VARCHAR[] IS NULL OR list_contains($tools::VARCHAR[], tool))
), by_attempt AS (
    SELECT arm,
           count(*) AS attempts,
           count(*) FILTER (WHERE is_auth) AS auth_failures,
           count(*) FILTER (WHERE error_code = 'VALIDATION') AS validation_errors,
           count(confidence) AS conf_n,
           avg(confidence) AS conf_mean,
           var_samp(confidence) AS conf_var,
           count(*) FILTER (WHERE confidence < $low_conf::DOUBLE) AS conf_low
    FROM a
    GROUP BY arm
), final_attempt AS (
    -- The final attempt of a call: highest attempt, then latest ts, then greatest event_id.
    SELECT arm,
           arg_max(status, (attempt, ts, event_id)) AS final_status,
           arg_max(coalesce(retryable, false), (attempt, ts, event_id)) AS final_retryable
    FROM a
    GROUP BY arm, call_id, solo_id
), by_call AS (
    SELECT arm,
           count(*) AS calls,
           count(*) FILTER (WHERE final_status = 'error') AS errors,
           count(*) FILTER (WHERE final_status = 'error' AND final_retryable) AS abandoned
    FROM final_attempt
    GROUP BY arm
)
SELECT t.arm, t.attempts, c.calls, c.errors, t.auth_failures, t.attempts - c.calls AS retries,
       c.abandoned, t.validation_errors, t.conf_n, t.conf_mean, t.conf_var, t.conf_low
FROM by_attempt t JOIN by_call c ON t.arm = c.arm;
