-- arm_latencies: attempt latencies of one arm, sorted (for quantile and Mann-Whitney checks).
-- Parameters: $since, $until (naive UTC, half-open), $version (NULL = every version),
--   $tools (VARCHAR[] or NULL).
-- Output: latency_ms, ascending.
SELECT latency_ms
FROM tool_calls
WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP
  AND ($version::VARCHAR IS NULL OR version = $version::VARCHAR)
  AND ($tools::VARCHAR[] IS NULL OR list_contains($tools::VARCHAR[], tool))
ORDER BY latency_ms;
