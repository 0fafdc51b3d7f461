-- latency_histogram: attempt latencies of tool_calls counted into $bins bins, in DuckDB.
-- Parameters: $bins (INTEGER >= 1), $log (BOOLEAN: log-spaced edges, else linear),
--   $since, $until (naive UTC, half-open; NULL = open), $tool, $tenant, $version,
--   $service, $status (NULL = no filter) — the same filters as stats.sql.
-- Output: one row per bin, all $bins of them (empty bins have count 0), in order:
--   bin (0-based), lower_ms, upper_ms, count. Bin i holds lower <= x < upper; the last
--   bin also holds the maximum. No matching attempts → no rows.
-- Edges: lo = min, hi = max latency; log edges are lo·(hi/lo)^(i/bins), which needs lo > 0,
--   so with $log a zero minimum is lifted to the smallest positive latency (zeros go to bin 0;
--   all zeros: lo = hi = 0). They are computed as exp of the logs, never as hi/lo, which
--   overflows to +inf for a range such as 1e-6 .. 1e303 (every edge would be inf), and linear
--   ones as lo + (hi - lo)·(i/bins), never (hi - lo)·i, which overflows near 1.8e308. The first
--   edge is lo and the last hi exactly; a degenerate axis (lo = hi) has every edge at lo.
WITH a AS (
    SELECT latency_ms AS x
    FROM tool_calls
    WHERE {call_filter}
), r AS (
    SELECT CASE WHEN $log::BOOLEAN THEN coalesce(min(x) FILTER (WHERE x > 0), max(x)) ELSE min(x) END AS lo,
           max(x) AS hi, count(*) AS n
    FROM a
), e AS (
    -- Position of each value on [0, 1] of the axis; a degenerate axis (lo = hi) is bin 0.
    SELECT CASE
             WHEN r.hi <= r.lo THEN 0
             WHEN $log::BOOLEAN THEN least(floor((ln(greatest(a.x, r.lo)) - ln(r.lo)) / (ln(r.hi) - ln(r.lo)) * $bins::INTEGER),
                                           $bins::INTEGER - 1)
             ELSE least(floor((a.x - r.lo) / (r.hi - r.lo) * $bins::INTEGER), $bins::INTEGER - 1)
           END::INTEGER AS bin
    FROM a, r
), c AS (
    SELECT bin, count(*) AS count FROM e GROUP BY bin
), b AS (
    SELECT i::INTEGER AS bin FROM range($bins::INTEGER) t(i)
)
SELECT b.bin,
       CASE WHEN b.bin = 0 OR r.hi <= r.lo THEN r.lo
            WHEN $log::BOOLEAN THEN exp(ln(r.lo) + (ln(r.hi) - ln(r.lo)) * b.bin / $bins::DOUBLE)
            ELSE r.lo + (r.hi - r.lo) * (b.bin / $bins::DOUBLE) END AS lower_ms,
       CASE WHEN r.hi <= r.lo THEN r.lo
            WHEN b.bin + 1 = $bins::INTEGER THEN r.hi
            WHEN $log::BOOLEAN THEN exp(ln(r.lo) + (ln(r.hi) - ln(r.lo)) * (b.bin + 1) / $bins::DOUBLE)
            ELSE r.lo + (r.hi - r.lo) * ((b.bin + 1) / $bins::DOUBLE) END AS upper_ms,
       coalesce(c.count, 0) AS count
FROM b CROSS JOIN r LEFT JOIN c ON c.bin = b.bin
WHERE r.n > 0
ORDER BY b.bin;
