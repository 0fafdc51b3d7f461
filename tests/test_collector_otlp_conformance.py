"""OTLP inputs as real deployments produce them, checked against an independent reading.

Expected figures are computed here from the documents (the OTLP specification's encoding and
README's figure definitions), never by the code under test; the CLI runs as a subprocess.
"""

from __future__ import annotations

import json

from tests.conftest import SPAN_T0, event, run_toolctl, write_jsonl

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def attr(key, value):
    """An OTLP/JSON KeyValue (lowerCamelCase, as the specification writes it)."""
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def tool_span(span_id, tool, *, call_id=None, start=0, dur_ns=2_000_000, status=0, parent=None, **attrs):
    kv = [attr("gen_ai.operation.name", "execute_tool"), attr("gen_ai.tool.name", tool)]
    if call_id:
        kv.append(attr("gen_ai.tool.call.id", call_id))
    kv += [attr(k.replace("__", "."), v) for k, v in attrs.items()]
    doc = {"traceId": TRACE, "spanId": span_id, "name": f"execute_tool {tool}", "kind": 1,
           "startTimeUnixNano": str(SPAN_T0 + start), "endTimeUnixNano": str(SPAN_T0 + start + dur_ns),
           "status": {"code": status}, "attributes": kv}
    if parent:
        doc["parentSpanId"] = parent
    return doc


def request(spans, service="gw"):
    return {"resourceSpans": [{"resource": {"attributes": [attr("service.name", service)]},
                               "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}


def stats(db, *args):
    r = run_toolctl("--db", db, "stats", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# -- auth failures: one definition for a span and for the JSON line of the same attempt -----
def test_an_auth_code_on_a_span_counts_only_when_it_is_exactly_the_documented_one(tmp_path):
    # README: an auth failure is error_code *exactly* UNAUTHENTICATED or PERMISSION_DENIED;
    # docs/spans.md: a span's error.type / rpc.response.status_code *equal to* one of them.
    # The same attempts as JSON lines and as tool spans must count the same.
    codes = ["UNAUTHENTICATED", "unauthenticated", "PERMISSION_DENIED", "Permission_Denied"]
    expected = sum(c in ("UNAUTHENTICATED", "PERMISSION_DENIED") for c in codes)  # 2
    spans = [tool_span(f"{i + 1:016x}", "crm", start=i * 1000, **{"error__type": c})
             for i, c in enumerate(codes)]
    spans.append(tool_span(f"{9:016x}", "crm", start=9000,
                           **{"rpc__response__status_code": "unauthenticated"}))
    (tmp_path / "spans.json").write_text(json.dumps(request(spans)))
    lines = write_jsonl(tmp_path / "lines.jsonl", [event(i, tool="crm", status="error", error_code=c)
                                                   for i, c in enumerate(codes)])
    span_db, line_db = tmp_path / "spans.duckdb", tmp_path / "lines.duckdb"
    assert run_toolctl("--db", span_db, "ingest", tmp_path / "spans.json").returncode == 0
    assert run_toolctl("--db", line_db, "ingest", lines).returncode == 0
    assert stats(line_db)[0]["auth_failures"] == expected
    assert stats(span_db)[0]["auth_failures"] == expected


# -- field names: the Collector's OTLP/JSON reader takes lowerCamelCase and snake_case ------
def snake_case(doc):
    """The same document with every object key as its protobuf field name (trace_id,
    start_time_unix_nano, string_value, ...), as the OpenTelemetry Collector also reads it."""
    import re

    if isinstance(doc, list):
        return [snake_case(x) for x in doc]
    if isinstance(doc, dict):
        return {re.sub(r"(?<=[a-z])([A-Z])", lambda m: "_" + m.group(1).lower(), k): snake_case(v)
                for k, v in doc.items()}
    return doc


def rich_requests():
    """Two requests: tool spans (a retried call, an error), an HTTP child with a 401 whose
    parent is a tool span, events, links, and every AnyValue kind."""
    values = [{"key": "n", "value": {"intValue": "7"}}, {"key": "d", "value": {"doubleValue": 2.5}},
              {"key": "b", "value": {"bytesValue": "AQID"}}, {"key": "f", "value": {"boolValue": True}},
              {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "1"}]}}},
              {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}}]
    first = tool_span("00000000000000a1", "lookup", call_id="c1", start=0, dur_ns=3_000_000, status=2,
                      parent="00000000000000f0", **{"toolctl__attempt": 1})
    first["attributes"] += values
    first["events"] = [{"timeUnixNano": str(SPAN_T0 + 10), "name": "exception",
                        "attributes": [attr("exception.type", "Timeout")], "droppedAttributesCount": 1}]
    first["links"] = [{"traceId": "ab" * 16, "spanId": "cd" * 8, "traceState": "k=v",
                       "attributes": [attr("l", 1)]}]
    first.update(traceState="vendor=1", droppedAttributesCount=2, droppedEventsCount=0, flags=257)
    second = tool_span("00000000000000a2", "lookup", call_id="c1", start=5_000_000, dur_ns=1_000_000,
                       parent="00000000000000f0", **{"toolctl__attempt": 2})
    other = tool_span("00000000000000b1", "mail", start=9_000_000, dur_ns=4_000_000)
    child = {"traceId": TRACE, "spanId": "00000000000000b2", "parentSpanId": "00000000000000b1",
             "name": "POST", "kind": 3, "startTimeUnixNano": SPAN_T0 + 9_000_100,
             "endTimeUnixNano": SPAN_T0 + 9_000_900, "status": {"code": 2, "message": "denied"},
             "attributes": [attr("http.response.status_code", 401)]}
    return [request([first, second]), request([child, other], service="mailer")]


