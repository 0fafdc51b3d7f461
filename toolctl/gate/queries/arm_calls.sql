-- arm_calls: the gate's call-level figures per arm (same definitions as `toolctl stats`).
-- Parameters: $since, $until (naive UTC, half-open window), $all (BOOLEAN: one arm '*' with
--   every version), $baseline, $candidate (versions; ignored when $all), $tools (VARCHAR[] or
--   NULL = every tool).
-- Output: one row per arm: arm, calls, errors (final attempt is an error), abandoned (final
--   attempt is a retryable error).
--
-- The final attempt of a call is the highest (attempt, ts, event_id). As in
-- metrics/queries/stats.sql, each call keeps two BIGINT maxima instead of an arg_max over a
-- struct holding event_id: k = attempt·2^54 + epoch µs·4 with the outcome class c in its
-- two low bits (0 ok, 1 retryable error, 2 other error). kc_hi = max(k + c) carries the
-- highest class at the highest k, kc_lo = max(k + 3 - c) 3 minus the lowest; their low
-- bits add up to 3 exactly when every attempt at the highest k has the same class, which
-- is then the call's outcome. Only calls where two classes share the highest k need
-- event_id (`ties`: none in ordinary data), and calls with an attempt outside k's range
-- (attempt > 511, ts before 1970 or after 2112: k is NULL and takes the largest BIGINT);
-- they get the exact arg_max. Events without call_id are calls of their own.
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
           CASE WHEN coalesce(attempt, 1) BETWEEN 0 AND 511 AND epoch_us(ts) BETWEEN 0 AND 4503599627370495
                THEN (coalesce(attempt, 1)::BIGINT << 54) | (epoch_us(ts) << 2) END AS k,
           CASE WHEN status IS DISTINCT FROM 'error' THEN 0 WHEN coalesce(retryable, false) THEN 1 ELSE 2 END AS c
    FROM tool_calls
    WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP
      AND ($all::BOOLEAN OR version = $baseline::VARCHAR OR version = $candidate::VARCHAR)
      AND ($tools::VARCHAR[] IS NULL OR list_contains($tools::VARCHAR[], tool))
), per_call AS {per_call} (
    SELECT arm, call_id,
           max(coalesce(k | c, 9223372036854775807)) AS kc_hi,
           max(coalesce(k | (3 - c), 9223372036854775807)) AS kc_lo
    FROM a
    WHERE call_id IS NOT NULL
    GROUP BY arm, call_id
), classified AS (
    SELECT arm, call_id,
           CASE WHEN (kc_hi & 3) + (kc_lo & 3) <> 3 THEN NULL  -- a tie: decided by event_id below
                WHEN kc_hi & 3 = 0 THEN 'ok'
                WHEN kc_hi & 3 = 1 THEN 'retryable'
                ELSE 'error'
           END AS outcome
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
