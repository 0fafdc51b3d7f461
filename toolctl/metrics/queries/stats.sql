-- stats: the tool-call figures per group (definitions: README "Figure definitions").
-- Parameters: $since, $until (naive UTC, half-open window; NULL = open), $every (INTERVAL
--   or NULL), $tool, $tenant, $version, $service, $status (NULL = no filter).
-- Identifiers: {dims} / {dim_cols} / {grp} / ... are filled only from metrics.stats.DIMENSIONS
--   (and `bucket` when $every is given: render_stats_sql(dims, bucketed=True)).
-- Output: one row per group: the group keys, attempts, calls, retries, errors,
--   error_rate, auth_failures, p50_ms, p95_ms, p99_ms.
--
-- Cost at 10M events (benchmarks/queries.py, docs/performance.md): the one unavoidable
-- expense is grouping every attempt by its call (≈ one hash-table entry per call) to find
-- each call's final attempt. Everything else here keeps that grouping as cheap as the
-- bare query an operator would write by hand:
-- * `a` is NOT MATERIALIZED: it is read three times, and re-scanning the columnar table is
--   far cheaper than materializing 10M rows of strings (what DuckDB does by default for a
--   CTE used more than once).
-- * The final attempt of a call is the highest (attempt, ts, event_id). Instead of an
--   arg_max over that struct (a string in every aggregate state), each call keeps two
--   BIGINT maxima. k = attempt·2^54 + epoch µs·4 orders attempts by (attempt, ts), and its
--   two low bits are free for the outcome class c (0: not an error, 1: an error):
--   kc_hi = max(k + c) is the highest k plus the highest class among the attempts at that
--   k, kc_lo = max(k + 3 - c) the same k plus 3 minus the lowest class. Their low bits add
--   up to 3 exactly when every attempt at the highest k has the same class: that class
--   (kc_hi % 4) is the call's outcome. Otherwise (an error and a success with the same
--   attempt and ts) event_id decides: those calls (`ties`, none in ordinary data) get the
--   exact arg_max. So do calls with an attempt outside k's range (attempt > 511, ts before
--   1970 or after 2112; k is NULL): they take the largest BIGINT, whose low bits never add
--   up to 3. Two BIGINT maxima cost ~5% less than two HUGEINT ones with FILTER (attempt
--   ·2^64 + µs, what this used before), and ~25% less in the gate's three-class version
--   (benchmarks/RESULTS.md).
--   Resolving them needs `per_call` twice, and materializing 10M calls costs more than
--   grouping them, so stats.py runs this query first with {tie_source} = no_ties and
--   {per_call} = NOT MATERIALIZED (every tie call counted in `tie_calls`, none resolved),
--   and only when some group has tie_calls > 0 again with by_tie / MATERIALIZED.
-- * Events without call_id are calls of their own: counted in the attempt-level pass, kept
--   out of the call grouping.
WITH a AS NOT MATERIALIZED (
    SELECT
        0 AS _g,  -- a constant key: "no dims" still yields no row when nothing matches
        {dim_cols}
        time_bucket($every::INTERVAL, ts) AS bucket,  -- NULL when not bucketing
        call_id, attempt, ts, event_id, latency_ms,  -- no raw status: c is its class (and
        -- `status AS status` of --by status would be a second `status`, which Spark refuses)
        CASE WHEN coalesce(attempt, 1) BETWEEN 0 AND 511 AND epoch_us(ts) BETWEEN 0 AND 4503599627370495
             THEN (coalesce(attempt, 1)::BIGINT << 54) | (epoch_us(ts) << 2) END AS k,
        CASE WHEN status = 'error' THEN 1 ELSE 0 END AS c,
        auth_failure AS is_auth  -- defined once, in the tool_calls view (migration 0002)
    FROM tool_calls
    WHERE {call_filter}
), by_attempt AS (
    SELECT _g, {dims} bucket,
           count(*) AS attempts,
           count(*) FILTER (WHERE is_auth) AS auth_failures,
           count(*) FILTER (WHERE call_id IS NULL) AS solo_calls,
           count(*) FILTER (WHERE call_id IS NULL AND c = 1) AS solo_errors,
           quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q
    FROM a
    GROUP BY _g, {dims} bucket
), per_call AS {per_call} (  -- one row per call: read by by_call (and ties, when resolved)
    -- Keyed by the call and the group's own keys only ({grp}: the dims, plus bucket when
    -- bucketing): no constant columns in the widest hash table of the query.
    SELECT {grp} call_id,
           max(coalesce(k | c, 9223372036854775807)) AS kc_hi,
           max(coalesce(k | (3 - c), 9223372036854775807)) AS kc_lo
    FROM a
    WHERE call_id IS NOT NULL
    GROUP BY {grp} call_id
), by_call AS (
    SELECT {grp}
           count(*) AS calls,
           count(*) FILTER (WHERE kc_hi & 3 = 1 AND kc_lo & 3 = 2) AS errors,
           count(*) FILTER (WHERE (kc_hi & 3) + (kc_lo & 3) <> 3) AS tie_calls
    FROM per_call
    GROUP BY ALL
), ties AS (
    SELECT {grp} call_id FROM per_call WHERE (kc_hi & 3) + (kc_lo & 3) <> 3
), tie_final AS (
    SELECT {a_grp} arg_max(a.c, (a.attempt, a.ts, a.event_id)) AS final_c
    FROM a SEMI JOIN ties x ON a.call_id = x.call_id {x_join}
    GROUP BY {a_grp} a.call_id
), by_tie AS (
    SELECT {grp} count(*) FILTER (WHERE final_c = 1) AS errors
    FROM tie_final
    GROUP BY ALL
), no_ties AS (  -- {tie_source} when ties are not resolved: no rows
    SELECT {grp} 0::BIGINT AS errors FROM by_call WHERE false
), totals AS (
    SELECT t._g, {dims_t} t.bucket, t.attempts, t.auth_failures, t.q,
           t.solo_calls + coalesce(c.calls, 0) AS calls,
           t.solo_errors + coalesce(c.errors, 0) + coalesce(x.errors, 0) AS errors,
           coalesce(c.tie_calls, 0) AS tie_calls
    FROM by_attempt t
    LEFT JOIN by_call c ON true {join_c}
    LEFT JOIN {tie_source} x ON true {join_x}
)
SELECT {dims_out}
       strftime(t.bucket, '%Y-%m-%dT%H:%M:%SZ') AS bucket,
       t.attempts, t.calls, t.attempts - t.calls AS retries, t.errors,
       t.errors / t.calls AS error_rate, t.auth_failures,
       t.q[1] AS p50_ms, t.q[2] AS p95_ms, t.q[3] AS p99_ms, t.tie_calls
FROM totals t
ORDER BY t.bucket NULLS FIRST, t.calls DESC {order_dims};
