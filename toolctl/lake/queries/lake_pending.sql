-- lake_pending: WHERE fragment, the rows of the dataset's table (alias t) this store has not
-- exported to the lake yet; the ts placeholder is the partition time column.
-- Parameters: $lake_id, $dataset, $after (lake_state.complete_through), $since, $until
-- (whole hours, NULL = open).
t.batch_id > $after
AND ($since IS NULL OR t.{ts} >= $since)
AND ($until IS NULL OR t.{ts} < $until)
AND NOT EXISTS (
    SELECT 1 FROM lake_exports x
    WHERE x.lake_id = $lake_id AND x.dataset = $dataset AND x.batch_id = t.batch_id
      AND x.hour = date_trunc('hour', t.{ts})::TIMESTAMP)
