-- call_filter: which tool calls a question counts (toolctl.metrics.stats.CallFilter), the
-- WHERE condition over the tool_calls view that stats.sql and latency_histogram.sql share as
-- {call_filter}. Parameters: $since, $until (naive UTC, half-open; NULL = open), $tool,
-- $tenant, $version, $service, $status (NULL = no filter).
($since::TIMESTAMP IS NULL OR ts >= $since::TIMESTAMP)
  AND ($until::TIMESTAMP IS NULL OR ts < $until::TIMESTAMP)
  AND ($tool::VARCHAR IS NULL OR tool = $tool::VARCHAR)
  AND ($tenant::VARCHAR IS NULL OR tenant = $tenant::VARCHAR)
  AND ($version::VARCHAR IS NULL OR version = $version::VARCHAR)
  AND ($service::VARCHAR IS NULL OR service = $service::VARCHAR)
  AND ($status::VARCHAR IS NULL OR status = $status::VARCHAR)
