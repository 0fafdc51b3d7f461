-- window_rejects: lines rejected at ingest during the window (by ingest time: a rejected line
-- has no trustworthy event time). Parameters: $since, $until. Output: one row: rejects.
SELECT count(*) AS rejects
FROM rejects
WHERE rejected_at >= $since::TIMESTAMP AND rejected_at < $until::TIMESTAMP;
