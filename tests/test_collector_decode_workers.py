"""`toolctl serve --decode-workers N`: /v1/traces decoded in worker processes.

Real SDK exporters against a real server subprocess on an ephemeral port, real DuckDB files:
the same answers and rows as the in-process path, 2xx durable, a dead worker costs a 503
(never a lost or doubled span), and no worker outlives its server.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import duckdb
import httpx
import pytest

from tests.conftest import run_toolctl
from tests.test_collector_server import serve, table_counts  # noqa: F401  (serve: the fixture)

PB = {"Content-Type": "application/x-protobuf"}
T0 = 1_767_225_600_000_000_000


def _spans(trace: int, n: int, first: int = 1) -> list:
    """``n`` SDK spans of one trace: GenAI tool calls, one holding a secret, one an e-mail."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, TraceFlags

    out = []
    for i in range(first, first + n):
        attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": f"tool_{i % 3}",
                 "gen_ai.tool.call.id": f"call-{trace}-{i}",
                 "gen_ai.tool.call.arguments": json.dumps({"q": f"ü {i}", "n": i, "x": 1.5e300}),
                 "tenant": "acme", "ratio": i / 7, "flags": [True, False]}
        if i % 5 == 0:
            attrs["http.request.header.authorization"] = "Bearer abcdefghijklmnop1234"
        if i % 7 == 0:
            attrs["gen_ai.tool.call.result"] = json.dumps({"mail": f"user{i}@example.com", "key": "sk-" + "a" * 24})
        out.append(ReadableSpan(name=f"execute_tool tool_{i % 3}",
                                context=SpanContext(trace, i, False, TraceFlags(1)),
                                start_time=T0 + i * 1000, end_time=T0 + i * 1000 + i * 1_000_000,
                                attributes=attrs, resource=Resource.create({"service.name": "gw"})))
    return out


def _body(spans: list) -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(spans).SerializeToString()


def _bad_span_body() -> bytes:
    """A request of two spans, one with a 3-byte trace id: partial_success, one rejected."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest.FromString(_body(_spans(0xBAD, 2)))
    req.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01\x02\x03"
    return req.SerializeToString()


def _export(url: str, spans: list) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", timeout=30)
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def _workers(s) -> list[int]:
    deadline = time.monotonic() + 30
    while True:
        pids = httpx.get(s.url + "/healthz").json()["decode_workers"]
        if pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pids: list[int], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _rows(db) -> list[tuple]:
    """Every span row but its batch id, in key order."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return conn.execute("SELECT * EXCLUDE (batch_id) FROM spans ORDER BY trace_id, span_id").fetchall()
    finally:
        conn.close()


def test_decode_workers_answer_and_store_exactly_what_the_threads_do(serve, tmp_path):
    threads = serve(db=tmp_path / "threads.duckdb")
    workers = serve("--decode-workers", "2", db=tmp_path / "workers.duckdb")
    pids = _workers(workers)
    assert len(pids) == 2 and os.getpid() not in pids
    answers = {}
    for name, s in (("threads", threads), ("workers", workers)):
        # concurrent real exporters, one trace each, then the same spans again (duplicates)
        batches = [_spans(0x100 + k, 60) for k in range(4)]
        ts = [threading.Thread(target=_export, args=(s.url, b)) for b in batches]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        _export(s.url, batches[0][:30] + _spans(0x200, 10))
        bad = s.post("/v1/traces", _bad_span_body(), PB)
        garbage = s.post("/v1/traces", b"\xff\xfe not protobuf", PB)
        as_json = s.post("/v1/traces", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "j", "startTimeUnixNano": "5",
             "endTimeUnixNano": "9", "attributes": [{"key": "password", "value": {"stringValue": "hunter22"}}]},
            {"traceId": "zz", "spanId": "cd" * 8}]}]}]}).encode(), {"Content-Type": "application/json"})
        answers[name] = [(r.status_code, r.content) for r in (bad, garbage, as_json)]
        assert s.stop() == 0, s.proc_stderr
    assert answers["workers"] == answers["threads"]
    (bad_status, bad_body), (garbage_status, _), (json_status, json_body) = answers["workers"]
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    partial = ExportTraceServiceResponse.FromString(bad_body).partial_success
    assert bad_status == 200 and partial.rejected_spans == 1 and "trace_id is not 16 bytes" in partial.error_message
    assert garbage_status == 400
    assert json_status == 200 and json.loads(json_body)["partialSuccess"]["rejectedSpans"] == 1
    assert _gone(pids), "a decoding worker outlived its server"
    # The same rows (redacted the same, fingerprints from the same salt would differ per store:
    # compare where no secret was), the same counts, an intact ledger on each.
    for db in (threads.db, workers.db):
        assert table_counts(db) == {"events": 0, "spans": 4 * 60 + 10 + 1 + 1, "rejects": 2,
                                    "batches": table_counts(db)["batches"]}
        res = run_toolctl("--db", db, "audit", "verify", "--format", "json")
        assert res.returncode == 0 and json.loads(res.stdout)["intact"], res.stdout + res.stderr
    rows_t, rows_w = _rows(threads.db), _rows(workers.db)
    assert len(rows_t) == len(rows_w)
    text_w = repr(rows_w)
    assert "hunter22" not in text_w and "abcdefghijklmnop1234" not in text_w and "sk-aaaa" not in text_w
    assert "[REDACTED:" in text_w
    strip = __import__("re").compile(r"\[REDACTED:([a-z_]+):[0-9a-f]{4}\]")
    assert [strip.sub(r"[\1]", repr(r)) for r in rows_t] == [strip.sub(r"[\1]", repr(r)) for r in rows_w]


