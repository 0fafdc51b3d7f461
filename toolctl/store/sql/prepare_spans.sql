-- prepare_spans: for each decoded span of one request (`_spans_prep`: an Arrow table with
-- the columns of collector.otlp.COLUMNS, already redacted), typed as insert_spans.sql
-- stores it (the same JSON casts):
--   k         the row's ledger key, as in ledger.SPAN_HASHES;
--   row_json  the UTF-8 bytes of its canonical ledger JSON (audit/queries/span_row_json.sql,
--             put in its place by spans.prepare_spans) with batch_id and source NULL: they
--             are known only when the writer stores the batch, which finishes each hash.
-- Only these two columns come back: returning the cast JSON columns as well (so the insert
-- would not parse them again) cost the decoding threads ~8 µs a span to save the writer ~2.
SELECT 's:' || trace_id || ':' || span_id AS k, encode({row_json}) AS row_json
FROM (SELECT * REPLACE (resource::JSON AS resource, attributes::JSON AS attributes,
                        events::JSON AS events, links::JSON AS links, args::JSON AS args,
                        result::JSON AS result),
             NULL::BIGINT AS batch_id, NULL::VARCHAR AS source
      FROM _spans_prep);
