-- parse_batch: validate one batch of raw JSON lines against schema v1, in bulk.
-- Input:  `_raw` (an Arrow table) with line_no BIGINT, line VARCHAR (may still end with its
--         "\n" and a CR: the reader hands over the chunk without copying it), pre_reason
--         VARCHAR (set when Python already rejected the line: not UTF-8, too long,
--         non-standard JSON), raw_bytes BIGINT.
-- Output: temp table `_parsed`: line_no, raw (the line without its line ending, for rejected
--         lines only), raw_bytes, reason (NULL = valid) and the typed event columns. Blank
--         lines are dropped here (they are not counted as lines).
-- The rules mirror toolctl.models.ToolCallEvent; tests/test_models_parity.py holds them equal.
-- Cost (benchmarks/run.py): the JSON functions parse the line; json_type with a path list
-- and json_transform each read every field in one pass, json_keys finds unknown fields.
-- Nothing copies a whole line on the common path (trimming is done only for rejects, a
-- BOM is stripped only where there is one): at ~600 bytes a line a copy costs ~1-4 µs.
CREATE OR REPLACE TEMP TABLE _parsed AS
WITH src AS (
    SELECT line_no, pre_reason, raw_bytes,
           -- A UTF-8 byte-order mark is transport noise, not content; the line ending
           -- (LF, CRs) is JSON whitespace to the parser.
           CASE WHEN ascii(line) = 65279 THEN ltrim(line, chr(65279)) ELSE line END AS line
    FROM _raw
), nonblank AS (
    SELECT *,
           CASE WHEN pre_reason IS NULL AND json_valid(line)
                THEN CASE WHEN ascii(line) = 123 THEN 'OBJECT' ELSE json_type(line) END
           END AS doc_type  -- NULL: not JSON
    FROM src
    -- Blank = empty or only [ \t\v\f], before trailing CRs and the newline; only lines
    -- starting with whitespace are scanned.
    WHERE pre_reason IS NOT NULL
       OR NOT (line = '' OR (ascii(line) IN (9, 10, 11, 12, 13, 32)
                             AND regexp_full_match(line, '[ \t\x0b\x0c]*\r*\n?')))
), fields AS (
    SELECT *,
        -- JSON types of the fields: NULL (json null), BOOLEAN, BIGINT, UBIGINT, DOUBLE,
        -- VARCHAR, ARRAY, OBJECT; 'ABSENT' when the key is missing.
        CASE WHEN doc_type = 'OBJECT' THEN list_transform(json_type(line, ['$."event_id"', '$."ts"', '$."tool"', '$."status"',
            '$."latency_ms"', '$."schema_version"', '$."trace_id"', '$."span_id"', '$."call_id"',
            '$."session_id"', '$."tenant"', '$."user"', '$."service"', '$."version"', '$."stage"',
            '$."attempt"', '$."idempotency_key"', '$."timeout_ms"', '$."error_code"',
            '$."message"', '$."retryable"', '$."http_status"', '$."confidence"', '$."args"',
            '$."data"']), lambda x: coalesce(x, 'ABSENT')) END AS t,
        -- Values, cast leniently: a value is used only where its type in `t` is right.
        CASE WHEN doc_type = 'OBJECT' THEN json_transform(line, '{"event_id":"VARCHAR","ts":"VARCHAR","tool":"VARCHAR",
            "status":"VARCHAR","latency_ms":"DOUBLE","schema_version":"HUGEINT",
            "trace_id":"VARCHAR","span_id":"VARCHAR","call_id":"VARCHAR","session_id":"VARCHAR",
            "tenant":"VARCHAR","user":"VARCHAR","service":"VARCHAR","version":"VARCHAR",
            "stage":"VARCHAR","attempt":"HUGEINT","idempotency_key":"VARCHAR",
            "timeout_ms":"DOUBLE","error_code":"VARCHAR","message":"VARCHAR",
            "retryable":"BOOLEAN","http_status":"HUGEINT","confidence":"DOUBLE","args":"JSON",
            "data":"JSON"}') END AS v,
        CASE WHEN doc_type = 'OBJECT' THEN json_keys(line) END AS keys
    FROM nonblank
), typed AS (
    SELECT *, t[1] AS t1, t[2] AS t2, t[3] AS t3, t[4] AS t4, t[5] AS t5, t[6] AS t6, t[7] AS t7, t[8] AS t8, t[9] AS t9, t[10] AS t10, t[11] AS t11, t[12] AS t12, t[13] AS t13, t[14] AS t14, t[15] AS t15, t[16] AS t16, t[17] AS t17, t[18] AS t18, t[19] AS t19, t[20] AS t20, t[21] AS t21, t[22] AS t22, t[23] AS t23, t[24] AS t24, t[25] AS t25
    FROM fields
), timed AS (
    -- DuckDB reads upper-case T/Z and truncates past 6 fractional digits, as Python does;
    -- the normalising rewrite runs only where the direct cast fails.
    SELECT *,
        CASE WHEN t2 = 'VARCHAR' THEN coalesce(TRY_CAST(v.ts AS TIMESTAMPTZ),
            TRY_CAST(regexp_replace(upper(v.ts), '(\.\d{6})\d+', '\1') AS TIMESTAMPTZ)) END AS ts_parsed,
        -- Top-level keys that are not schema fields (objects only).
        CASE WHEN doc_type = 'OBJECT' THEN list_filter(keys, lambda k: NOT list_contains(['event_id', 'ts', 'tool',
            'status', 'latency_ms', 'schema_version', 'trace_id', 'span_id', 'call_id',
            'session_id', 'tenant', 'user', 'service', 'version', 'stage', 'attempt',
            'idempotency_key', 'timeout_ms', 'error_code', 'message', 'retryable',
            'http_status', 'confidence', 'args', 'data'], k)) END AS unknown
    FROM typed
), checked AS (
    SELECT line_no, line, raw_bytes, ts_parsed,
        CASE
        WHEN pre_reason IS NOT NULL THEN pre_reason
        WHEN doc_type IS NULL THEN 'invalid JSON'
        WHEN doc_type <> 'OBJECT' THEN 'not a JSON object (got ' || lower(doc_type) || ')'
        -- RFC 8259 leaves a repeated key's value undefined (the JSON functions read the
        -- first, json_keys lists both): an event with a schema field twice is refused.
        -- (a repeated unknown key is kept as written, both occurrences: nothing depends on it)
        -- (schema keys present: the 25 types of `t` that are not ABSENT; no hashing per line)
        WHEN length(keys) - length(unknown) > length(list_filter(t, lambda x: x <> 'ABSENT'))
            THEN 'key "' || list_filter(keys, lambda k, i: list_position(keys, k) < i
                                                       AND NOT list_contains(unknown, k))[1]
                 || '" appears twice: which value holds is undefined'
        WHEN t1 IN ('ABSENT', 'NULL') THEN 'missing required field: event_id'
        WHEN t2 IN ('ABSENT', 'NULL') THEN 'missing required field: ts'
        WHEN t3 IN ('ABSENT', 'NULL') THEN 'missing required field: tool'
        WHEN t4 IN ('ABSENT', 'NULL') THEN 'missing required field: status'
        WHEN t5 IN ('ABSENT', 'NULL') THEN 'missing required field: latency_ms (null or absent)'
        WHEN t1 <> 'VARCHAR' THEN 'wrong type for event_id: expected string'
        WHEN t2 <> 'VARCHAR' THEN 'wrong type for ts: expected RFC 3339 string'
        WHEN t3 <> 'VARCHAR' THEN 'wrong type for tool: expected string'
        WHEN t4 <> 'VARCHAR' THEN 'wrong type for status: expected string'
        WHEN t5 NOT IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN 'wrong type for latency_ms: expected number'
        WHEN v.event_id = '' THEN 'event_id must not be empty'
        WHEN v.tool = '' THEN 'tool must not be empty'
        -- toolctl.timeutil.RFC3339's pattern: hours 00-23, no leap second.
        WHEN NOT regexp_full_match(v.ts, '\d{4}-\d{2}-\d{2}[Tt ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)')
            THEN 'unparseable ts: expected RFC 3339 with offset, e.g. 2026-11-24T06:00:00Z'
        WHEN ts_parsed IS NULL
            THEN 'unparseable ts: expected RFC 3339 with offset, e.g. 2026-11-24T06:00:00Z'
        WHEN year(ts_parsed::TIMESTAMP) NOT BETWEEN 1 AND 9999  -- timeutil.OUT_OF_RANGE
            THEN 'ts out of range: it must fall within the years 0001-9999 in UTC'
        WHEN v.latency_ms < 0 THEN 'latency_ms must be >= 0'
        WHEN isinf(v.latency_ms) THEN 'latency_ms must be a finite number'
        WHEN v.status NOT IN ('ok', 'error') THEN 'status must be "ok" or "error"'
        WHEN t6 NOT IN ('ABSENT', 'NULL', 'BIGINT', 'UBIGINT') THEN 'wrong type for schema_version: expected integer'
        WHEN t6 IN ('BIGINT', 'UBIGINT') AND v.schema_version <> 1 THEN 'unsupported schema_version (this toolctl reads 1)'
        WHEN t7 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for trace_id: expected string'
        WHEN t8 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for span_id: expected string'
        WHEN t9 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for call_id: expected string'
        WHEN t10 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for session_id: expected string'
        WHEN t11 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for tenant: expected string'
        WHEN t12 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for user: expected string'
        WHEN t13 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for service: expected string'
        WHEN t14 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for version: expected string'
        WHEN t15 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for stage: expected string'
        WHEN v.stage NOT IN ('validate', 'authorize', 'execute') THEN 'stage must be validate, authorize or execute'
        WHEN t16 NOT IN ('ABSENT', 'NULL', 'BIGINT', 'UBIGINT') THEN 'wrong type for attempt: expected integer'
        WHEN v.attempt < 1 OR v.attempt > 2147483647 THEN 'attempt must be an integer from 1 to 2147483647'
        WHEN t17 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for idempotency_key: expected string'
        WHEN t18 NOT IN ('ABSENT', 'NULL', 'BIGINT', 'UBIGINT', 'DOUBLE') THEN 'wrong type for timeout_ms: expected number'
        WHEN v.timeout_ms < 0 THEN 'timeout_ms must be >= 0'
        WHEN isinf(v.timeout_ms) THEN 'timeout_ms must be a finite number'
        WHEN t19 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for error_code: expected string'
        WHEN t20 NOT IN ('ABSENT', 'NULL', 'VARCHAR') THEN 'wrong type for message: expected string'
        WHEN t21 NOT IN ('ABSENT', 'NULL', 'BOOLEAN') THEN 'wrong type for retryable: expected boolean'
        WHEN t22 NOT IN ('ABSENT', 'NULL', 'BIGINT', 'UBIGINT') THEN 'wrong type for http_status: expected integer'
        WHEN v.http_status < -2147483648 OR v.http_status > 2147483647 THEN 'http_status out of range'
        WHEN t23 NOT IN ('ABSENT', 'NULL', 'BIGINT', 'UBIGINT', 'DOUBLE') THEN 'wrong type for confidence: expected number'
        WHEN v.confidence < 0 OR v.confidence > 1 THEN 'confidence must be within [0, 1]'
        WHEN t24 NOT IN ('ABSENT', 'NULL', 'OBJECT') THEN 'wrong type for args: expected object'
        WHEN t25 NOT IN ('ABSENT', 'NULL', 'OBJECT') THEN 'wrong type for data: expected object'
        END AS reason,
        v, t, unknown
    FROM timed
)
SELECT
    c.line_no,
    CASE WHEN c.reason IS NOT NULL THEN rtrim(c.line, chr(13) || chr(10)) END AS raw,
    c.raw_bytes, c.reason,
    v.event_id,
    CASE WHEN c.reason IS NULL THEN c.ts_parsed::TIMESTAMP END AS ts,
    v.tool, v.status, v.latency_ms,
    1 AS schema_version,
    lower(v.trace_id) AS trace_id,
    lower(v.span_id) AS span_id,
    v.call_id, v.session_id, v.tenant, v."user" AS user_id, v.service, v.version, v.stage,
    coalesce(TRY_CAST(v.attempt AS INTEGER), 1) AS attempt,
    v.idempotency_key, v.timeout_ms, v.error_code, v.message, v.retryable,
    TRY_CAST(v.http_status AS INTEGER) AS http_status, v.confidence,
    v.args, v.data,
    -- Unknown fields, kept as an object in document order. Each is read by its JSON pointer
    -- (RFC 6901: ~ and / escaped, so any key works) into a map, ~2x cheaper than a JSON
    -- merge-patch of the whole line. A map cannot hold a key twice, so a line that repeats
    -- an unknown key takes the merge-patch (nulls delete exactly the known keys; the
    -- repeats are kept as written).
    CASE WHEN c.reason IS NULL AND len(c.unknown) > 0 AND len(c.unknown) = len(list_distinct(c.unknown))
         THEN to_json(map_from_entries(list_transform(c.unknown, lambda k: struct_pack(k := k,
                  v := json_extract(c.line, '/' || replace(replace(k, '~', '~0'), '/', '~1'))))))
         WHEN c.reason IS NULL AND len(c.unknown) > 0
         THEN nullif(json_merge_patch(c.line, '{
            "event_id":null,"ts":null,"tool":null,"status":null,"latency_ms":null,
            "schema_version":null,"trace_id":null,"span_id":null,"call_id":null,"session_id":null,
            "tenant":null,"user":null,"service":null,"version":null,"stage":null,"attempt":null,
            "idempotency_key":null,"timeout_ms":null,"error_code":null,"message":null,
            "retryable":null,"http_status":null,"confidence":null,"args":null,"data":null}'), '{}')
    END AS extra
FROM checked c;
