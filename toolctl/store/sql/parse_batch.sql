-- parse_batch: validate one batch of raw JSON lines against schema v1, in bulk.
-- Input:  `_raw` (an Arrow table) with line_no BIGINT, line VARCHAR, pre_reason VARCHAR
--         (set when Python already rejected the line: not UTF-8, too long), raw_bytes BIGINT.
-- Output: temp table `_parsed`: line_no, raw, raw_bytes, reason (NULL = valid) and the typed
--         event columns. Blank lines are dropped here (they are not counted as lines).
-- The rules mirror toolctl.models.ToolCallEvent; tests/test_models_parity.py holds them equal.
CREATE OR REPLACE TEMP TABLE _parsed AS
WITH src AS (
    SELECT line_no, pre_reason, raw_bytes,
           -- CRLF endings and a UTF-8 byte-order mark are transport noise, not content.
           ltrim(rtrim(line, chr(13)), chr(65279)) AS line
    FROM _raw
), nonblank AS (
    SELECT * FROM src
    WHERE pre_reason IS NOT NULL OR trim(line, ' ' || chr(9) || chr(13) || chr(12) || chr(11)) <> ''
), doc AS (
    SELECT *, CASE WHEN pre_reason IS NULL AND json_valid(line) THEN json_type(line) END AS doc_type
    FROM nonblank
), fields AS (
    SELECT *,
        CASE WHEN doc_type = 'OBJECT' THEN json_transform(line, '{
            "event_id":"JSON","ts":"JSON","tool":"JSON","status":"JSON","latency_ms":"JSON",
            "schema_version":"JSON","trace_id":"JSON","span_id":"JSON","call_id":"JSON",
            "session_id":"JSON","tenant":"JSON","user":"JSON","service":"JSON","version":"JSON",
            "stage":"JSON","attempt":"JSON","idempotency_key":"JSON","timeout_ms":"JSON",
            "error_code":"JSON","message":"JSON","retryable":"JSON","http_status":"JSON",
            "confidence":"JSON","args":"JSON","data":"JSON"}') END AS v
    FROM doc
), typed AS (
    -- json_type: NULL BOOLEAN BIGINT UBIGINT DOUBLE VARCHAR ARRAY OBJECT; absent key -> NULL
    SELECT *,
        coalesce(json_type(v.event_id), 'NULL') AS t_event_id,
        coalesce(json_type(v.ts), 'NULL') AS t_ts,
        coalesce(json_type(v.tool), 'NULL') AS t_tool,
        coalesce(json_type(v.status), 'NULL') AS t_status,
        coalesce(json_type(v.latency_ms), 'NULL') AS t_latency_ms,
        coalesce(json_type(v.schema_version), 'NULL') AS t_schema_version,
        coalesce(json_type(v.trace_id), 'NULL') AS t_trace_id,
        coalesce(json_type(v.span_id), 'NULL') AS t_span_id,
        coalesce(json_type(v.call_id), 'NULL') AS t_call_id,
        coalesce(json_type(v.session_id), 'NULL') AS t_session_id,
        coalesce(json_type(v.tenant), 'NULL') AS t_tenant,
        coalesce(json_type(v."user"), 'NULL') AS t_user,
        coalesce(json_type(v.service), 'NULL') AS t_service,
        coalesce(json_type(v.version), 'NULL') AS t_version,
        coalesce(json_type(v.stage), 'NULL') AS t_stage,
        coalesce(json_type(v.attempt), 'NULL') AS t_attempt,
        coalesce(json_type(v.idempotency_key), 'NULL') AS t_idempotency_key,
        coalesce(json_type(v.timeout_ms), 'NULL') AS t_timeout_ms,
        coalesce(json_type(v.error_code), 'NULL') AS t_error_code,
        coalesce(json_type(v.message), 'NULL') AS t_message,
        coalesce(json_type(v.retryable), 'NULL') AS t_retryable,
        coalesce(json_type(v.http_status), 'NULL') AS t_http_status,
        coalesce(json_type(v.confidence), 'NULL') AS t_confidence,
        coalesce(json_type(v.args), 'NULL') AS t_args,
        coalesce(json_type(v.data), 'NULL') AS t_data
    FROM fields
), vals AS (
    SELECT *,
        CASE WHEN t_ts = 'VARCHAR' THEN v.ts ->> '$' END AS ts_text,
        CASE WHEN t_latency_ms IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST(v.latency_ms AS DOUBLE) END AS n_latency_ms,
        CASE WHEN t_timeout_ms IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST(v.timeout_ms AS DOUBLE) END AS n_timeout_ms,
        CASE WHEN t_confidence IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST(v.confidence AS DOUBLE) END AS n_confidence,
        CASE WHEN t_attempt IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(v.attempt AS INTEGER) END AS n_attempt,
        CASE WHEN t_http_status IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(v.http_status AS INTEGER) END AS n_http_status,
        CASE WHEN t_schema_version IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(v.schema_version AS BIGINT) END AS n_schema_version,
        CASE WHEN t_status = 'VARCHAR' THEN v.status ->> '$' END AS s_status,
        CASE WHEN t_stage = 'VARCHAR' THEN v.stage ->> '$' END AS s_stage
    FROM typed
), parsed AS (
    SELECT *,
        CASE WHEN regexp_full_match(ts_text, '\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})')
             -- DuckDB parses upper-case T/Z and at most 6 fractional digits: truncate, as Python does.
             THEN TRY_CAST(regexp_replace(upper(ts_text), '(\.\d{6})\d+', '\1') AS TIMESTAMPTZ)::TIMESTAMP
        END AS ts_utc
    FROM vals
), judged AS (
    SELECT *,
        CASE
        WHEN pre_reason IS NOT NULL THEN pre_reason
        WHEN doc_type IS NULL THEN 'invalid JSON'
        WHEN doc_type <> 'OBJECT' THEN 'not a JSON object (got ' || lower(doc_type) || ')'
        WHEN t_event_id = 'NULL' THEN 'missing required field: event_id'
        WHEN t_ts = 'NULL' THEN 'missing required field: ts'
        WHEN t_tool = 'NULL' THEN 'missing required field: tool'
        WHEN t_status = 'NULL' THEN 'missing required field: status'
        WHEN t_latency_ms = 'NULL' THEN 'missing required field: latency_ms (null or absent)'
        WHEN t_event_id <> 'VARCHAR' THEN 'wrong type for event_id: expected string'
        WHEN t_ts <> 'VARCHAR' THEN 'wrong type for ts: expected RFC 3339 string'
        WHEN t_tool <> 'VARCHAR' THEN 'wrong type for tool: expected string'
        WHEN t_status <> 'VARCHAR' THEN 'wrong type for status: expected string'
        WHEN t_latency_ms NOT IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN 'wrong type for latency_ms: expected number'
        WHEN (v.event_id ->> '$') = '' THEN 'event_id must not be empty'
        WHEN (v.tool ->> '$') = '' THEN 'tool must not be empty'
        WHEN ts_utc IS NULL THEN 'unparseable ts: expected RFC 3339 with offset, e.g. 2026-11-24T06:00:00Z'
        WHEN n_latency_ms < 0 THEN 'latency_ms must be >= 0'
        WHEN s_status NOT IN ('ok', 'error') THEN 'status must be "ok" or "error"'
        WHEN t_schema_version NOT IN ('NULL', 'BIGINT', 'UBIGINT') THEN 'wrong type for schema_version: expected integer'
        WHEN t_schema_version <> 'NULL' AND n_schema_version IS DISTINCT FROM 1 THEN 'unsupported schema_version (this toolctl reads 1)'
        WHEN t_trace_id NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for trace_id: expected string'
        WHEN t_span_id NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for span_id: expected string'
        WHEN t_call_id NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for call_id: expected string'
        WHEN t_session_id NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for session_id: expected string'
        WHEN t_tenant NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for tenant: expected string'
        WHEN t_user NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for user: expected string'
        WHEN t_service NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for service: expected string'
        WHEN t_version NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for version: expected string'
        WHEN t_stage NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for stage: expected string'
        WHEN s_stage NOT IN ('validate', 'authorize', 'execute') THEN 'stage must be validate, authorize or execute'
        WHEN t_attempt NOT IN ('NULL', 'BIGINT', 'UBIGINT') THEN 'wrong type for attempt: expected integer'
        WHEN t_attempt <> 'NULL' AND (n_attempt IS NULL OR n_attempt < 1) THEN 'attempt must be an integer >= 1'
        WHEN t_idempotency_key NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for idempotency_key: expected string'
        WHEN t_timeout_ms NOT IN ('NULL', 'BIGINT', 'UBIGINT', 'DOUBLE') THEN 'wrong type for timeout_ms: expected number'
        WHEN n_timeout_ms < 0 THEN 'timeout_ms must be >= 0'
        WHEN t_error_code NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for error_code: expected string'
        WHEN t_message NOT IN ('NULL', 'VARCHAR') THEN 'wrong type for message: expected string'
        WHEN t_retryable NOT IN ('NULL', 'BOOLEAN') THEN 'wrong type for retryable: expected boolean'
        WHEN t_http_status NOT IN ('NULL', 'BIGINT', 'UBIGINT') THEN 'wrong type for http_status: expected integer'
        WHEN t_http_status <> 'NULL' AND n_http_status IS NULL THEN 'http_status out of range'
        WHEN t_confidence NOT IN ('NULL', 'BIGINT', 'UBIGINT', 'DOUBLE') THEN 'wrong type for confidence: expected number'
        WHEN n_confidence < 0 OR n_confidence > 1 THEN 'confidence must be within [0, 1]'
        WHEN t_args NOT IN ('NULL', 'OBJECT') THEN 'wrong type for args: expected object'
        WHEN t_data NOT IN ('NULL', 'OBJECT') THEN 'wrong type for data: expected object'
        END AS reason
    FROM parsed
)
SELECT
    line_no,
    line AS raw,
    coalesce(raw_bytes, strlen(line)) AS raw_bytes,
    reason,
    v.event_id ->> '$' AS event_id,
    ts_utc AS ts,
    v.tool ->> '$' AS tool,
    s_status AS status,
    n_latency_ms AS latency_ms,
    1 AS schema_version,
    lower(v.trace_id ->> '$') AS trace_id,
    lower(v.span_id ->> '$') AS span_id,
    v.call_id ->> '$' AS call_id,
    v.session_id ->> '$' AS session_id,
    v.tenant ->> '$' AS tenant,
    v."user" ->> '$' AS user_id,
    v.service ->> '$' AS service,
    v.version ->> '$' AS version,
    s_stage AS stage,
    coalesce(n_attempt, 1) AS attempt,
    v.idempotency_key ->> '$' AS idempotency_key,
    n_timeout_ms AS timeout_ms,
    v.error_code ->> '$' AS error_code,
    v.message ->> '$' AS message,
    CASE WHEN t_retryable = 'BOOLEAN' THEN TRY_CAST(v.retryable AS BOOLEAN) END AS retryable,
    n_http_status AS http_status,
    n_confidence AS confidence,
    CASE WHEN t_args = 'OBJECT' THEN v.args END AS args,
    CASE WHEN t_data = 'OBJECT' THEN v.data END AS data,
    -- Unknown fields: JSON merge-patch with nulls deletes exactly the known keys.
    CASE WHEN reason IS NULL THEN nullif(json_merge_patch(line, '{
        "event_id":null,"ts":null,"tool":null,"status":null,"latency_ms":null,
        "schema_version":null,"trace_id":null,"span_id":null,"call_id":null,"session_id":null,
        "tenant":null,"user":null,"service":null,"version":null,"stage":null,"attempt":null,
        "idempotency_key":null,"timeout_ms":null,"error_code":null,"message":null,
        "retryable":null,"http_status":null,"confidence":null,"args":null,"data":null}'), '{}') END AS extra
FROM judged;
