-- arm_attempts: the gate's attempt-level figures per arm (same definitions as `toolctl stats`).
-- Parameters: $since, $until (naive UTC, half-open window), $all (BOOLEAN: one arm '*' with
--   every version), $baseline, $candidate (versions; ignored when $all), $tools (VARCHAR[] or
--   NULL = every tool), $low_conf (confidence below this counts as low).
-- Output: one row per arm: arm, attempts, auth_failures, validation_errors, conf_n, conf_mean,
--   conf_var, conf_low. Calls/errors come from arm_calls.sql: two statements run one after
--   the other, because one statement holding both hash tables at 10M rows spilled (3× slower).
WITH a AS (
    SELECT CASE WHEN $all::BOOLEAN THEN '*' ELSE version END AS arm,
           call_id,
           event_id AS solo_id,  -- used only where call_id IS NULL: no call_id, its own call
           attempt, ts, event_id, status, retryable, error_code, confidence,
           coalesce(auth_failure, false) AS is_auth  -- the one definition: the tool_calls view
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
)
SELECT * FROM by_attempt;
