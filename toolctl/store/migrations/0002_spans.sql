-- 0002_spans: every OpenTelemetry span kept for forensics; tool spans counted as tool calls.
-- Append-only: never edit a migration once merged; add a new numbered file.
--
-- * (trace_id, span_id) is the PRIMARY KEY: re-sending a span stores nothing new.
-- * Ids are lowercase hex. start_ns / end_ns are exact epoch nanoseconds (UTC);
--   start_time is the same instant as TIMESTAMP_NS, for reading.
-- * resource / attributes / events / links are JSON in toolctl's type-preserving encoding
--   (docs/spans.md): strings, booleans, integers (exact, any size) and finite doubles
--   (always written with a '.' or an exponent) as JSON scalars; arrays as JSON arrays;
--   kvlists as objects; bytes as {"$bytes": base64}; NaN/±Infinity as {"$double": "NaN"}.
-- * The tool-call columns (tool_rule … result) are filled only when a rule recognised the
--   span as a tool call (tool_rule names the rule); they are NULL for other spans.
-- * auth_signal: this span itself shows an authentication/authorization failure. Whether a
--   tool call failed auth is resolved at query time (view below), because a child span may
--   arrive in a later request or file than its parent.

CREATE TABLE spans (
    trace_id                 VARCHAR NOT NULL,
    span_id                  VARCHAR NOT NULL,
    parent_span_id           VARCHAR,
    trace_state              VARCHAR,
    name                     VARCHAR NOT NULL,
    kind                     INTEGER NOT NULL,   -- OTLP SpanKind: 0 unspecified … 5 consumer
    start_ns                 BIGINT NOT NULL,
    end_ns                   BIGINT NOT NULL,
    start_time               TIMESTAMP_NS NOT NULL,
    status_code              INTEGER NOT NULL,   -- 0 unset, 1 ok, 2 error
    status_message           VARCHAR,
    flags                    BIGINT,
    service                  VARCHAR,            -- resource service.name
    service_version          VARCHAR,            -- resource service.version
    resource                 JSON,
    scope_name               VARCHAR,
    scope_version            VARCHAR,
    attributes               JSON,
    events                   JSON,
    links                    JSON,
    dropped_attributes_count BIGINT,
    dropped_events_count     BIGINT,
    dropped_links_count      BIGINT,
    auth_signal              BOOLEAN NOT NULL,
    tool_rule                VARCHAR,
    tool                     VARCHAR,
    status                   VARCHAR,
    latency_ms               DOUBLE,
    call_id                  VARCHAR,
    session_id               VARCHAR,
    tenant                   VARCHAR,
    user_id                  VARCHAR,
    attempt                  INTEGER,
    idempotency_key          VARCHAR,
    retryable                BOOLEAN,
    confidence               DOUBLE,
    error_code               VARCHAR,
    http_status              INTEGER,
    args                     JSON,
    result                   JSON,
    batch_id                 BIGINT NOT NULL,
    source                   VARCHAR,
    PRIMARY KEY (trace_id, span_id)
);

-- Every tool call the figures count: JSON-line events and tool spans, one definition of
-- auth_failure for both. For spans it is the span's own signal or a signal on any
-- descendant. The walk goes UP from the (rare) signalling spans to their ancestors, and only
-- among the spans of traces that hold a signal (auth_family, materialized once), so its cost
-- follows the number of auth failures; the rest is one scan of the tool spans.
CREATE OR REPLACE VIEW tool_calls AS
WITH RECURSIVE auth_family AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, auth_signal
    FROM spans
    WHERE trace_id IN (SELECT trace_id FROM spans WHERE auth_signal)
), auth_ancestor(trace_id, span_id) AS (
    SELECT trace_id, parent_span_id
    FROM auth_family
    WHERE auth_signal AND parent_span_id IS NOT NULL
    UNION
    SELECT f.trace_id, f.parent_span_id
    FROM auth_family f
    JOIN auth_ancestor a ON f.trace_id = a.trace_id AND f.span_id = a.span_id
    WHERE f.parent_span_id IS NOT NULL
)
SELECT event_id, ts, tool, status, latency_ms, call_id, tenant, user_id, service, version,
       stage, attempt, error_code, http_status, retryable, confidence, idempotency_key,
       timeout_ms, trace_id, 'event' AS origin,
       coalesce(http_status IN (401, 403), false)
         OR coalesce(error_code IN ('UNAUTHENTICATED', 'PERMISSION_DENIED'), false) AS auth_failure
FROM events
UNION ALL
SELECT s.trace_id || ':' || s.span_id AS event_id,
       make_timestamp(s.start_ns // 1000) AS ts,  -- truncated to µs, as events' ts is
       s.tool, s.status, s.latency_ms, s.call_id, s.tenant, s.user_id, s.service,
       s.service_version AS version, NULL::VARCHAR AS stage, s.attempt, s.error_code,
       s.http_status, s.retryable, s.confidence, s.idempotency_key, NULL::DOUBLE AS timeout_ms,
       s.trace_id, 'span' AS origin,
       s.auth_signal OR a.span_id IS NOT NULL AS auth_failure
FROM spans s
LEFT JOIN (SELECT DISTINCT trace_id, span_id FROM auth_ancestor) a
  ON a.trace_id = s.trace_id AND a.span_id = s.span_id
WHERE s.tool_rule IS NOT NULL;
