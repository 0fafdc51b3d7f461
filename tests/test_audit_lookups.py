"""Known answers for audit search / export / duplicates / call / trace, and index use."""

from __future__ import annotations

import csv
import json

import duckdb

from conftest import event, run_toolctl, write_jsonl
from toolctl.audit.lookups import EventFilter, _search_sql
from toolctl.store import Store

# Call k1: attempt 1 validate+execute (timeout), attempt 2 execute ok; k2 re-executes idem-1.
DOCS = [
    event(1, ts="2026-11-24T06:00:00Z", tool="pay", call_id="k1", attempt=1, stage="validate",
          latency_ms=5, timeout_ms=1000, idempotency_key="idem-1", trace_id="ABCDEF0123", tenant="acme",
          user="u1", version="v2"),
    event(2, ts="2026-11-24T06:00:01Z", tool="pay", call_id="k1", attempt=1, stage="execute", status="error",
          latency_ms=400, timeout_ms=1000, idempotency_key="idem-1", trace_id="abcdef0123",
          error_code="TIMEOUT", http_status=504, tenant="acme"),
    event(3, ts="2026-11-24T06:00:02Z", tool="pay", call_id="k1", attempt=2, stage="execute",
          latency_ms=300, timeout_ms=1000, idempotency_key="idem-1", trace_id="abcdef0123",
          data={"charge": "ch_1"}, tenant="acme", custom_field={"x": 1}),
    event(4, ts="2026-11-24T06:00:03Z", tool="pay", call_id="k2", stage="execute", latency_ms=50,
          idempotency_key="idem-1", tenant="beta", args={"amount": 5}),
    event(5, ts="2026-11-24T06:00:04Z", tool="pay", call_id="k3", stage="execute", latency_ms=60,
          idempotency_key="idem-2", tenant="beta"),
    event(6, ts="2026-11-24T06:00:05Z", tool="search", call_id="k4", latency_ms=7, tenant="acme"),
]


def _db(tmp_path):
    db = tmp_path / "t.duckdb"
    r = run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", DOCS))
    assert r.returncode == 0, r.stderr
    return db