def test_snake_case_field_names_are_read_as_the_collector_reads_them(tmp_path):
    # The OTLP spec writes lowerCamelCase; the Collector (pdata) reads the protobuf field
    # names too, and so do hand-written exporters that serialize with them. toolctl took
    # resource_spans / scope_spans, then refused every span ("traceId None"), and a
    # snake_case AnyValue ({"string_value": ...}) was read as empty: a tool span that was
    # not one, silently.
    reqs = rich_requests()
    camel, snake = tmp_path / "camel.json", tmp_path / "snake.json"
    camel.write_text("".join(json.dumps(r) + "\n" for r in reqs))
    snake.write_text("".join(json.dumps(snake_case(r)) + "\n" for r in reqs))
    assert '"trace_id"' in snake.read_text() and '"string_value"' in snake.read_text()
    dbs = {}
    for path in (camel, snake):
        db = dbs[path.stem] = tmp_path / f"{path.stem}.duckdb"
        r = run_toolctl("--db", db, "ingest", path, "--format", "json")
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert (summary["spans"], summary["rejected"], summary["sources"][0]["format"]) == (4, 0, "otlp_json")
    # One pretty-printed request in snake_case is read as well.
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(snake_case(reqs[0]), indent=2))
    r = run_toolctl("--db", tmp_path / "pretty.duckdb", "ingest", pretty, "--format", "json")
    assert (r.returncode, json.loads(r.stdout)["spans"]) == (0, 2), r.stderr

    from toolctl.store import Store

    rows = {}
    for name, db in dbs.items():
        with Store.open(db, write=False) as store:
            rows[name] = store.fetch_dicts("SELECT * EXCLUDE (batch_id, source) FROM spans ORDER BY span_id")
    assert rows["snake"] == rows["camel"]
    first = rows["snake"][0]
    assert (first["parent_span_id"], first["trace_state"], first["flags"], first["status_code"]) == \
        ("00000000000000f0", "vendor=1", 257, 2)
    assert json.loads(first["attributes"])["kv"] == {"k": "v"}
    assert json.loads(first["events"])[0]["time_unix_nano"] == SPAN_T0 + 10
    assert json.loads(first["links"])[0]["trace_state"] == "k=v"
    # Figures from the documents: lookup is one call retried once whose final attempt is ok;
    # mail is one call, an auth failure through its HTTP child.
    expected = [{"tool": "lookup", "attempts": 2, "calls": 1, "retries": 1, "errors": 0, "auth_failures": 0},
                {"tool": "mail", "attempts": 1, "calls": 1, "retries": 0, "errors": 0, "auth_failures": 1}]
    for db in dbs.values():
        got = sorted(stats(db, "--by", "tool"), key=lambda row: row["tool"])
        assert [{k: row[k] for k in expected[0]} for row in got] == expected


