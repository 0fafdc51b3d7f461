"""OTLP traces into the store: files through `toolctl ingest`, request bodies through
``ingest_otlp_traces``. Expected values are computed here from the fixture documents
(plain json walking), never by the code under test."""

from __future__ import annotations

import base64
import gzip
import json
import math
import shutil
from pathlib import Path

import pytest

from tests.conftest import event, run_toolctl, write_jsonl

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"
TOOL_MARKERS = (("gen_ai.operation.name", "execute_tool"), ("openinference.span.kind", "TOOL"),
                ("traceloop.span.kind", "tool"), ("mcp.method.name", "tools/call"))


# -- an independent reading of the fixtures ------------------------------------------------
def plain(v):
    """OTLP/JSON AnyValue → the Python value it denotes (bytes as bytes, NaN as nan)."""
    (kind, x), = v.items() if v else ((None, None),)
    if kind == "stringValue" or kind is None or kind == "boolValue":
        return x
    if kind == "intValue":
        return int(x)
    if kind == "doubleValue":
        return float(x)
    if kind == "bytesValue":
        return base64.b64decode(x)
    if kind == "arrayValue":
        return [plain(e) for e in x.get("values", [])]
    return {kv["key"]: plain(kv["value"]) for kv in x.get("values", [])}


def fixture_spans(*names):
    """{span_id lower: span dict with plain attrs and the resource's attrs}."""
    out = {}
    for name in names:
        text = (FIXTURES / name).read_text("utf-8")
        docs = [json.loads(text)] if name.endswith(".json") else [json.loads(l) for l in text.splitlines() if l]
        for doc in docs:
            for rs in doc["resourceSpans"]:
                res = {kv["key"]: plain(kv["value"]) for kv in rs["resource"]["attributes"]}
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        if len(sp["traceId"]) != 32:
                            continue
                        attrs = {kv["key"]: plain(kv["value"]) for kv in sp.get("attributes", [])}
                        out[sp["spanId"].lower()] = dict(sp, attrs=attrs, res=res)
    return out


def is_tool(sp):
    a = sp["attrs"]
    return any(a.get(k) == v for k, v in TOOL_MARKERS) or "gen_ai.tool.name" in a


