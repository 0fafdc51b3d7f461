"""Known answers for audit search / export / duplicates / call / trace, and index use."""

from __future__ import annotations

import csv
import json
from datetime import datetime

import duckdb

from conftest import SPAN_T0, TOOL, event, ingest_spans, otlp_span, run_toolctl, write_jsonl
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


# A call that arrived only as OTLP tool spans: call s1, attempt 1 failed, attempt 2 succeeded,
# under an agent span (not a tool call); s2 is another call with s1's idempotency key.
SPAN_TRACE = "5a" * 16


def _span_db(tmp_path):
    db = _db(tmp_path)
    pay = {**TOOL, "gen_ai.tool.name": "pay", "tenant.id": "acme", "toolctl.idempotency_key": "idem-s"}
    ingest_spans(db, tmp_path / "s.json", [
        otlp_span(SPAN_TRACE, "00000000000000a0", "invoke_agent", dur_ns=50_000_000),
        otlp_span(SPAN_TRACE, "00000000000000a1", "execute_tool pay", parent="00000000000000a0", start=1_000,
                  dur_ns=3_000_000, status=2, attrs={**pay, "gen_ai.tool.call.id": "s1", "error.type": "TIMEOUT",
                                                     "http.response.status_code": 504}),
        otlp_span(SPAN_TRACE, "00000000000000a2", "execute_tool pay", parent="00000000000000a0", start=5_000_000,
                  dur_ns=7_000_000, attrs={**pay, "gen_ai.tool.call.id": "s1", "toolctl.attempt": 2}),
        otlp_span(SPAN_TRACE, "00000000000000a3", "execute_tool pay", parent="00000000000000a0", start=20_000_000,
                  dur_ns=1_000_000, attrs={**pay, "gen_ai.tool.call.id": "s2"}),
    ], service="gw")
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
        assert r.returncode == 0 and "wrote 2 tool-call row(s)" in r.stderr
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


def test_duplicates_count_successful_tool_spans_sharing_an_idempotency_key(tmp_path):
    db = _span_db(tmp_path)
    rows = _json(db, "duplicates")
    # idem-s: s1 failed at attempt 1 (a1), succeeded at attempt 2 (a2); s2 succeeded again (a3)
    assert [(r["idempotency_key"], r["successes"], r["calls"], r["call_ids"], r["event_ids"]) for r in rows] == \
        [("idem-1", 2, 2, ["k1", "k2"], ["e3", "e4"]),
         ("idem-s", 2, 2, ["s1", "s2"], [f"{SPAN_TRACE}:00000000000000a2", f"{SPAN_TRACE}:00000000000000a3"])]
    assert _json(db, "duplicates", "--until", "2025-11-24T16:00:00.010Z") == []  # a3 starts at +20 ms


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


def test_id_lookups_use_an_index_scan_on_events_and_on_spans(tmp_path):
    db = _span_db(tmp_path)
    with Store.open(db, write=True) as store:
        store.execute("INSERT INTO events SELECT events.* REPLACE ('bulk' || i AS event_id, 'c' || i AS call_id,"
                      " 't' || i AS trace_id, 'i' || i AS idempotency_key) FROM events, range(200000) r(i)"
                      " WHERE event_id = 'e6'").fetchall()
        store.execute("INSERT INTO spans SELECT spans.* REPLACE (printf('%032x', i) AS trace_id, 'sc' || i AS call_id,"
                      " 'si' || i AS idempotency_key) FROM spans, range(200000) r(i)"
                      " WHERE span_id = '00000000000000a3'").fetchall()
        span_trace = f"{123457:032x}"
        for col, value, span_value in (("event_id", "bulk123457", f"{span_trace}:00000000000000a3"),
                                       ("call_id", "c123457", "sc123457"), ("trace_id", "t123457", span_trace),
                                       ("idempotency_key", "i123457", "si123457")):
            for v, origin in ((value, "event"), (span_value, "span")):
                sql, params = _search_sql(EventFilter(**{col: v}))
                plan = store.execute("EXPLAIN ANALYZE " + sql, {**params, "limit": 10}).fetchall()[0][1]
                # each table is read through its index, or not at all (zone maps rule the id out)
                assert "Type: Index Scan" in plan and "Sequential Scan" not in plan, (col, origin)
                [row] = store.fetch_dicts(sql, {**params, "limit": 10})
                assert (row[col], row["origin"]) == (v, origin)