# -- a compressed OTLP file that breaks off -------------------------------------------------
def gzip_cut_after(lines: list[bytes], keep: int) -> bytes:
    """A gzip stream of ``lines`` flushed after each one and cut after the first ``keep``:
    the ``keep`` lines decompress whole, then the stream ends without its end marker (a
    writer killed mid-file, a copy cut short)."""
    import zlib

    z = zlib.compressobj(wbits=31)
    out = []
    for line in lines:
        out.append(z.compress(line) + z.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(out[:keep])


def test_a_truncated_gzip_otlp_file_stores_what_came_before_and_rejects_the_break(tmp_path):
    # README: a truncated or corrupt gzip keeps every line decodable before the damage and
    # counts the break as one rejected line. For OTLP files the break was never looked at:
    # cut at a line boundary, the ingest said exit 0 with nothing rejected, the lost spans
    # unmentioned (local and forwarded to `toolctl serve` alike).
    from tests.test_collector_server import Served

    lines = [json.dumps(request([tool_span(f"{i + 1:016x}", "lookup", start=i * 1000)])).encode() + b"\n"
             for i in range(5)]
    path = tmp_path / "traces.json.gz"
    path.write_bytes(gzip_cut_after(lines, 3))
    local = tmp_path / "local.duckdb"
    r = run_toolctl("--db", local, "ingest", path, "--format", "json")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    summary = json.loads(r.stdout)
    assert (summary["spans"], summary["rejected"], summary["lines"]) == (3, 1, 1)
    rejects = json.loads(run_toolctl("--db", local, "rejects", "--format", "json").stdout)
    assert len(rejects) == 1 and "truncated gzip" in rejects[0]["reason"], rejects

    served = Served(tmp_path / "served.duckdb")
    try:
        r = run_toolctl("--db", served.db, "ingest", path, "--format", "json")
        assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
        assert (json.loads(r.stdout)["spans"], json.loads(r.stdout)["rejected"]) == (3, 1)
        assert served.stop() == 0
    finally:
        if served.proc.poll() is None:
            served.kill()
    rejects = json.loads(run_toolctl("--db", served.db, "rejects", "--format", "json").stdout)
    assert len(rejects) == 1 and "truncated gzip" in rejects[0]["reason"], rejects
    assert stats(served.db) == stats(local)


# -- one span, either encoding: the same stored row -----------------------------------------
def test_flags_zero_is_stored_alike_from_otlp_json_and_protobuf(tmp_path):
    # proto3 cannot tell flags 0 from flags absent: protobuf stored NULL, OTLP/JSON's
    # explicit "flags": 0 stored 0, so the same span sent by a JSON and by a protobuf
    # exporter differed in `spans.flags` (and in its links' flags).
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from collector.otlp import ingest_otlp_traces
    from toolctl.store import Store

    doc = tool_span("00000000000000c1", "lookup")
    doc["flags"] = 0
    doc["links"] = [{"traceId": "ab" * 16, "spanId": "cd" * 8, "flags": 0}]
    body = json.dumps(request([doc])).encode()
    pb = ExportTraceServiceRequest()
    rs = pb.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "gw"
    ss = rs.scope_spans.add()
    ss.scope.name = "t"
    sp = ss.spans.add()
    sp.trace_id, sp.span_id = bytes.fromhex(TRACE), bytes.fromhex("00000000000000c1")
    sp.name, sp.kind, sp.flags = "execute_tool lookup", 1, 0
    sp.start_time_unix_nano, sp.end_time_unix_nano = SPAN_T0, SPAN_T0 + 2_000_000
    for key, value in (("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", "lookup")):
        a = sp.attributes.add()
        a.key, a.value.string_value = key, value
    link = sp.links.add()
    link.trace_id, link.span_id, link.flags = bytes.fromhex("ab" * 16), bytes.fromhex("cd" * 8), 0
    rows = []
    for encoding, payload in (("json", body), ("protobuf", pb.SerializeToString())):
        with Store.open(tmp_path / f"{encoding}.duckdb", write=True) as store:
            assert ingest_otlp_traces(store, payload, encoding=encoding, source="t").spans == 1
            rows.append(store.fetch_dicts("SELECT * EXCLUDE (batch_id) FROM spans"))
    assert rows[0] == rows[1]
    assert rows[0][0]["flags"] is None and json.loads(rows[0][0]["links"])[0]["flags"] is None
