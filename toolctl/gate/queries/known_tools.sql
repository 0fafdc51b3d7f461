-- known_tools: the tools that have events, most recently seen first (named when a gate is
-- asked about a tool that has none). Parameters: $limit. Output: tool.
SELECT tool
FROM tool_calls
WHERE tool IS NOT NULL
GROUP BY tool
ORDER BY max(ts) DESC, tool
LIMIT $limit;
