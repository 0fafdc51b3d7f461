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