def test_search_finds_calls_that_arrived_only_as_tool_spans_as_stats_counts_them(tmp_path):
    db = _span_db(tmp_path)
    rows = _json(db, "search", "--call-id", "s1")
    a1, a2 = f"{SPAN_TRACE}:00000000000000a1", f"{SPAN_TRACE}:00000000000000a2"
    assert [(r["event_id"], r["origin"], r["attempt"], r["status"], r["latency_ms"]) for r in rows] == \
        [(a2, "span", 2, "ok", 7.0), (a1, "span", 1, "error", 3.0)]
    assert rows[1]["ts"] == "2025-11-24T16:00:00.000001Z" and rows[1]["span_id"] == "00000000000000a1"
    assert (rows[1]["error_code"], rows[1]["http_status"], rows[1]["tenant"], rows[1]["service"]) == \
        ("TIMEOUT", 504, "acme", "gw")
    # the agent span is stored but is not a tool call
    assert [r["event_id"] for r in _json(db, "search", "--trace-id", SPAN_TRACE.upper())] == \
        [f"{SPAN_TRACE}:00000000000000a3", a2, a1]
    assert [r["event_id"] for r in _json(db, "search", "--event-id", a1)] == [a1]
    assert [r["event_id"] for r in _json(db, "search", "--idempotency-key", "idem-s", "--status", "ok")] == \
        [f"{SPAN_TRACE}:00000000000000a3", a2]
    assert [r["event_id"] for r in _json(db, "search", "--tool", "pay", "--status", "error")] == ["e2", a1]
    # events keep their shape, and say they are events
    e3 = _json(db, "search", "--event-id", "e3")[0]
    assert e3["origin"] == "event" and list(e3)[:3] == ["event_id", "ts", "tool"] and list(e3)[-1] == "origin"
    # the same rows, with the same values, as the tool_calls view stats counts
    cols = ("event_id", "ts", "tool", "status", "latency_ms", "call_id", "tenant", "user", "service",
            "version", "stage", "attempt", "error_code", "http_status", "retryable", "confidence",
            "idempotency_key", "timeout_ms", "trace_id", "origin")
    with Store.open(db, write=False) as store:
        view = store.fetch_dicts("SELECT * REPLACE (epoch_us(ts) AS ts), user_id AS user FROM tool_calls"
                                 " ORDER BY event_id")
    searched = sorted(_json(db, "search", "--limit", "1000"), key=lambda r: r["event_id"])
    for r in searched:
        r["ts"] = round(datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp() * 1e6)
    assert [tuple(r[c] for c in cols) for r in searched] == [tuple(v[c] for c in cols) for v in view]
    text = run_toolctl("--db", db, "audit", "search", "--call-id", "s1").stdout
    assert "0 event(s), 2 tool span(s), newest first" in text and text.count(" span ") == 2


def test_export_writes_the_rows_search_finds_tool_spans_included(tmp_path):
    db = _span_db(tmp_path)
    searched = _json(db, "search", "--tool", "pay", "--limit", "1000")
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"x.{fmt}"
        r = run_toolctl("--db", db, "audit", "export", "--tool", "pay", "--format", fmt, "-o", out)
        assert r.returncode == 0 and f"wrote {len(searched)} tool-call row(s)" in r.stderr
        reader = {"jsonl": "read_json", "csv": "read_csv", "parquet": "read_parquet"}[fmt]
        got = duckdb.sql(f"SELECT event_id, origin FROM {reader}('{out}')").fetchall()
        assert got == [(r["event_id"], r["origin"]) for r in searched], fmt
    lines = [json.loads(x) for x in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert [x["ts"] for x in lines] == [r["ts"] for r in searched]
