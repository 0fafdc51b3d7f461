-- missing_tools: the tools among those a gate was asked about that have no event at all (a
-- typo in CI's --tool, or a tool not shipped yet). Parameters: $tools (list). Output: tool.
SELECT t.tool
FROM (SELECT unnest($tools::VARCHAR[]) AS tool) t
WHERE NOT EXISTS (SELECT 1 FROM tool_calls c WHERE c.tool = t.tool)
ORDER BY t.tool;
