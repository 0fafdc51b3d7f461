-- arm_calls: the gate's call-level figures per arm (same definitions as `toolctl stats`).
-- Parameters: $since, $until (naive UTC, half-open window), $all (BOOLEAN: one arm '*' with
--   every version), $baseline, $candidate (versions; ignored when $all), $tools (VARCHAR[] or
--   NULL = every tool).
-- Output: one row per arm: arm, calls, errors (final attempt is an error), abandoned (final
--   attempt is a retryable error).
--
-- The final attempt of a call is the highest (attempt, ts, event_id). As in
-- metrics/queries/stats.sql, each call keeps fixed-size maxima of k = attempt·2^64 + epoch
-- µs per outcome class (ok, retryable error, other error) instead of an arg_max over a
-- struct holding event_id: the class with the strictly highest k is the call's outcome.
-- Only calls where two classes share the highest k need event_id (`ties`: none in ordinary
-- data); they get the exact arg_max. Events without call_id are calls of their own.
-- Resolving ties reads `per_call` twice, so it must be materialized (one row per call: the
-- largest cost of a gate at 10M events). gate/data.py therefore fills the three markers
-- (per_call, classified_where, tie_rows; ARM_CALLS_ONE_PASS / ARM_CALLS_EXACT) to run this
-- query first as one pass (not materialized; tie calls counted in tie_calls, as neither
-- errors nor successes) and only when an arm has a tie again exactly (materialized, ties
-- resolved by tie_final).
WITH a AS NOT MATERIALIZED (
    SELECT CASE WHEN $all::BOOLEAN THEN '*' ELSE version END AS arm,
           call_id, attempt, ts, event_id, status,
           coalesce(retryable, false) AS retryable,
           coalesce(attempt, 1)::HUGEINT * 18446744073709551616 + epoch_us(ts) AS k
    FROM tool_calls
    WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP
      AND ($all::BOOLEAN OR version = $baseline::VARCHAR OR version = $candidate::VARCHAR)
      AND ($tools::VARCHAR[] IS NULL OR list_contains($tools::VARCHAR[], tool))
), per_call AS {per_call} (
    SELECT arm, call_id,
           coalesce(max(k) FILTER (WHERE status IS DISTINCT FROM 'error'), 0) AS ko,
           coalesce(max(k) FILTER (WHERE status = 'error' AND retryable), 0) AS kr,
           coalesce(max(k) FILTER (WHERE status = 'error' AND NOT retryable), 0) AS kn
    FROM a
    WHERE call_id IS NOT NULL
    GROUP BY arm, call_id
), classified AS (
    SELECT arm, call_id,
           CASE WHEN ko > kr AND ko > kn THEN 'ok'
                WHEN kr > ko AND kr > kn THEN 'retryable'
                WHEN kn > ko AND kn > kr THEN 'error'
           END AS outcome  -- NULL: a tie between classes, decided by event_id below
    FROM per_call
), tie_final AS (
    SELECT a.arm, arg_max({'status': a.status, 'retryable': a.retryable},
                          (a.attempt, a.ts, a.event_id)) AS fin
    FROM a SEMI JOIN (SELECT arm, call_id FROM classified WHERE outcome IS NULL) x
      ON a.arm IS NOT DISTINCT FROM x.arm AND a.call_id = x.call_id
    GROUP BY a.arm, a.call_id
), finals AS (
    SELECT arm, outcome <> 'ok' AS is_error, outcome = 'retryable' AS is_abandoned,
           outcome IS NULL AS is_tie
    FROM classified {classified_where}
    {tie_rows}
    UNION ALL
    SELECT arm, status = 'error', status = 'error' AND retryable, false FROM a WHERE call_id IS NULL
)
SELECT arm,
       count(*) AS calls,
       count(*) FILTER (WHERE is_error) AS errors,
       count(*) FILTER (WHERE is_abandoned) AS abandoned,
       count(*) FILTER (WHERE is_tie) AS tie_calls
FROM finals
GROUP BY arm;