def _json(db, *args):
    r = run_toolctl("--db", db, "audit", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_search_filters_return_every_stored_field_newest_first(tmp_path):
    db = _db(tmp_path)
    assert [e["event_id"] for e in _json(db, "search", "--tenant", "acme")] == ["e6", "e3", "e2", "e1"]
    rows = _json(db, "search", "--trace-id", "ABCDEF0123", "--status", "ok")
    assert [e["event_id"] for e in rows] == ["e3", "e1"]
    e3 = rows[0]
    assert e3["data"] == {"charge": "ch_1"} and e3["extra"] == {"custom_field": {"x": 1}}
    assert e3["trace_id"] == "abcdef0123" and e3["ts"] == "2026-11-24T06:00:02Z"
    assert [e["event_id"] for e in _json(db, "search", "--http-status", "504")] == ["e2"]
    assert [e["event_id"] for e in _json(db, "search", "--idempotency-key", "idem-1", "--tenant", "beta")] == ["e4"]
    assert [e["event_id"] for e in _json(db, "search", "--since", "2026-11-24T06:00:03Z",
                                         "--until", "2026-11-24T06:00:05Z")] == ["e5", "e4"]
    assert [e["event_id"] for e in _json(db, "search", "--limit", "2")] == ["e6", "e5"]
    assert _json(db, "search", "--event-id", "e4")[0]["args"] == {"amount": 5}
    assert _json(db, "search", "--user", "u1")[0]["event_id"] == "e1"
    assert _json(db, "search", "--error-code", "TIMEOUT", "--version", "v2") == []


def test_search_jsonl_and_csv_hold_the_same_rows(tmp_path):
    db = _db(tmp_path)
    out = run_toolctl("--db", db, "audit", "search", "--tool", "pay", "--format", "jsonl").stdout
    assert [json.loads(l)["event_id"] for l in out.splitlines()] == ["e5", "e4", "e3", "e2", "e1"]
    rows = list(csv.DictReader(run_toolctl("--db", db, "audit", "search", "--tool", "pay", "--format", "csv")
                               .stdout.splitlines()))
    assert [r["event_id"] for r in rows] == ["e5", "e4", "e3", "e2", "e1"] and rows[2]["data"] == '{"charge": "ch_1"}'


def test_export_streams_each_format_with_the_same_filters(tmp_path):
    db = _db(tmp_path)
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"x.{fmt}"
        r = run_toolctl("--db", db, "audit", "export", "--tenant", "beta", "--format", fmt, "-o", out)
        assert r.returncode == 0 and "wrote 2 event(s)" in r.stderr
        reader = {"jsonl": "read_json", "csv": "read_csv", "parquet": "read_parquet"}[fmt]
        ids = duckdb.sql(f"SELECT event_id FROM {reader}('{out}')").fetchall()
        assert [i for (i,) in ids] == ["e5", "e4"]
    r = run_toolctl("--db", db, "audit", "export", "-o", tmp_path / "nope" / "x.jsonl")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_exported_times_say_they_are_utc_as_search_prints_them(tmp_path):
    db = _db(tmp_path)
    searched = [json.loads(x)["ts"] for x in run_toolctl(
        "--db", db, "audit", "search", "--tenant", "beta", "--format", "jsonl").stdout.splitlines()]
    assert searched == ["2026-11-24T06:00:04Z", "2026-11-24T06:00:03Z"]
    out = {fmt: tmp_path / f"x.{fmt}" for fmt in ("jsonl", "csv", "parquet")}
    for fmt, path in out.items():
        assert run_toolctl("--db", db, "audit", "export", "--tenant", "beta", "--format", fmt,
                           "-o", path).returncode == 0
    assert [json.loads(x)["ts"] for x in out["jsonl"].read_text().splitlines()] == searched
    assert [r["ts"] for r in csv.DictReader(out["csv"].open())] == searched
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")  # a reader elsewhere gets the same instants
    kind, first = con.execute(f"SELECT typeof(ts), epoch_us(ts) FROM read_parquet('{out['parquet']}')").fetchone()
    assert kind == "TIMESTAMP WITH TIME ZONE" and first == 1795500004 * 10**6  # 2026-11-24T06:00:04Z


def test_export_to_a_dash_is_refused_with_the_command_that_streams_to_stdout(tmp_path):
    db = _db(tmp_path)
    r = run_toolctl("--db", db, "audit", "export", "--tenant", "beta", "-o", "-", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "" and not (tmp_path / "-").exists()
    assert r.stderr.splitlines()[0] == "Error: audit export writes a file, not standard output"
    assert "audit search" in r.stderr and "--format jsonl" in r.stderr


def test_duplicates_lists_keys_executed_successfully_more_than_once(tmp_path):
    db = _db(tmp_path)
    rows = _json(db, "duplicates")
    # idem-1 succeeded at execute in k1 attempt 2 (e3) and again in k2 (e4); e1 is validate.
    assert [(r["idempotency_key"], r["successes"], r["calls"], r["call_ids"], r["event_ids"]) for r in rows] == \
        [("idem-1", 2, 2, ["k1", "k2"], ["e3", "e4"])]


def test_call_shows_each_attempt_and_the_timeout_budget_used(tmp_path):
    db = _db(tmp_path)
    doc = _json(db, "call", "k1")
    assert [(a["attempt"], [s["stage"] for s in a["stages"]], a["status"]) for a in doc["attempts"]] == \
        [(1, ["validate", "execute"], "error"), (2, ["execute"], "ok")]
    assert doc["latency_used_ms"] == 5 + 400 + 300 and doc["timeout_budget_ms"] == 1000
    assert abs(doc["budget_used_ratio"] - 0.705) < 1e-12 and doc["final"]["status"] == "ok"
    assert doc["spans"] == []
    r = run_toolctl("--db", db, "audit", "call", "nope")
    assert r.returncode == 1 and "no stored event or span has call_id 'nope'" in r.stderr
    text = run_toolctl("--db", db, "audit", "call", "k1").stdout
    assert "attempt 1: validate ok 5.0 ms → execute error 400 ms [TIMEOUT]" in text


def test_trace_lists_spans_in_tree_order_marks_orphans_and_attaches_calls(tmp_path):
    db = _db(tmp_path)
    trace = "0af7651916cd43dd8448eb211c80319c"
    def span(sid, parent, name, start):
        return {"traceId": trace.upper(), "spanId": sid, "parentSpanId": parent, "name": name, "kind": 1,
                "startTimeUnixNano": str(1764000000000000000 + start),
                "endTimeUnixNano": str(1764000000000000000 + start + 2_000_000), "status": {"code": 1}}
    spans = [span("a000000000000001", "", "agent", 0), span("a000000000000002", "a000000000000001", "tool", 1),
             span("a000000000000003", "ffffffffffffffff", "late-parent", 2)]
    (tmp_path / "s.json").write_text(json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}))
    evs = [event(10, trace_id=trace, span_id="A000000000000002", call_id="t1", stage="execute")]
    assert run_toolctl("--db", db, "ingest", tmp_path / "s.json", write_jsonl(tmp_path / "b.jsonl", evs)).returncode == 0
    doc = _json(db, "trace", trace.upper())
    assert [(s["name"], s["depth"]) for s in doc["spans"]] == [("agent", 0), ("tool", 1), ("late-parent", 0)]
    roots = {s["name"]: s for s in doc["spans"] if s["depth"] == 0}
    assert roots["late-parent"]["orphan"] and not roots["agent"]["orphan"]
    child = doc["spans"][1]
    assert child["parent_span_id"] == "a000000000000001" and child["duration_ms"] == 2.0
    assert child["calls"][0]["call_id"] == "t1"
    assert doc["counts"] == {"spans": 3, "orphans": 1, "cycles": 0, "events": 1, "calls": 1}
    tool_span = dict(span("a000000000000004", "a000000000000001", "execute_tool lookup", 3),
                     attributes=[{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                                 {"key": "gen_ai.tool.name", "value": {"stringValue": "lookup"}},
                                 {"key": "gen_ai.tool.call.id", "value": {"stringValue": "span-call-1"}}])
    (tmp_path / "s2.json").write_text(json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [tool_span]}]}]}))
    assert run_toolctl("--db", db, "ingest", tmp_path / "s2.json").returncode == 0
    call = _json(db, "call", "span-call-1")
    assert call["tool"] == "lookup" and [s["span_id"] for s in call["spans"]] == ["a000000000000004"]
    text = run_toolctl("--db", db, "audit", "trace", trace).stdout
    assert "orphan: parent not received" in text and "call t1" in text


def test_id_lookups_use_an_index_scan(tmp_path):
    db = _db(tmp_path)
    with Store.open(db, write=True) as store:
        store.execute("INSERT INTO events SELECT events.* REPLACE ('bulk' || i AS event_id, 'c' || i AS call_id,"
                      " 't' || i AS trace_id, 'i' || i AS idempotency_key) FROM events, range(200000) r(i)"
                      " WHERE event_id = 'e6'").fetchall()
        for col, value in (("event_id", "bulk123457"), ("call_id", "c123457"),
                           ("trace_id", "t123457"), ("idempotency_key", "i123457")):
            sql, params = _search_sql(EventFilter(**{col: value}))
            plan = store.execute("EXPLAIN ANALYZE " + sql, {**params, "limit": 10}).fetchall()[0][1]
            assert "Type: Index Scan" in plan, col
            assert store.fetch_dicts(sql, {**params, "limit": 10})[0][col] == value