def decode_typed(v):
    """Reader of the documented type-preserving encoding (docs/spans.md)."""
    if isinstance(v, list):
        return [decode_typed(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1 and "$bytes" in v:
            return base64.b64decode(v["$bytes"])
        if len(v) == 1 and "$double" in v:
            return float(v["$double"].replace("Infinity", "inf"))
        if len(v) == 1 and "$kvlist" in v:
            return {k: decode_typed(x) for k, x in v["$kvlist"].items()}
        return {k: decode_typed(x) for k, x in v.items()}
    return v


def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def read_store(db, sql, params=None):
    from toolctl.store import Store

    with Store.open(db, write=False) as store:
        return store.fetch_dicts(sql, params)


def ingest(db, *paths):
    r = run_toolctl("--db", db, "ingest", *paths, "--format", "json")
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


def stats(db, *args):
    r = run_toolctl("--db", db, "stats", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# -- files ---------------------------------------------------------------------------------
def test_pretty_printed_otlp_json_keeps_every_span_and_maps_tool_spans(tmp_path):
    db = tmp_path / "s.duckdb"
    r, doc = ingest(db, FIXTURES / "genai_trace.json")
    assert r.returncode == 0, r.stderr
    expected = fixture_spans("genai_trace.json")
    tools = {k: v for k, v in expected.items() if is_tool(v)}
    assert doc["spans"] == len(expected) == 5 and doc["span_duplicates"] == 0
    assert doc["sources"][0]["format"] == "otlp_json" and doc["sources"][0]["tool_calls"] == len(tools)

    rows = {r["span_id"]: r for r in read_store(db, "SELECT * FROM spans")}
    assert rows.keys() == expected.keys()
    for sid, sp in expected.items():
        row = rows[sid]
        assert row["trace_id"] == sp["traceId"].lower()
        assert row["parent_span_id"] == ((sp.get("parentSpanId") or "").lower() or None)
        assert (row["start_ns"], row["end_ns"]) == (int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"]))
        assert row["kind"] == sp["kind"] and row["status_code"] == sp["status"].get("code", 0)
        assert (row["service"], row["service_version"]) == (sp["res"]["service.name"], sp["res"]["service.version"])
        assert (row["scope_name"], row["scope_version"]) == ("agent-sdk", "0.9.1")
        assert (row["tool_rule"] is not None) == is_tool(sp)

    calls = {r["tool"]: r for r in read_store(db, "SELECT * FROM tool_calls")}
    assert set(calls) == {tools[k]["attrs"]["gen_ai.tool.name"] for k in tools}
    for sp in tools.values():
        call = calls[sp["attrs"]["gen_ai.tool.name"]]
        assert call["latency_ms"] == pytest.approx((int(sp["endTimeUnixNano"]) - int(sp["startTimeUnixNano"])) / 1e6)
        want_error = sp["status"].get("code") == 2 or "error.type" in sp["attrs"]
        assert call["status"] == ("error" if want_error else "ok")
        assert call["error_code"] == sp["attrs"].get("error.type")
        assert call["call_id"] == sp["attrs"].get("gen_ai.tool.call.id")
        assert (call["service"], call["version"], call["tenant"]) == ("agent-gateway", "2.1.0", "acme")
        assert call["origin"] == "span" and call["event_id"] == f"{sp['traceId'].lower()}:{sp['spanId'].lower()}"
        assert call["attempt"] == sp["attrs"].get("toolctl.attempt", 1)
        ts_us = int(sp["startTimeUnixNano"]) // 1000
        assert call["ts"].timestamp() * 1_000_000 == pytest.approx(ts_us, abs=1)

    weather = read_store(db, "SELECT * FROM spans WHERE tool = 'get_weather'")[0]
    assert (weather["session_id"], weather["user_id"], weather["idempotency_key"]) == ("sess-1", "u-42", "idem-1")
    assert (weather["retryable"], weather["confidence"]) == (True, 0.75)
    assert json.loads(weather["args"]) == {"city": "Paris"}
    assert json.loads(weather["result"]) == {"temp_c": 11.5}

    errors = sum(1 for sp in tools.values() if sp["status"].get("code") == 2 or "error.type" in sp["attrs"])
    figures = stats(db)
    assert (figures[0]["calls"], figures[0]["errors"]) == (len(tools), errors)


def test_every_attribute_type_round_trips_through_the_store(tmp_path):
    db = tmp_path / "s.duckdb"
    ingest(db, FIXTURES / "genai_trace.json")
    sp = next(v for v in fixture_spans("genai_trace.json").values() if v["name"] == "attribute zoo")
    row = read_store(db, "SELECT * FROM spans WHERE span_id = ?", [sp["spanId"].lower()])[0]
    stored = decode_typed(json.loads(row["attributes"]))
    assert same(sp["attrs"], stored), (sp["attrs"], stored)
    assert stored["int_max"] == 2**63 - 1 and stored["int_min"] == -(2**63)
    assert type(stored["dbl_whole"]) is float and type(stored["int_num"]) is int
    assert stored["raw"] == bytes([0, 1, 2, 3, 255])
    resource = decode_typed(json.loads(row["resource"]))
    assert resource == sp["res"]
    assert (row["trace_state"], row["flags"], row["dropped_attributes_count"], row["dropped_events_count"]) == (
        "vendor=abc", 257, 3, 1)
    (link,) = json.loads(row["links"])
    assert (link["trace_id"], link["span_id"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert decode_typed(link["attributes"]) == {"link.kind": "follows"}
    exc_span = next(v for v in fixture_spans("genai_trace.json").values() if v.get("events"))
    (ev,) = json.loads(read_store(db, "SELECT events FROM spans WHERE span_id = ?",
                                  [exc_span["spanId"].lower()])[0]["events"])
    assert ev["name"] == "exception" and ev["time_unix_nano"] == int(exc_span["events"][0]["timeUnixNano"])
    assert ev["attributes"]["exception.type"] == "TimeoutError"


def test_collector_file_exporter_lines_map_every_convention_and_reject_a_bad_span(tmp_path):
    db = tmp_path / "s.duckdb"
    r, doc = ingest(db, FIXTURES / "frameworks.jsonl")
    assert r.returncode == 3, r.stderr  # one span refused: partial ingest
    assert (doc["spans"], doc["rejected"], doc["lines"], doc["accepted"]) == (4, 1, 1, 0)
    rows = {r["tool"]: r for r in read_store(db, "SELECT * FROM spans WHERE tool_rule IS NOT NULL")}
    assert {t: r["tool_rule"] for t, r in rows.items()} == {
        "sql_query": "openinference", "web_search": "traceloop", "read_file": "mcp"}
    assert (rows["sql_query"]["call_id"], rows["sql_query"]["user_id"]) == ("oi-call-1", "alice")
    assert json.loads(rows["sql_query"]["args"]) == {"q": "select 1"}
    assert json.loads(rows["sql_query"]["result"]) == "1 row"
    assert (rows["web_search"]["status"], rows["web_search"]["error_code"], rows["web_search"]["tenant"]) == (
        "error", "tool_error", "globex")
    assert (rows["read_file"]["call_id"], rows["read_file"]["session_id"], rows["read_file"]["status"]) == (
        "7", "conv-9", "error")
    assert rows["web_search"]["latency_ms"] == pytest.approx(1.999999)
    (rej,) = read_store(db, "SELECT * FROM rejects")
    assert rej["line_no"] == 3 and "spans[1]" in rej["reason"] and "traceId" in rej["reason"]
    assert "NOT-A-TRACE-ID" in rej["raw"]


def test_reingesting_the_same_spans_stores_nothing_twice(tmp_path):
    db = tmp_path / "s.duckdb"
    files = [FIXTURES / "genai_trace.json", FIXTURES / "frameworks.jsonl"]
    _, first = ingest(db, *files)
    before = read_store(db, "SELECT (SELECT count(*) FROM spans) s, (SELECT count(*) FROM rejects) r,"
                            " (SELECT count(*) FROM tool_calls) c")[0]
    r, second = ingest(db, *files)
    assert r.returncode == 3  # the bad span is still refused, but not stored twice
    assert (second["spans"], second["span_duplicates"]) == (0, first["spans"])
    after = read_store(db, "SELECT (SELECT count(*) FROM spans) s, (SELECT count(*) FROM rejects) r,"
                           " (SELECT count(*) FROM tool_calls) c")[0]
    assert after == before == {"s": 9, "r": 1, "c": 5}


def test_auth_failure_on_a_child_span_arriving_in_a_later_file_counts(tmp_path):
    db = tmp_path / "s.duckdb"
    assert ingest(db, FIXTURES / "auth_parent.json")[0].returncode == 0
    assert stats(db)[0]["auth_failures"] == 0
    assert ingest(db, FIXTURES / "auth_child.json")[0].returncode == 0
    # trace 1: child 401 under the tool span; trace 2: the grandchild's parent is missing yet
    assert stats(db)[0]["auth_failures"] == 1
    assert ingest(db, FIXTURES / "auth_middle.json")[0].returncode == 0
    assert stats(db)[0]["auth_failures"] == 2
    # the HTTP/authorize spans are not tool calls
    assert stats(db)[0]["calls"] == 2


def test_auth_failure_resolves_when_the_child_arrives_before_its_parent(tmp_path):
    db = tmp_path / "s.duckdb"
    ingest(db, FIXTURES / "auth_child.json")
    ingest(db, FIXTURES / "auth_middle.json")
    assert stats(db) == []  # no tool span yet: nothing counted
    ingest(db, FIXTURES / "auth_parent.json")
    assert stats(db)[0]["auth_failures"] == 2


def sdk_request(tmp_path):
    """A protobuf ExportTraceServiceRequest produced by the real OpenTelemetry SDK."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "mcp-gw", "service.version": "9.9"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests", "1.0")
    t0 = 1_764_050_000_000_000_007
    with tracer.start_as_current_span("invoke_agent", start_time=t0, end_on_exit=False) as agent:
        tool = tracer.start_span("tools/call grep", start_time=t0 + 10,
                                 attributes={"mcp.method.name": "tools/call", "jsonrpc.request.id": "r-1",
                                             "raw": b"\x01\x02", "ratio": 0.5, "tags": ["a", "b"]})
        tool.set_status(Status(StatusCode.ERROR, "denied"))
        tool.end(end_time=t0 + 10 + 33_000_123)
        agent.end(end_time=t0 + 50_000_000)
    provider.shutdown()
    finished = exporter.get_finished_spans()
    return encode_spans(finished).SerializeToString(), finished, t0


def test_protobuf_file_written_by_the_sdk_is_detected_and_stored(tmp_path):
    payload, finished, t0 = sdk_request(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "traces.binpb").write_bytes(payload)
    (tmp_path / "in" / "copy.otlp.gz").write_bytes(gzip.compress(payload))
    db = tmp_path / "s.duckdb"
    r, doc = ingest(db, tmp_path / "in")
    assert r.returncode == 0, r.stderr
    assert [s["format"] for s in doc["sources"]] == ["otlp_protobuf", "otlp_protobuf"]
    assert (doc["spans"], doc["span_duplicates"]) == (2, 2)
    tool_span = next(s for s in finished if s.name.startswith("tools/call"))
    (row,) = read_store(db, "SELECT * FROM spans WHERE tool_rule IS NOT NULL")
    assert row["trace_id"] == f"{tool_span.context.trace_id:032x}"
    assert row["span_id"] == f"{tool_span.context.span_id:016x}"
    assert row["parent_span_id"] == f"{tool_span.parent.span_id:016x}"
    assert (row["tool"], row["tool_rule"], row["call_id"], row["status"]) == ("grep", "mcp", "r-1", "error")
    assert row["latency_ms"] == pytest.approx(33.000123)
    assert row["start_ns"] == t0 + 10 and row["service_version"] == "9.9"
    attrs = decode_typed(json.loads(row["attributes"]))
    assert attrs["raw"] == b"\x01\x02" and attrs["ratio"] == 0.5 and attrs["tags"] == ["a", "b"]


def test_a_directory_may_mix_formats_and_stats_count_events_and_spans_together(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write_jsonl(d / "gateway.jsonl", [event(1, tool="get_weather", status="error"), event(2, tool="get_weather")])
    shutil.copy(FIXTURES / "genai_trace.json", d / "otel.json")
    db = tmp_path / "s.duckdb"
    r, doc = ingest(db, d)
    assert r.returncode == 0, r.stderr
    assert (doc["accepted"], doc["spans"]) == (2, 5)
    by_tool = {row["tool"]: row for row in stats(db, "--by", "tool")}
    assert (by_tool["get_weather"]["calls"], by_tool["get_weather"]["errors"]) == (3, 1)
    assert (by_tool["lookup_order"]["calls"], by_tool["lookup_order"]["errors"]) == (1, 1)


def test_a_file_may_not_mix_formats(tmp_path):
    lines = (FIXTURES / "frameworks.jsonl").read_text().splitlines()
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [lines[0], event(1)])
    db = tmp_path / "s.duckdb"
    r, doc = ingest(db, mixed)
    assert r.returncode == 3
    assert (doc["spans"], doc["accepted"], doc["rejected"]) == (1, 0, 1)
    (rej,) = read_store(db, "SELECT * FROM rejects")
    assert rej["line_no"] == 2 and "may not mix" in rej["reason"]
    assert read_store(db, "SELECT count(*) AS n FROM events")[0]["n"] == 0


def test_a_corrupt_line_in_a_one_request_per_line_file_costs_only_that_line(tmp_path):
    lines = (FIXTURES / "frameworks.jsonl").read_text().splitlines()
    path = write_jsonl(tmp_path / "cut.jsonl", [lines[0], lines[1][:40], lines[2]])
    db = tmp_path / "s.duckdb"
    r, doc = ingest(db, path)
    assert r.returncode == 3
    good = sum(len(ss["spans"]) for i in (0, 2) for rs in json.loads(lines[i])["resourceSpans"]
               for ss in rs["scopeSpans"]) - 1  # line 3 holds the span with a bad traceId
    assert (doc["spans"], doc["rejected"]) == (good, 2)
    assert [r["line_no"] for r in read_store(db, "SELECT line_no FROM rejects ORDER BY line_no")] == [2, 3]


def test_a_truncated_pretty_printed_request_is_one_reject(tmp_path):
    text = (FIXTURES / "genai_trace.json").read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    db = tmp_path / "s.duckdb"
    r, doc = ingest(db, path)
    assert r.returncode == 3 and (doc["spans"], doc["rejected"]) == (0, 1)
    (rej,) = read_store(db, "SELECT line_no, reason FROM rejects")
    assert rej["line_no"] is None and "not valid OTLP/JSON" in rej["reason"]


def test_a_binary_file_that_is_not_otlp_is_one_reject_and_stores_nothing(tmp_path):
    junk = tmp_path / "junk.pb"
    # starts like a request (field 1, then a ResourceSpans field) and then is garbage
    junk.write_bytes(b"\x0a\x05\x0a\x03\x01\x02\x03\xff\xfe garbage \x00\x00")
    db = tmp_path / "s.duckdb"
    r, doc = ingest(db, junk)
    assert r.returncode == 3
    assert (doc["spans"], doc["rejected"]) == (0, 1)
    (rej,) = read_store(db, "SELECT reason FROM rejects")
    assert "ExportTraceServiceRequest" in rej["reason"]
    assert read_store(db, "SELECT count(*) AS n FROM spans")[0]["n"] == 0


def test_tool_call_lines_that_merely_look_like_otlp_at_the_start_are_read_as_lines(tmp_path):
    # Found by fuzzing: both files were sniffed as OTLP and every valid event in them lost.
    blank_then_junk = tmp_path / "a.jsonl"  # LF, then a binary line: once taken for protobuf
    blank_then_junk.write_bytes(b"\n\x01\x02garbage\n" + json.dumps(event(1)).encode() + b"\n"
                                + json.dumps(event(2)).encode() + b"\n")
    first_key = tmp_path / "b.jsonl"  # an event whose first (unknown) key is resourceSpans
    first_key.write_text(json.dumps({"resourceSpans": 1, **event(3)}) + "\n" + json.dumps(event(4)) + "\n")
    db = tmp_path / "s.duckdb"
    r, doc = ingest(db, blank_then_junk, first_key)
    assert r.returncode == 3, r.stderr
    assert [s["format"] for s in doc["sources"]] == ["jsonl", "jsonl"]
    assert (doc["accepted"], doc["rejected"]) == (4, 1)
    (rej,) = read_store(db, "SELECT line_no FROM rejects")
    assert rej["line_no"] == 2
    (row,) = read_store(db, "SELECT extra FROM events WHERE event_id = 'e3'")
    assert json.loads(row["extra"]) == {"resourceSpans": 1}


# -- the request API (what `toolctl serve` calls) --------------------------------------------
def test_ingest_otlp_traces_stores_json_and_protobuf_requests_once(tmp_path):
    from collector.otlp import ingest_otlp_traces
    from toolctl.store import Store

    payload, finished, _ = sdk_request(tmp_path)
    body = (FIXTURES / "genai_trace.json").read_bytes()
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        a = ingest_otlp_traces(store, body, encoding="json", source="http:test")
        b = ingest_otlp_traces(store, body, encoding="json", source="http:test")
        c = ingest_otlp_traces(store, payload, encoding="protobuf", source="http:test")
        assert (a.spans, a.duplicates, a.tool_calls, a.rejected_spans, a.error_message) == (5, 0, 2, 0, None)
        assert (b.spans, b.duplicates, b.tool_calls) == (0, 5, 0)
        assert (c.spans, c.tool_calls) == (len(finished), 1)
        assert store.scalar("SELECT count(*) FROM spans") == 5 + len(finished)
        assert store.scalar("SELECT count(DISTINCT source) FROM spans") == 1


def test_a_protobuf_string_that_is_not_utf8_costs_only_its_span(tmp_path):
    # Found by fuzzing: one bad byte in one span's name refused the whole request (a 400,
    # final for an exporter: every span in it lost), where OTLP/JSON refuses that span.
    from collector.otlp import ingest_otlp_traces
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from toolctl.store import Store

    payload, finished, _ = sdk_request(tmp_path)
    req = ExportTraceServiceRequest.FromString(payload)
    scope = req.resource_spans[0].scope_spans[0]
    extra = scope.spans.add()
    extra.CopyFrom(scope.spans[0])
    extra.span_id = b"\x01" * 8
    extra.name = "zz-broken-zz"
    second = req.resource_spans.add()  # a second resource whose scope name is broken
    second.CopyFrom(req.resource_spans[0])
    second.scope_spans[0].scope.name = "scope-broken"
    for sp in second.scope_spans[0].spans:
        sp.span_id = bytes(7) + bytes([sp.span_id[-1] ^ 0x55])
    bad = req.SerializeToString().replace(b"zz-broken-zz", b"zz-\xff\xfeoken-zz").replace(b"scope-broken", b"scope-\xffroken")
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        r = ingest_otlp_traces(store, bad, encoding="protobuf", source="http:test")
        assert (r.spans, r.rejected_spans) == (len(finished), 1 + len(finished) + 1)  # resource 1: all 3
        assert "resourceSpans[0].scopeSpans[0].spans[2]: cannot be decoded" in r.error_message
        reasons = [x for (x,) in store.execute("SELECT reason FROM rejects ORDER BY reason").fetchall()]
        assert reasons == ["resourceSpans[0].scopeSpans[0].spans[2]: cannot be decoded: a string that is not "
                           "valid UTF-8, or corrupt bytes",
                           "resourceSpans[1].scopeSpans[0]: scope cannot be decoded: a string that is not "
                           "valid UTF-8, or corrupt bytes"]
        assert store.scalar("SELECT count(*) FROM spans") == len(finished)
    with pytest.raises(Exception):  # the plain parser refuses it whole, which is the point
        ExportTraceServiceRequest.FromString(bad)
    # A file ingest counts the spans refused, as the request's answer does (found by fuzzing:
    # the refused scope counted once in the file's summary and three times over HTTP).
    (tmp_path / "bad.binpb").write_bytes(bad)
    r, doc = ingest(tmp_path / "f.duckdb", tmp_path / "bad.binpb")
    assert r.returncode == 3 and (doc["spans"], doc["rejected"], doc["lines"]) == (len(finished), 4, 4)


def test_undecodable_payloads_raise_and_store_nothing(tmp_path):
    from collector.otlp import OTLPDecodeError, ingest_otlp_traces
    from toolctl.errors import ToolctlError
    from toolctl.store import Store

    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        for payload, enc in ((b"{not json", "json"), (b"[1, 2]", "json"),
                             (b'{"resourceSpans": 3}', "json"), (b"\xff\xff\xff\xff", "protobuf")):
            with pytest.raises(OTLPDecodeError) as info:
                ingest_otlp_traces(store, payload, encoding=enc, source="http:test")
            assert isinstance(info.value, ToolctlError) and info.value.message
        assert store.scalar("SELECT count(*) FROM spans") == 0
        assert store.scalar("SELECT count(*) FROM batches") == 0


def test_a_request_with_bad_spans_stores_the_good_ones_and_says_why(tmp_path):
    from collector.otlp import ingest_otlp_traces
    from toolctl.store import Store

    good = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "x", "startTimeUnixNano": 5, "endTimeUnixNano": 9}
    bad = [dict(good, spanId="00" * 8), dict(good, spanId="ef" * 8, endTimeUnixNano=1),
           dict(good, spanId="12" * 8, startTimeUnixNano="soon")]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [good, *bad]}]}]}).encode()
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        r = ingest_otlp_traces(store, body, encoding="json", source="http:test")
        assert (r.spans, r.rejected_spans) == (1, 3)
        assert "spans[1]" in r.error_message
        reasons = [row["reason"] for row in store.fetch_dicts("SELECT reason FROM rejects ORDER BY reason")]
        assert len(reasons) == 3 and all(reason.startswith("resourceSpans[0]") for reason in reasons)
        # a malformed scopeSpans entry refuses every span in it, and says so in the count
        broken = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": 5}, "spans": [good, good]}]}]}
        r = ingest_otlp_traces(store, json.dumps(broken).encode(), encoding="json", source="http:test")
        assert (r.spans, r.duplicates, r.rejected_spans) == (0, 0, 2)


def test_an_entry_that_is_a_string_with_an_unpaired_surrogate_is_one_reject(tmp_path):
    # Found by fuzzing `toolctl serve`: a span, scopeSpans or resourceSpans entry that is a
    # JSON string holding a lone surrogate escape was kept as that string for the rejects
    # table, which no UTF-8 column takes: ingest died with a traceback, serve answered 500.
    good = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "x", "startTimeUnixNano": 5, "endTimeUnixNano": 9}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [good, "\ud800"]}, "\udc00x"]}, "\ud83d"]}
    path = tmp_path / "t.json"
    path.write_bytes(json.dumps(doc).encode("ascii"))
    r, summary = ingest(tmp_path / "s.duckdb", path)
    assert r.returncode == 3, r.stderr
    assert (summary["spans"], summary["rejected"]) == (1, 3)
    rows = read_store(tmp_path / "s.duckdb", "SELECT reason, raw FROM rejects ORDER BY reason")
    assert [(row["reason"].split(": ")[0], row["raw"]) for row in rows] == [
        ("resourceSpans[0].scopeSpans[0].spans[1]", "\\ud800"),
        ("resourceSpans[0].scopeSpans[1]", "\\udc00x"),
        ("resourceSpans[1]", "\\ud83d")]


def test_enum_numbers_in_any_json_form_are_taken_and_wrong_shapes_say_which_field(tmp_path):
    # Found by fuzzing: status.code 2.0 or "2" refused the span (protobuf's JSON parser takes
    # both), and a status or attribute of the wrong shape was refused with Python's own
    # "'str' object has no attribute 'get'".
    from collector.otlp import ingest_otlp_traces
    from toolctl.store import Store

    base = {"traceId": "ab" * 16, "name": "execute_tool t", "startTimeUnixNano": 5, "endTimeUnixNano": 9,
            "attributes": [{"key": "gen_ai.tool.name", "value": {"stringValue": "t"}}]}
    spans = [dict(base, spanId="01" * 8, status={"code": 2.0}), dict(base, spanId="02" * 8, status={"code": "2"}),
             dict(base, spanId="03" * 8, kind="3", status={"code": "STATUS_CODE_ERROR"}),
             dict(base, spanId="04" * 8, status="ERROR"), dict(base, spanId="05" * 8, attributes=[1]),
             dict(base, spanId="06" * 8, status={"code": 2.5})]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        r = ingest_otlp_traces(store, body, encoding="json", source="http:test")
        assert (r.spans, r.rejected_spans) == (3, 3)
        assert store.execute("SELECT kind, status FROM spans ORDER BY span_id").fetchall() == \
            [(0, "error"), (0, "error"), (3, "error")]
        reasons = [x for (x,) in store.execute("SELECT reason FROM rejects ORDER BY reason").fetchall()]
        assert reasons == ["resourceSpans[0].scopeSpans[0].spans[3]: status is not an object (str)",
                           "resourceSpans[0].scopeSpans[0].spans[4]: attribute is not an object (int)",
                           "resourceSpans[0].scopeSpans[0].spans[5]: status.code 2.5 is not a known enum value"]


def test_a_sibling_or_ancestor_with_401_does_not_mark_a_tool_call(tmp_path):
    from collector.otlp import ingest_otlp_traces
    from toolctl.store import Store

    def span(sid, parent=None, attrs=()):
        kv = [{"key": k, "value": {"intValue": v} if isinstance(v, int) else {"stringValue": v}}
              for k, v in attrs]
        return {"traceId": "ab" * 16, "spanId": sid * 8, "parentSpanId": parent * 8 if parent else "",
                "name": "s", "startTimeUnixNano": 1, "endTimeUnixNano": 2, "attributes": kv}

    spans = [span("01", None, [("http.response.status_code", 401)]),   # root: an ancestor
             span("02", "01", [("gen_ai.tool.name", "clean")]),        # tool, no bad descendant
             span("03", "01", [("http.response.status_code", 403)]),   # sibling of both tools
             span("04", "01", [("gen_ai.tool.name", "dirty")]),        # tool whose grandchild fails
             span("05", "04"), span("06", "05", [("error.type", "UNAUTHENTICATED")])]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        assert ingest_otlp_traces(store, body, encoding="json", source="t").tool_calls == 2
        rows = store.fetch_dicts("SELECT tool, auth_failure FROM tool_calls ORDER BY tool")
    assert rows == [{"tool": "clean", "auth_failure": False}, {"tool": "dirty", "auth_failure": True}]
