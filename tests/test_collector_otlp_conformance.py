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


# -- mixed real-world traffic against an independent reading --------------------------------
def _ref_value(v):
    """An OTLP/JSON AnyValue (either key spelling) → a plain value (the spec's mapping)."""
    if not v:
        return None
    ((kind, x),) = v.items()
    kind = {"string_value": "stringValue", "int_value": "intValue", "double_value": "doubleValue",
            "bool_value": "boolValue"}.get(kind, kind)
    return {"stringValue": str, "intValue": int, "doubleValue": float, "boolValue": bool}[kind](x)


def _ref_spans(docs):
    """Every span of the requests, decoded from the spec: (trace, span, parent, start, end,
    status code, attributes), camelCase or snake_case keys, ids in any case."""
    def get(d, camel):
        snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
        return d.get(camel, d.get(snake))

    out = {}
    for doc in docs:
        for rs in get(doc, "resourceSpans"):
            for ss in get(rs, "scopeSpans"):
                for sp in ss["spans"]:
                    key = (get(sp, "traceId").lower(), get(sp, "spanId").lower())
                    parent = (get(sp, "parentSpanId") or "").lower() or None
                    attrs = {kv["key"]: _ref_value(kv["value"]) for kv in sp.get("attributes", [])}
                    out.setdefault(key, (parent, int(get(sp, "startTimeUnixNano")),
                                         int(get(sp, "endTimeUnixNano")), sp["status"].get("code", 0), attrs))
    return out


def _ref_figures(spans):
    """README's figures per tool from decoded spans (docs/spans.md's mapping rules)."""
    import numpy as np

    def auth(attrs):
        code = attrs.get("http.response.status_code", attrs.get("http.status_code"))
        return (code is not None and int(float(code)) in (401, 403)) or \
            attrs.get("error.type") in ("UNAUTHENTICATED", "PERMISSION_DENIED", "401", "403")

    children = {}
    for (trace, sid), (parent, *_rest) in spans.items():
        children.setdefault((trace, parent), []).append(sid)

    def failed_below(trace, sid):
        return auth(spans[(trace, sid)][4]) or any(failed_below(trace, c) for c in children.get((trace, sid), ()))

    groups = {}
    for (trace, sid), (_parent, start, end, code, attrs) in spans.items():
        if attrs.get("gen_ai.operation.name") != "execute_tool":
            continue
        groups.setdefault(attrs["gen_ai.tool.name"], []).append(dict(
            call=attrs.get("gen_ai.tool.call.id"), attempt=attrs.get("toolctl.attempt", 1),
            ts=start // 1000, eid=f"{trace}:{sid}", latency=(end - start) / 1e6,
            error=code == 2 or bool(attrs.get("error.type")), auth=failed_below(trace, sid)))
    figures = {}
    for tool, rows in groups.items():
        finals = {}
        for i, row in enumerate(rows):
            key = row["call"] if row["call"] is not None else ("solo", i)
            best = finals.get(key)
            if best is None or (row["attempt"], row["ts"], row["eid"]) > (best["attempt"], best["ts"], best["eid"]):
                finals[key] = row
        lat = np.array([r["latency"] for r in rows])
        figures[tool] = {"attempts": len(rows), "calls": len(finals), "retries": len(rows) - len(finals),
                         "errors": sum(r["error"] for r in finals.values()),
                         "auth_failures": sum(r["auth"] for r in rows),
                         **{f"p{q}_ms": float(np.quantile(lat, q / 100)) for q in (50, 95, 99)}}
    return figures