def test_a_request_whose_worker_dies_gets_503_and_its_retry_is_stored_once(serve):
    s = serve("--decode-workers", "1")
    (pid,) = _workers(s)
    assert s.post("/v1/traces", _body(_spans(0x301, 5)), PB).status_code == 200  # the worker is up
    body = _body(_spans(0x302, 40))
    os.kill(pid, signal.SIGSTOP)  # the request waits for this worker …
    answer = {}
    t = threading.Thread(target=lambda: answer.update(r=s.post("/v1/traces", body, PB)))
    t.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)  # … which dies before answering
    t.join(60)
    r = answer["r"]
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    from google.rpc import status_pb2

    assert "decoding worker" in status_pb2.Status.FromString(r.content).message
    assert s.post("/v1/traces", body, PB).status_code == 200  # the retry, on a new worker
    (new_pid,) = _workers(s)
    assert new_pid != pid
    # A real exporter whose request meets a dying worker retries (503) and is stored once.
    os.kill(new_pid, signal.SIGSTOP)
    exporting = threading.Thread(target=_export, args=(s.url, _spans(0x303, 25)))
    exporting.start()
    time.sleep(0.5)
    os.kill(new_pid, signal.SIGKILL)
    exporting.join(60)
    assert not exporting.is_alive()
    last = _workers(s)
    assert s.stop() == 0
    assert _gone(last)
    conn = duckdb.connect(str(s.db), read_only=True)
    per_trace = conn.execute("SELECT trace_id, count(*), count(DISTINCT span_id) FROM spans "
                             "GROUP BY trace_id ORDER BY trace_id").fetchall()
    conn.close()
    assert [(n, d) for _, n, d in per_trace] == [(5, 5), (40, 40), (25, 25)]


@pytest.mark.slow
def test_kill_9_with_decode_workers_loses_no_acknowledged_span_and_leaves_no_worker(serve):
    s = serve("--decode-workers", "2")
    pids = _workers(s)
    acked = 0
    for k in range(6):
        _export(s.url, _spans(0x400 + k, 50))
        acked += 50
    s.kill()  # SIGKILL: no shutdown, no drain; the workers notice their parent is gone
    assert s.proc.returncode == -signal.SIGKILL
    assert _gone(pids), "a decoding worker outlived a killed server"
    assert table_counts(s.db)["spans"] == acked


def test_the_workers_redact_with_the_servers_rules_file(serve, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[redaction]\nemails = false\n[[redaction.patterns]]\nname = "employee_id"\n'
                     'regex = "EMP-[0-9]{6}"\n')
    s = serve("--decode-workers", "1", env={"TOOLCTL_REDACTION_RULES": str(rules)})
    (span,) = _spans(0x501, 1, first=7)  # an e-mail address and an sk- key in its result
    span._attributes = {**span.attributes, "employee": "EMP-123456"}
    _export(s.url, [span])
    assert s.stop() == 0
    (row,) = _rows(s.db)
    text = repr(row)
    assert "EMP-123456" not in text and "[REDACTED:employee_id:" in text
    assert "user7@example.com" in text and "sk-aaaa" not in text  # emails kept, keys not
