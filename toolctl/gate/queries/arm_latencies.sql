-- arm_latencies: attempt latencies of one arm (sorted by the caller, in numpy).
-- Parameters: $since, $until (naive UTC, half-open), $version (NULL = every version),
--   $tools (VARCHAR[] or NULL).
-- Output: latency_ms, unordered.
SELECT latency_ms
FROM tool_calls
WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP
  AND ($version::VARCHAR IS NULL OR version = $version::VARCHAR)
  AND ($tools::VARCHAR[] IS NULL OR list_contains($tools::VARCHAR[], tool));
