"""`toolctl serve` as operators run it: a real subprocess on an ephemeral port, real HTTP."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from tests.conftest import REPO, run_toolctl

TOKEN = "t0ps3cret-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A running `toolctl serve` subprocess for one store."""

    def __init__(self, db: Path, *args: str, env: dict | None = None):
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "toolctl", "--db", str(db), "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=REPO,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.proc.stderr.read().decode()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200 and self.discovery.exists():
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("serve did not become ready")
            time.sleep(0.05)

    @property
    def discovery(self) -> Path:
        return self.db.with_name(self.db.name + ".serve.json")

    def post(self, path: str, content: bytes, headers: dict | None = None, token: str | None = None):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(self.url + path, content=content, headers=headers, timeout=60)

    def stop(self) -> int:
        """SIGTERM and wait: the exit code (what it wrote to stderr: ``proc_stderr``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, self.proc_stderr = self.proc.communicate(timeout=60)
            return self.proc.returncode
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def serve(tmp_path):
    started: list[Served] = []

    def start(*args: str, db: Path | None = None, env: dict | None = None) -> Served:
        s = Served(db or tmp_path / "store.duckdb", *args, env=env)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.kill()


def table_counts(db: Path) -> dict[str, int]:
    """Rows per table, read straight from the file (the server must be stopped)."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]  # fixed names
                for t in ("events", "spans", "rejects", "batches")}
    finally:
        conn.close()


NOTHING = {"events": 0, "spans": 0, "rejects": 0, "batches": 0}


def ev(i: int, **kw) -> dict:
    doc = {"event_id": f"e{i}", "ts": "2026-11-24T06:00:00Z", "tool": "search", "status": "ok",
           "latency_ms": float(i)}
    doc.update(kw)
    return doc


def ndjson(docs) -> bytes:
    return "".join((d if isinstance(d, str) else json.dumps(d)) + "\n" for d in docs).encode()


NDJSON = {"Content-Type": "application/x-ndjson"}


