"""`audit trace` / `audit call` on span shapes the fuzzer found: parent cycles, deep chains,
calls that arrived only as OTLP tool spans."""

from __future__ import annotations

import json

from conftest import TOOL, ingest_spans, otlp_span, run_toolctl
from tests.test_collector_server import serve  # noqa: F401 (fixture)


def audit_json(db, *args):
    r = run_toolctl("--db", db, "audit", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def tree_span_ids(doc) -> list[str]:
    """Every span id the trace document shows, in the order it shows them."""
    return [s["span_id"] for s in doc["spans"]]


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
    roots = {s["span_id"]: s for s in doc["spans"] if s["depth"] == 0}
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


def test_trace_of_a_chain_deeper_than_any_recursion_limit_renders_as_json_and_table(tmp_path, serve):
    # 1,500 spans, each the parent of the next: deeper than orjson's 255 levels, Python's
    # recursion limit and what common JSON readers nest (found by fuzzing at ~250: a traceback).
    db, trace, depth = tmp_path / "d.duckdb", "de" * 16, 1500
    ids = [f"{i + 1:016x}" for i in range(depth)]
    spans = [otlp_span(trace, ids[i], f"step{i}", parent=ids[i - 1] if i else None, start=i * 1000,
                       dur_ns=10**9 - i * 1000) for i in range(depth)]
    spans[-1]["attributes"] = [{"key": k, "value": {"stringValue": v}}
                               for k, v in {**TOOL, "gen_ai.tool.name": "leaf"}.items()]
    ingest_spans(db, tmp_path / "d.json", spans)
    res = run_toolctl("--db", db, "audit", "trace", trace, "--format", "json")
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(res.stdout)
    # flat, in tree order: each span once with its depth; the tree is its parent links
    assert [(s["span_id"], s["depth"]) for s in doc["spans"]] == list(zip(ids, range(depth)))
    assert [s["parent_span_id"] for s in doc["spans"][1:]] == ids[:-1]
    assert all("children" not in s for s in doc["spans"])
    assert doc["counts"]["spans"] == depth
    text = run_toolctl("--db", db, "audit", "trace", trace)
    assert text.returncode == 0, text.stderr[-2000:]
    lines = text.stdout.splitlines()
    for sid in ids:
        assert sum(sid in line for line in lines) == 1, sid
    # the indentation stops growing: deep spans are listed with their depth, readable at 200 columns
    assert max(len(line) for line in lines) <= 200 and "step1499" in text.stdout
    assert any(line.strip(" │├└─").startswith("[depth 1499] step1499 ") for line in lines)
    # through `toolctl serve` (an HTTP 500 before): the same bytes as a local read
    s = serve(db=db)
    remote = [run_toolctl("--db", db, "audit", "trace", trace, *f) for f in ((), ("--format", "json"))]
    assert s.stop() == 0
    assert [(r.returncode, r.stdout, r.stderr) for r in remote] == \
        [(0, text.stdout, ""), (0, res.stdout, "")]


def _span_only_call(tmp_path):
    """Call c1 as OTLP tool spans only: attempt 1 failed (3 ms), attempt 2 succeeded (7 ms),
    under an agent span; a lookup tool span without a call id is a call of its own."""
    db, trace = tmp_path / "s.duckdb", "ab" * 16
    search = {**TOOL, "gen_ai.tool.name": "search", "gen_ai.tool.call.id": "c1"}
    ingest_spans(db, tmp_path / "s.json", [
        otlp_span(trace, "0000000000000001", "agent", dur_ns=50_000_000),
        otlp_span(trace, "0000000000000002", "execute_tool search", parent="0000000000000001", start=1_000,
                  dur_ns=3_000_000, status=2, attrs={**search, "error.type": "TIMEOUT"}),
        otlp_span(trace, "0000000000000003", "execute_tool search", parent="0000000000000001",
                  start=5_000_000, dur_ns=7_000_000, attrs={**search, "toolctl.attempt": 2}),
        otlp_span(trace, "0000000000000004", "lookup", parent="0000000000000001", start=9_000_000,
                  dur_ns=2_500_000, attrs={**TOOL, "gen_ai.tool.name": "lookup"}),
    ])
    return db, trace


def test_call_that_arrived_only_as_tool_spans_shows_its_attempts_and_final(tmp_path):
    db, trace = _span_only_call(tmp_path)
    doc = audit_json(db, "call", "c1")
    assert doc["tool"] == "search" and doc["attempt_count"] == 2
    assert [(a["attempt"], a["status"], [(st["origin"], st["event_id"], st["error_code"]) for st in a["stages"]])
            for a in doc["attempts"]] == [(1, "error", [("span", f"{trace}:0000000000000002", "TIMEOUT")]),
                                          (2, "ok", [("span", f"{trace}:0000000000000003", None)])]
    assert doc["final"]["status"] == "ok" and doc["latency_used_ms"] == 3.0 + 7.0
    assert [s["span_id"] for s in doc["spans"]] == ["0000000000000002", "0000000000000003"]
    # the same figures stats has for the call
    [row] = json.loads(run_toolctl("--db", db, "stats", "--tool", "search", "--format", "json").stdout)
    assert (row["calls"], row["attempts"], row["errors"]) == (1, doc["attempt_count"], 0)
    text = run_toolctl("--db", db, "audit", "call", "c1").stdout
    assert "call c1 (search, 2 attempt(s))" in text and "attempt 1: span error 3.0 ms [TIMEOUT]" in text
    assert "final: ok; time used 10.0 ms" in text


def test_trace_counts_tool_span_calls_and_hangs_each_under_its_first_span(tmp_path):
    db, trace = _span_only_call(tmp_path)
    doc = audit_json(db, "trace", trace)
    assert doc["counts"] == {"spans": 4, "orphans": 0, "cycles": 0, "events": 0, "calls": 2}
    calls = {s["span_id"]: [(c["call_id"], c["tool"], c["attempt_count"]) for c in s["calls"]] for s in doc["spans"]}
    assert calls == {"0000000000000001": [], "0000000000000002": [("c1", "search", 2)],
                     "0000000000000003": [], "0000000000000004": [(None, "lookup", 1)]}
    assert doc["calls"] == [] and doc["events"] == []
    text = run_toolctl("--db", db, "audit", "trace", trace).stdout
    assert text.splitlines()[0] == f"trace {trace}: 4 span(s), 2 call(s), 0 event(s)"
    assert "call c1 search" in text and "call (no call id) lookup" in text
