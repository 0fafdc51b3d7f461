-- baseline_sketch: the latency sketch `toolctl baseline save` keeps per tool: exact
-- quantile_cont of the attempt latencies at $fracs (gate.baselines.sketch_fracs()).
-- The per-tool figures next to it are `toolctl stats --by tool` itself (metrics.stats).
-- Parameters: those of metrics/queries/call_filter.sql (its condition is the WHERE below);
--   $fracs (DOUBLE[]).
-- Output: one row per tool: tool, sketch_values.
SELECT tool, quantile_cont(latency_ms, $fracs::DOUBLE[]) AS sketch_values
FROM tool_calls
WHERE {call_filter}
GROUP BY tool;
