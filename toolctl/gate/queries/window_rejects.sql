-- window_rejects: lines rejected at ingest during the window (by ingest time: a rejected line
-- has no trustworthy event time). Parameters: $since, $until, $tools (VARCHAR[] or NULL =
-- every line). With $tools, only the lines that name one of them: a stored raw text that is
-- valid JSON with a `tool` string in the list (a wrong-typed field in an otherwise readable
-- event, the usual schema breakage). A line that cannot be read (truncated, binary, cut at
-- the stored 64 Ki characters) names no tool and counts only without $tools.
-- Output: one row: rejects.
SELECT count(*) AS rejects
FROM rejects
WHERE rejected_at >= $since::TIMESTAMP AND rejected_at < $until::TIMESTAMP
  AND ($tools::VARCHAR[] IS NULL
       OR list_contains($tools::VARCHAR[], CASE WHEN json_valid(raw) THEN raw ->> '$.tool' END));
