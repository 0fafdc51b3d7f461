-- tool_latencies: sorted attempt latencies per tool (for `toolctl regress` quantile bounds).
-- Parameters: $since, $until (naive UTC, half-open; NULL = open).
-- Output: one row per tool: tool, latencies (DOUBLE[], ascending).
SELECT tool, list(latency_ms ORDER BY latency_ms) AS latencies
FROM tool_calls
WHERE ($since::TIMESTAMP IS NULL OR ts >= $since::TIMESTAMP)
  AND ($until::TIMESTAMP IS NULL OR ts < $until::TIMESTAMP)
GROUP BY tool;
