"""`audit trace` / `audit call` on span shapes the fuzzer found: parent cycles, deep chains,
calls that arrived only as OTLP tool spans."""

from __future__ import annotations

import json

from conftest import run_toolctl

T0 = 1_764_000_000_000_000_000  # ns
TOOL = {"gen_ai.operation.name": "execute_tool"}


def otlp_span(trace, sid, name, *, parent=None, start=0, dur_ns=2_000_000, status=0, attrs=None):
    doc = {"traceId": trace, "spanId": sid, "name": name, "kind": 1,
           "startTimeUnixNano": str(T0 + start), "endTimeUnixNano": str(T0 + start + dur_ns),
           "status": {"code": status},
           "attributes": [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                          for k, v in (attrs or {}).items()]}
    if parent:
        doc["parentSpanId"] = parent
    return doc


def ingest_spans(db, path, spans, service="gw"):
    res = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    path.write_text(json.dumps({"resourceSpans": [{"resource": res, "scopeSpans": [{"spans": spans}]}]}))
    r = run_toolctl("--db", db, "ingest", path)
    assert r.returncode == 0, r.stderr


def audit_json(db, *args):
    r = run_toolctl("--db", db, "audit", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def tree_span_ids(doc) -> list[str]:
    """Every span id the trace document shows, in the order it shows them."""
    out, stack = [], list(reversed(doc["spans"]))
    while stack:
        s = stack.pop()
        out.append(s["span_id"])
        stack.extend(reversed(s.get("children", [])))
    return out


def test_trace_shows_every_span_of_a_parent_cycle_once_as_a_marked_root(tmp_path):
    db, trace = tmp_path / "c.duckdb", "cd" * 16
    ingest_spans(db, tmp_path / "c.json", [
        otlp_span(trace, "00000000000000a1", "root", dur_ns=9_000_000),
        # b1 <-> b2 point at each other; c1 is its own parent; d1 hangs below the b cycle
        otlp_span(trace, "00000000000000b1", "execute_tool x", parent="00000000000000b2", start=100,
                  attrs={**TOOL, "gen_ai.tool.name": "x"}),
        otlp_span(trace, "00000000000000b2", "execute_tool y", parent="00000000000000b1", start=200,
                  attrs={**TOOL, "gen_ai.tool.name": "y"}),
        otlp_span(trace, "00000000000000c1", "selfie", parent="00000000000000c1", start=300),
        otlp_span(trace, "00000000000000d1", "below", parent="00000000000000b2", start=400),
    ])
    doc = audit_json(db, "trace", trace)
    shown = tree_span_ids(doc)
    assert sorted(shown) == ["00000000000000a1", "00000000000000b1", "00000000000000b2",
                             "00000000000000c1", "00000000000000d1"]
    roots = {s["span_id"]: s for s in doc["spans"]}
    # the earliest span of each cycle becomes its root; its parent link is kept as stored
    assert list(roots) == ["00000000000000a1", "00000000000000b1", "00000000000000c1"]
    assert [roots[r]["cycle"] for r in roots] == [False, True, True]
    assert roots["00000000000000b1"]["parent_span_id"] == "00000000000000b2"
    assert not any(r["orphan"] for r in roots.values())
    assert doc["counts"]["spans"] == 5 and doc["counts"]["cycles"] == 2 and doc["counts"]["orphans"] == 0
    text = run_toolctl("--db", db, "audit", "trace", trace).stdout
    for sid in shown:
        assert text.count(sid) == 1, sid
    assert text.count("[cycle: its parent chain loops back to it]") == 2
