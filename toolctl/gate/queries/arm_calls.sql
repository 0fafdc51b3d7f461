-- arm_calls: the gate's call-level figures per arm (same definitions as `toolctl stats`).
-- Parameters: $since, $until (naive UTC, half-open window), $all (BOOLEAN: one arm '*' with
--   every version), $baseline, $candidate (versions; ignored when $all), $tools (VARCHAR[] or
--   NULL = every tool).
-- Output: one row per arm: arm, calls, errors (final attempt is an error), abandoned (final
--   attempt is a retryable error).
WITH a AS (
    SELECT CASE WHEN $all::BOOLEAN THEN '*' ELSE version END AS arm,
           call_id,
           event_id AS solo_id,  -- used only where call_id IS NULL: no call_id, its own call
           attempt, ts, event_id, status, retryable
    FROM tool_calls
    WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP
      AND ($all::BOOLEAN OR version = $baseline::VARCHAR OR version = $candidate::VARCHAR)
      AND ($tools::VARCHAR[] IS NULL OR list_contains($tools::VARCHAR[], tool))
), final_attempt AS (
    -- The final attempt of a call: highest attempt, then latest ts, then greatest event_id.
    -- One arg_max of a struct: a second arg_max over the same 10M groups doubles the cost.
    SELECT arm,
           arg_max({'status': status, 'retryable': coalesce(retryable, false)},
                   (attempt, ts, event_id)) AS fin
    FROM a
    -- One key per call; an event without call_id is a call of its own. The prefix byte keeps
    -- an event_id from ever equalling a call_id.
    GROUP BY arm, coalesce('c' || call_id, 'e' || solo_id)
), by_call AS (
    SELECT arm,
           count(*) AS calls,
           count(*) FILTER (WHERE fin.status = 'error') AS errors,
           count(*) FILTER (WHERE fin.status = 'error' AND fin.retryable) AS abandoned
    FROM final_attempt
    GROUP BY arm
)
SELECT * FROM by_call;
