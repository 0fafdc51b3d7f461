-- prune_candidates: ingest batches holding data older than the cutoff, with their newest
-- time, so `toolctl db prune` can remove whole batches (the ledger's unit of proof).
-- A batch's times are its events' ts and spans' start_time; rejected lines carry no event
-- time, so they follow their batch, and only a batch of nothing but rejects is aged by
-- rejects.rejected_at (all naive UTC).
-- Parameters: $cutoff (TIMESTAMP). Output: batch_id, oldest, newest, events, spans, rejects.
WITH stored AS (
    SELECT batch_id, ts AS t, NULL::TIMESTAMP AS rt, 1 AS e, 0 AS s, 0 AS r FROM events
    UNION ALL
    SELECT batch_id, start_time::TIMESTAMP, NULL, 0, 1, 0 FROM spans
    UNION ALL
    SELECT batch_id, NULL, rejected_at, 0, 0, 1 FROM rejects
), aged AS (
    SELECT batch_id, coalesce(min(t), min(rt)) AS oldest, coalesce(max(t), max(rt)) AS newest,
           sum(e)::BIGINT AS events, sum(s)::BIGINT AS spans, sum(r)::BIGINT AS rejects
    FROM stored
    GROUP BY batch_id
)
SELECT batch_id, oldest, newest, events, spans, rejects
FROM aged
WHERE oldest < $cutoff
ORDER BY batch_id
