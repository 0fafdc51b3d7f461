-- known_versions: the versions that have events, most recently seen first (named when a gate
-- is asked about a version that has none: a typo, or a canary that sent nothing yet).
-- Parameters: $limit. Output: version.
SELECT version
FROM tool_calls
WHERE version IS NOT NULL
GROUP BY version
ORDER BY max(ts) DESC, version
LIMIT $limit;