def test_mixed_exporter_traffic_over_several_files_matches_an_independent_reading(tmp_path):
    # Spans of one trace scattered over files in any order (children before parents), auth
    # failures two levels below a tool span, retries sharing a call id, spans exported twice,
    # ids in upper case, times as numbers or strings, enum names, snake_case requests, CRLF
    # and gzip: the figures must be README's, computed here from the documents.
    import gzip
    import random

    rng = random.Random(7)
    files: list[list[dict]] = [[] for _ in range(4)]
    tools = ["search", "café", "cafe\u0301", "🔧 fix", "بحث"]
    sid = iter(range(1, 10**6))

    def place(doc):
        files[rng.randrange(len(files))].append(doc)

    for t in range(40):
        trace = f"{rng.getrandbits(127) | 1 << 120:032x}"
        root = f"{next(sid):016x}"
        place({"traceId": trace, "spanId": root, "name": "invoke_agent", "startTimeUnixNano": str(SPAN_T0),
               "endTimeUnixNano": str(SPAN_T0 + 10**9), "status": {}})
        for c in range(rng.randint(1, 3)):
            tool, call = rng.choice(tools), (f"call-{t}-{c}" if rng.random() < 0.8 else None)
            for attempt in range(1, (rng.randint(1, 3) if call else 1) + 1):
                me = f"{next(sid):016x}"
                extra = {"toolctl__attempt": attempt} if rng.random() < 0.7 else {}
                if rng.random() < 0.15:
                    extra["error__type"] = rng.choice(["timeout", "tool_error"])
                start = rng.randrange(10**8) * 10 + rng.randrange(1000)
                doc = tool_span(me, tool, call_id=call, start=start, dur_ns=rng.randrange(5 * 10**9),
                                status=2 if rng.random() < 0.15 else rng.choice([0, 1]), parent=root, **extra)
                doc["traceId"] = trace.upper() if rng.random() < 0.3 else trace
                if rng.random() < 0.3:
                    doc["startTimeUnixNano"] = int(doc["startTimeUnixNano"])
                if rng.random() < 0.2:
                    doc["kind"] = "SPAN_KIND_INTERNAL"
                place(doc)
                if rng.random() < 0.4:  # an HTTP client child, maybe a 401/403, maybe a grandchild
                    child = f"{next(sid):016x}"
                    code = rng.choice([200, 401, 403, 500, "401"])
                    value = {"intValue": str(code)} if isinstance(code, int) else {"stringValue": code}
                    place({"traceId": trace, "spanId": child, "parentSpanId": me, "name": "GET", "kind": 3,
                           "startTimeUnixNano": str(SPAN_T0 + start + 1), "endTimeUnixNano": str(SPAN_T0 + start + 9),
                           "status": {}, "attributes": [{"key": "http.response.status_code", "value": value}]})
                    if rng.random() < 0.4:
                        place({"traceId": trace, "spanId": f"{next(sid):016x}", "parentSpanId": child,
                               "name": "db", "startTimeUnixNano": str(SPAN_T0 + start + 2),
                               "endTimeUnixNano": str(SPAN_T0 + start + 3), "status": {},
                               "attributes": [attr("error.type", rng.choice(["PERMISSION_DENIED", "x"]))]})
    for i, spans in enumerate(files):  # re-exported spans: a copy in the next file
        files[(i + 1) % len(files)].extend(rng.sample(spans, min(4, len(spans))))
    docs, paths = [], []
    for i, spans in enumerate(files):
        rng.shuffle(spans)
        reqs = [request(spans[k:k + 6]) for k in range(0, len(spans), 6)]
        reqs = [snake_case(r) if i == 3 else r for r in reqs]
        docs += reqs
        text = "\r\n".join(json.dumps(r) for r in reqs) + "\r\n"
        path = tmp_path / (f"f{i}.json.gz" if i == 2 else f"f{i}.json")
        path.write_bytes(gzip.compress(text.encode()) if i == 2 else text.encode())
        paths.append(path)
    db = tmp_path / "s.duckdb"
    for path in reversed(paths):
        r = run_toolctl("--db", db, "ingest", path)
        assert r.returncode == 0, r.stderr
    expected = _ref_figures(_ref_spans(docs))
    got = {row["tool"]: row for row in stats(db, "--by", "tool")}
    assert got.keys() == expected.keys()
    for tool, figures in expected.items():
        for key, value in figures.items():
            assert abs(got[tool][key] - value) <= 1e-9 * max(1.0, abs(value)), (tool, key, got[tool][key], value)