# -- JSON lines ---------------------------------------------------------------------------------
def test_tool_calls_endpoint_counts_each_line_once_plain_and_gzip(serve, tmp_path):
    s = serve()
    body = ndjson([ev(1), ev(2), "{not json", ev(3, status="maybe"), ev(1)])
    r = s.post("/v1/tool-calls", body, NDJSON)
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("lines", "accepted", "duplicates", "rejected")} == \
        {"lines": 5, "accepted": 2, "duplicates": 1, "rejected": 2}
    r = s.post("/v1/tool-calls", gzip.compress(ndjson([ev(2), ev(4)])), {**NDJSON, "Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["accepted"] == 1 and r.json()["duplicates"] == 1
    assert s.stop() == 0
    counts = table_counts(s.db)
    assert counts["events"] == 3 and counts["rejects"] == 2


# -- OTLP logs ----------------------------------------------------------------------------------
def _kv(d: dict) -> dict:
    def val(v):
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": v}
    return {"kvlistValue": {"values": [{"key": k, "value": val(v)} for k, v in d.items()]}}


def test_logs_with_event_bodies_are_stored_and_other_bodies_are_partial_success(serve):
    s = serve()
    records = [{"body": _kv(ev(1, latency_ms=12.5))},
               {"body": {"stringValue": json.dumps(ev(2))}},
               {"body": {"stringValue": "just a message"}},
               {"body": _kv({"event_id": "e3", "tool": "x"})}]  # an object, but not a valid event
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    r = s.post("/v1/logs", json.dumps(doc).encode(), {"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedLogRecords"] == 2
    assert "logRecords[2]" in r.json()["partialSuccess"]["errorMessage"]

    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.common.v1 import common_pb2

    req = logs_service_pb2.ExportLogsServiceRequest()
    rec = req.resource_logs.add().scope_logs.add().log_records.add()
    for k, v in ev(4).items():
        kv = rec.body.kvlist_value.values.add(key=k)
        if isinstance(v, float):
            kv.value.double_value = v
        else:
            kv.value.string_value = v
    r = s.post("/v1/logs", gzip.compress(req.SerializeToString()),
               {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    resp = logs_service_pb2.ExportLogsServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_log_records == 0
    assert common_pb2  # the AnyValue module the body came from
    assert s.stop() == 0
    conn = duckdb.connect(str(s.db), read_only=True)
    rows = conn.execute("SELECT event_id, latency_ms FROM events ORDER BY event_id").fetchall()
    conn.close()
    assert rows == [("e1", 12.5), ("e2", 2.0), ("e4", 4.0)]


def test_a_log_record_whose_body_is_no_anyvalue_costs_only_that_record(serve):
    # Found by fuzzing /v1/logs: one record with a malformed body refused the whole request
    # (400, final: every valid event in it lost) with Python's own words ("'str' object has
    # no attribute 'get'"), and a boolValue "false" was read as true.
    s = serve()
    bad_bodies = ["not an AnyValue", {"kvlistValue": "x"}, {"kvlistValue": {"values": [5]}},
                  {"intValue": "twelve"}, {"arrayValue": {"values": {}}}, _kv(ev(3))]
    bad_bodies[-1]["kvlistValue"]["values"].append({"key": "retryable", "value": {"boolValue": "false"}})
    records = [{"body": _kv(ev(1))}, *({"body": b} for b in bad_bodies), "not a record",
               {"body": {"stringValue": json.dumps(ev(2))}}]
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    r = s.post("/v1/logs", json.dumps(doc).encode(), {"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == 7
    assert partial["errorMessage"].startswith(
        "7 log record(s) rejected; first: resourceLogs[0].scopeLogs[0].logRecords[1]: body is not an OTLP AnyValue")
    # The request's own shape is still a 400 that says where it is wrong.
    for shape, where in [({"resourceLogs": {}}, "resourceLogs is not an array (dict)"),
                         ({"resourceLogs": [{"scopeLogs": [7]}]}, "resourceLogs[0].scopeLogs[0] is not an object (int)"),
                         ([], "the top level is not an object (list)")]:
        r = s.post("/v1/logs", json.dumps(shape).encode(), {"Content-Type": "application/json"})
        assert (r.status_code, r.json()["message"]) == (
            400, f"body is not an ExportLogsServiceRequest (OTLP/JSON): {where}")
    assert s.stop() == 0
    conn = duckdb.connect(str(s.db), read_only=True)
    events = conn.execute("SELECT event_id FROM events ORDER BY event_id").fetchall()
    reasons = [x for (x,) in conn.execute("SELECT reason FROM rejects ORDER BY line_no").fetchall()]
    conn.close()
    assert events == [("e1",), ("e2",)]
    assert len(reasons) == 7 and "logRecords[7]: is not an object (str)" in reasons[-1]
    assert not any("attribute 'get'" in x for x in reasons)


# -- OTLP traces --------------------------------------------------------------------------------
def _otlp_json_span(trace: str, span: str, start: int, end: int, **attrs) -> dict:
    return {"traceId": trace, "spanId": span, "name": "execute_tool", "kind": 1,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}


def test_traces_json_gzip_stores_spans_and_reports_rejected_ones(serve):
    s = serve()
    t0 = 1_764_000_000_000_000_000
    good = _otlp_json_span("ab" * 16, "cd" * 8, t0, t0 + 7_000_000,
                           **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup",
                              "gen_ai.tool.call.id": "call-1"})
    bad = _otlp_json_span("zz", "cd" * 8, t0, t0 + 1, **{"gen_ai.tool.name": "x"})
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                              "scopeSpans": [{"spans": [good, bad]}]}]}
    r = s.post("/v1/traces", gzip.compress(json.dumps(doc).encode()),
               {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.json()["partialSuccess"]["rejectedSpans"] == 1
    assert r.json()["partialSuccess"]["errorMessage"]
    # The same span again: stored once.
    r = s.post("/v1/traces", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [good]}]}]}).encode(),
               {"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json() == {}
    stats = run_toolctl("--db", s.db, "stats", "--format", "json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)[0]["calls"] == 1 and json.loads(stats.stdout)[0]["p50_ms"] == 7.0
    assert s.stop() == 0
    assert table_counts(s.db)["spans"] == 1



def test_hostile_span_values_never_fail_the_request_and_cost_at_most_their_own_span(serve):
    """Found by fuzzing: each of these answered 500 and lost every span of its request."""
    s = serve()
    t0 = 1_764_000_000_000_000_000
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}

    def post(*spans, **rs):
        doc = {"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}], **rs}]}
        return s.post("/v1/traces", json.dumps(doc).encode(), {"Content-Type": "application/json"})

    def sp(i: int, **fields) -> dict:
        return {**_otlp_json_span("ab" * 16, f"{i:016x}", t0, t0 + 5_000_000, **tool), **fields}

    # An unpaired surrogate escape in a span's strings: that span is refused, the rest stored.
    r = post(sp(1, name="\ud800"), sp(2))
    assert r.status_code == 200, r.text
    assert r.json()["partialSuccess"]["rejectedSpans"] == 1
    assert "surrogate" in r.json()["partialSuccess"]["errorMessage"]
    # Numbers beyond what their fields can hold (protobuf's types bound them, JSON does not).
    for i, fields in enumerate([{"kind": 2**40}, {"status": {"code": 2**40}}, {"flags": 2**64},
                                {"droppedAttributesCount": 2**64}], start=3):
        r = post(sp(i, **fields))
        assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedSpans"] == 1, (fields, r.text)
    # Attribute values the tool-call mapping cannot use are ignored: the span is kept.
    odd = [("http.response.status_code", {"stringValue": "+-401"}),
           ("http.status_code", {"stringValue": "\u00b2"}),
           ("toolctl.attempt", {"stringValue": "9" * 5000}),
           ("gen_ai.tool.call.id", {"arrayValue": {"values": [{"bytesValue": "AAE="}]}}),
           ("error.type", {"kvlistValue": {"values": [{"key": "b", "value": {"bytesValue": "AAE="}}]}}),
           # JSON arguments with half an emoji: DuckDB refuses it as JSON, so it stays a string
           ("gen_ai.tool.call.arguments", {"stringValue": '{"q": "smile \\ud83d"}'})]
    for i, (key, value) in enumerate(odd, start=10):
        span = sp(i)
        span["attributes"].append({"key": key, "value": value})
        r = post(span)
        assert r.status_code == 200 and r.json() == {}, (key, r.text)
    # A refused resource counts every span in it, also under the snake_case alias.
    r = post(sp(20), sp(21), sp(22), resource="not an object")
    assert r.json()["partialSuccess"]["rejectedSpans"] == 3
    doc = {"resourceSpans": [{"resource": "x", "scope_spans": [{"spans": [sp(23), sp(24), sp(25)]}]}]}
    r = s.post("/v1/traces", json.dumps(doc).encode(), {"Content-Type": "application/json"})
    assert r.json()["partialSuccess"]["rejectedSpans"] == 3
    assert r.json()["partialSuccess"]["errorMessage"].startswith("3 span(s) rejected")
    # Undecodable bodies are 400, not 500.
    deep = b"[" * 100_000 + b"]" * 100_000
    assert s.post("/v1/traces", deep, {"Content-Type": "application/json"}).status_code == 400
    assert s.post("/v1/logs", deep, {"Content-Type": "application/json"}).status_code == 400
    logs = b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":1e400}}]}]}]}'
    r = s.post("/v1/logs", logs, {"Content-Type": "application/json"})  # that record only
    assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedLogRecords"] == 1, r.text
    r = s.post("/v1/tool-calls", ndjson([ev(1), ev(2)]), {**NDJSON, "X-Toolctl-First-Line": str(2**63 - 1)})
    assert r.status_code == 400 and "X-Toolctl-First-Line" in r.json()["message"]
    # A client that hangs up before its body is complete: nothing to answer, no traceback.
    with socket.create_connection(("127.0.0.1", s.port)) as c:
        c.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"resourceSpans\"")
    assert httpx.get(s.url + "/healthz").status_code == 200
    assert s.stop() == 0
    assert b"Traceback" not in s.proc_stderr, s.proc_stderr.decode()[-2000:]
    stored = duckdb.connect(str(s.db), read_only=True)
    try:
        spans = stored.execute("SELECT count(*), count(*) FILTER (WHERE attempt = 1),"
                               " count(*) FILTER (WHERE http_status IS NULL) FROM spans").fetchall()[0]
        args = stored.execute("SELECT args FROM spans WHERE span_id = ?", [f"{15:016x}"]).fetchall()[0][0]
    finally:
        stored.close()
    assert spans == (1 + len(odd), 1 + len(odd), 1 + len(odd))
    assert json.loads(args) == '{"q": "smile \\ud83d"}'


# -- refusals: status code, clear message, nothing stored ----------------------------------------
def test_requests_without_the_token_get_401_and_store_nothing(serve):
    s = serve(env={"TOOLCTL_TOKEN": TOKEN})
    body = ndjson([ev(1)])
    assert s.post("/v1/tool-calls", body, NDJSON).status_code == 401
    assert s.post("/v1/tool-calls", body, NDJSON, token="wrong").status_code == 401
    assert s.post("/v1/traces", b"{}", {"Content-Type": "application/json"}).status_code == 401
    assert s.post("/v1/logs", b"{}", {"Content-Type": "application/json"}).status_code == 401
    assert s.post("/api/v1/read/stats", b"{}", {"Content-Type": "application/json"}).status_code == 401
    assert httpx.get(s.url + "/healthz").status_code == 200  # readiness needs no token
    # The CLI without the token is refused with a clear message, not a lock error.
    res = run_toolctl("--db", s.db, "stats", "--format", "json")
    assert res.returncode == 1 and "401" in res.stderr and "TOOLCTL_TOKEN" in res.stderr
    assert s.stop() == 0
    assert table_counts(s.db) == NOTHING


def test_token_file_is_accepted_and_cli_reads_with_the_same_token(serve, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    s = serve("--token-file", str(token_file))
    assert s.post("/v1/tool-calls", ndjson([ev(5)]), NDJSON, token=TOKEN).status_code == 200
    res = run_toolctl("--db", s.db, "stats", "--format", "json", env={"TOOLCTL_TOKEN": TOKEN})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["calls"] == 1
    assert s.stop() == 0


def test_oversize_bodies_and_gzip_bombs_get_413_and_store_nothing(serve):
    limit = 64 * 1024
    s = serve("--max-body-bytes", str(limit))
    big = ndjson([ev(i, message="x" * 100) for i in range(1000)])  # ~150 KB
    assert len(big) > limit
    r = s.post("/v1/tool-calls", big, NDJSON)
    assert r.status_code == 413 and "--max-body-bytes" in r.json()["message"]
    bomb = gzip.compress(b"\n" * (50 * 1024 * 1024))  # 50 MiB of newlines in ~50 KB
    assert len(bomb) < limit
    r = s.post("/v1/tool-calls", bomb, {**NDJSON, "Content-Encoding": "gzip"})
    assert r.status_code == 413
    r = s.post("/v1/traces", bomb, {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert r.status_code == 413
    from google.rpc import status_pb2

    assert "limit" in status_pb2.Status.FromString(r.content).message
    # Chunked upload (no Content-Length) is bounded while reading too.
    r = httpx.post(s.url + "/v1/tool-calls", content=iter([big[:40_000], big[40_000:]]), headers=NDJSON)
    assert r.status_code == 413
    assert httpx.get(s.url + "/healthz").status_code == 200  # still serving
    assert s.stop() == 0
    assert table_counts(s.db) == NOTHING


def test_the_sdks_deflate_compression_is_stored_like_gzip_and_bounded_like_it(serve):
    # The OpenTelemetry SDK exporters offer deflate besides gzip (OTEL_EXPORTER_OTLP_COMPRESSION=
    # deflate); the collector answered 415, which the exporter takes as final: every span dropped.
    import zlib

    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.trace import SpanContext, TraceFlags

    limit = 64 * 1024
    s = serve("--max-body-bytes", str(limit))
    t0 = 1_767_225_600_000_000_000
    spans = [ReadableSpan(name="execute_tool lookup", context=SpanContext(0xAB, i + 1, False, TraceFlags(1)),
                          start_time=t0 + i, end_time=t0 + i + (i + 1) * 1_000_000,
                          attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"},
                          resource=Resource.create({"service.name": "gw"})) for i in range(5)]
    exporter = OTLPSpanExporter(endpoint=s.url + "/v1/traces", compression=Compression.Deflate, timeout=30)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    # Raw deflate (no zlib header), as some clients send it under that name, on JSON lines.
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = raw.compress(ndjson([ev(1), ev(2)])) + raw.flush()
    r = s.post("/v1/tool-calls", body, {**NDJSON, "Content-Encoding": "deflate"})
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    # Bounded and checked as gzip is: a bomb is 413, a cut or corrupt body 400, nothing stored.
    pb = {"Content-Type": "application/x-protobuf", "Content-Encoding": "deflate"}
    bomb = zlib.compress(b"\0" * (50 * 1024 * 1024), 9)
    assert len(bomb) < limit and s.post("/v1/traces", bomb, pb).status_code == 413
    assert s.post("/v1/traces", zlib.compress(b"\n" * 100)[:-6], pb).status_code == 400
    assert s.post("/v1/traces", b"\x78\x9c not deflate", pb).status_code == 400
    r = s.post("/v1/traces", b"x", {**pb, "Content-Encoding": "br"})
    assert r.status_code == 415
    assert s.stop() == 0
    conn = duckdb.connect(str(s.db), read_only=True)
    latencies = conn.execute("SELECT latency_ms FROM spans ORDER BY span_id").fetchall()
    events = conn.execute("SELECT count(*) FROM events").fetchall()
    conn.close()
    assert latencies == [(float(i + 1),) for i in range(5)] and events == [(2,)]


def test_malformed_payloads_get_400_with_a_clear_message_and_store_nothing(serve):
    s = serve()
    r = s.post("/v1/traces", b"\xff\xfe not protobuf", {"Content-Type": "application/x-protobuf"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/x-protobuf"
    from google.rpc import status_pb2

    assert status_pb2.Status.FromString(r.content).message
    r = s.post("/v1/traces", b"{not json", {"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = s.post("/v1/logs", b"[1, 2]", {"Content-Type": "application/json"})
    assert r.status_code == 400 and "ExportLogsServiceRequest" in r.json()["message"]
    r = s.post("/v1/tool-calls", b"\x1f\x8b\x08 truncated", {**NDJSON, "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["message"]
    assert s.stop() == 0
    assert table_counts(s.db) == NOTHING


def test_wrong_content_type_gets_415_and_stores_nothing(serve):
    s = serve()
    assert s.post("/v1/traces", b"{}", {"Content-Type": "text/html"}).status_code == 415
    assert s.post("/v1/logs", b"{}", {"Content-Type": "application/xml"}).status_code == 415
    assert s.post("/v1/tool-calls", ndjson([ev(1)]), {"Content-Type": "image/png"}).status_code == 415
    r = s.post("/v1/tool-calls", ndjson([ev(1)]), {**NDJSON, "Content-Encoding": "br"})
    assert r.status_code == 415 and "Content-Encoding" in r.json()["message"]
    assert s.stop() == 0
    assert table_counts(s.db) == NOTHING


def test_binding_a_non_loopback_address_without_a_token_exits_2(tmp_path):
    res = run_toolctl("--db", tmp_path / "s.duckdb", "serve", "--host", "0.0.0.0", "--port", free_port())
    assert res.returncode == 2
    assert "refusing to bind 0.0.0.0 without a token" in res.stderr
    assert not (tmp_path / "s.duckdb").exists()


# -- durability and lifecycle -------------------------------------------------------------------
@pytest.mark.slow
def test_kill_9_after_2xx_loses_nothing(serve, tmp_path):
    s = serve()
    acked = set()
    for n in range(5):
        docs = [ev(n * 100 + i) for i in range(100)]
        r = s.post("/v1/tool-calls", ndjson(docs), NDJSON)
        assert r.status_code == 200 and r.json()["accepted"] == 100
        acked.update(d["event_id"] for d in docs)
    s.kill()  # SIGKILL: no shutdown, no flush
    assert s.proc.returncode == -signal.SIGKILL
    assert s.discovery.exists()  # left behind, and must be ignored from now on
    res = run_toolctl("--db", s.db, "stats", "--format", "json")  # stale file → local read
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["calls"] == len(acked)
    s2 = serve()  # restart on the same store
    r = s2.post("/v1/tool-calls", ndjson([ev(1), ev(10_000)]), NDJSON)
    assert r.json()["duplicates"] == 1 and r.json()["accepted"] == 1
    assert s2.stop() == 0
    conn = duckdb.connect(str(s.db), read_only=True)
    ids = {r[0] for r in conn.execute("SELECT event_id FROM events").fetchall()}
    conn.close()
    assert ids == acked | {"e10000"}


def test_sigterm_exits_0_and_removes_the_discovery_file(serve):
    s = serve()
    doc = json.loads(s.discovery.read_text())
    assert doc["pid"] == s.proc.pid and doc["url"] == s.url
    assert s.post("/v1/tool-calls", ndjson([ev(1)]), NDJSON).status_code == 200
    assert s.stop() == 0
    assert not s.discovery.exists()
    assert table_counts(s.db)["events"] == 1


def test_a_second_serve_on_the_same_store_is_refused(serve):
    s = serve()
    res = run_toolctl("--db", s.db, "serve", "--port", free_port())
    assert res.returncode == 4 and f"already served by pid {s.proc.pid}" in res.stderr
    assert s.stop() == 0


def test_full_queue_answers_503_with_retry_after_and_stores_that_request_nothing(serve):
    s = serve("--queue-max-items", "1", "--max-body-bytes", str(128 * 1024 * 1024))
    big = ndjson([ev(i, args={"q": "x" * 200}) for i in range(60_000)])
    results = {}

    def send_big():
        results["big"] = s.post("/v1/tool-calls", big, NDJSON)

    t = threading.Thread(target=send_big)
    t.start()
    deadline = time.monotonic() + 60
    while httpx.get(s.url + "/healthz").json()["queue_items"] < 1:  # the big one is being written
        assert time.monotonic() < deadline and t.is_alive()
        time.sleep(0.005)
    r = s.post("/v1/tool-calls", ndjson([ev(999_999)]), NDJSON)
    t.join()
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert results["big"].status_code == 200 and results["big"].json()["accepted"] == 60_000
    assert s.stop() == 0
    conn = duckdb.connect(str(s.db), read_only=True)
    assert conn.execute("SELECT count(*) FROM events WHERE event_id = 'e999999'").fetchall() == [(0,)]
    assert conn.execute("SELECT count(*) FROM events").fetchall() == [(60_000,)]
    conn.close()


def test_cli_start_up_does_not_import_the_server_stack():
    code = ("import sys; from toolctl.cli import app; "
            "print(','.join(m for m in ('uvicorn', 'starlette', 'httpx', 'collector.server') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == ""


def test_sigterm_during_a_write_answers_it_and_stores_it_before_exiting_0(serve):
    s = serve("--max-body-bytes", str(64 * 1024 * 1024))
    big = ndjson([ev(i, args={"q": "x" * 200}) for i in range(60_000)])
    results = {}
    t = threading.Thread(target=lambda: results.update(big=s.post("/v1/tool-calls", big, NDJSON)))
    t.start()
    deadline = time.monotonic() + 60
    while httpx.get(s.url + "/healthz").json()["queue_items"] < 1:
        assert time.monotonic() < deadline and t.is_alive()
        time.sleep(0.005)
    s.proc.send_signal(signal.SIGTERM)
    t.join()
    assert results["big"].status_code == 200 and results["big"].json()["accepted"] == 60_000
    assert s.stop() == 0
    assert not s.discovery.exists()
    assert table_counts(s.db)["events"] == 60_000


@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")  # upstream's own move
def test_a_log_record_emitted_inside_a_span_carries_that_span_into_its_event(serve):
    # The SDK's logging handler puts the active span's ids on the log record, not in its
    # body: a gateway logging its envelope as JSON inside the tool span sends exactly that.
    # The event took its trace_id/span_id only from the body, so it was linked to no trace
    # and counted a second time next to the span it records (README: attempts).
    import logging

    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider

    s = serve()
    logs = LoggerProvider()
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=s.url + "/v1/logs")))
    log = logging.getLogger("gateway-under-test")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(LoggingHandler(logger_provider=logs))
    tracer = TracerProvider().get_tracer("gw")
    with tracer.start_as_current_span("execute_tool search") as span:
        log.info(json.dumps(ev(1)))  # no ids in the body: the record's are taken
        log.info(json.dumps(ev(2, trace_id="ab" * 16, span_id="cd" * 8)))  # the body's win
    log.info(json.dumps(ev(3)))  # no active span: none
    logs.shutdown()
    ctx = span.get_span_context()
    assert s.stop() == 0
    conn = duckdb.connect(str(s.db), read_only=True)
    rows = conn.execute("SELECT event_id, trace_id, span_id FROM events ORDER BY event_id").fetchall()
    conn.close()
    assert rows == [("e1", format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")),
                    ("e2", "ab" * 16, "cd" * 8), ("e3", None, None)]


def test_log_record_trace_context_in_otlp_json_fills_only_absent_ids(serve):
    s = serve()
    records = [{"traceId": "0AF7651916CD43DD8448EB211C80319C", "spanId": "B7AD6B7169203331",
                "body": _kv(ev(1))},
               {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
                "body": _kv(ev(2, span_id="00f067aa0ba902b7"))},
               {"traceId": "", "spanId": "", "body": _kv(ev(3))},  # empty: none
               {"traceId": "not-hex", "spanId": "00000000000000000", "body": _kv(ev(4))},  # invalid: ignored
               {"traceId": "0" * 32, "spanId": "0" * 16, "body": _kv(ev(5))}]  # all zero: invalid ids
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    r = s.post("/v1/logs", json.dumps(doc).encode(), {"Content-Type": "application/json"})
    assert r.status_code == 200 and not r.json().get("partialSuccess", {}).get("rejectedLogRecords"), r.text
    assert s.stop() == 0
    conn = duckdb.connect(str(s.db), read_only=True)
    rows = conn.execute("SELECT event_id, trace_id, span_id FROM events ORDER BY event_id").fetchall()
    conn.close()
    t, sp = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    assert rows == [("e1", t, sp), ("e2", t, "00f067aa0ba902b7"), ("e3", None, None),
                    ("e4", None, None), ("e5", None, None)]
