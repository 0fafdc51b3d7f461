-- first_seen: the first event of a version (the default start of a gate window).
-- Parameters: $version. Output: one row: first_ts (NULL when the version has no event).
SELECT min(ts) AS first_ts FROM tool_calls WHERE version = $version::VARCHAR;
