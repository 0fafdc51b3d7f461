"""One attempt recorded twice: as a gateway JSON line and as the OTLP tool span it names.

toolctl.instrument writes both (a span and, if asked, a JSON line with the span's trace_id
and span_id); a gateway that logs and traces does the same. Those are two records of one
attempt, and every figure, the gate, `audit duplicates` and the call timeline must count it
once, whichever record arrives first. The JSON line wins: it is the gateway's own record.
"""

from __future__ import annotations

import json

import pytest

from conftest import TOOL, ingest_spans, otlp_span, run_toolctl, write_jsonl

TRACE = "ab" * 16
SHADOWED, ALONE = "00000000000000a1", "00000000000000a2"


def _spans():
    common = {**TOOL, "gen_ai.tool.name": "search", "toolctl.idempotency_key": "k1"}
    return [
        otlp_span(TRACE, SHADOWED, "execute_tool search", start=0, dur_ns=2_000_000,
                  attrs={**common, "gen_ai.tool.call.id": "c1"}),
        otlp_span(TRACE, ALONE, "execute_tool search", start=10_000_000, dur_ns=3_000_000,
                  attrs={**common, "gen_ai.tool.call.id": "c2", "toolctl.idempotency_key": "k2"}),
    ]


def _line():
    # The gateway's own event id, upper-case ids (stored lower-case): matched by trace and span
    # id. ts is the spans' clock (conftest.SPAN_T0).
    return {"event_id": "gw-1", "ts": "2025-11-24T16:00:00Z", "tool": "search", "status": "ok",
            "latency_ms": 5.0, "call_id": "c1", "idempotency_key": "k1", "tenant": "acme",
            "trace_id": TRACE.upper(), "span_id": SHADOWED.upper()}


def _json(db, *args):
    r = run_toolctl("--db", db, *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(params=["line first", "span first"])
def store(request, tmp_path):
    db = tmp_path / "s.duckdb"
    steps = [lambda: run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "gw.jsonl", [_line()])),
             lambda: ingest_spans(db, tmp_path / "spans.json", _spans())]
    for step in (steps if request.param == "line first" else steps[::-1]):
        r = step()
        assert r is None or r.returncode == 0, r.stderr
    return db


def test_an_attempt_logged_and_traced_counts_once_with_the_lines_fields(store):
    [row] = _json(store, "stats")
    assert (row["attempts"], row["calls"], row["retries"]) == (2, 2, 0)
    assert row["p50_ms"] == pytest.approx(4.0)  # 5.0 (the line, not the span's 2.0) and 3.0
    by_tenant = {r["tenant"]: r["attempts"] for r in _json(store, "stats", "--by", "tenant")}
    assert by_tenant == {"acme": 1, None: 1}


def test_audit_search_and_duplicates_see_the_attempt_once(store):
    rows = _json(store, "audit", "search", "--trace-id", TRACE)
    assert sorted((r["origin"], r["event_id"]) for r in rows) == [
        ("event", "gw-1"), ("span", f"{TRACE}:{ALONE}")]
    assert len(_json(store, "audit", "search", "--tool", "search")) == 2
    # k1 succeeded once: two records of it are not a duplicate side effect
    assert _json(store, "audit", "duplicates") == []


def test_the_call_timeline_holds_one_attempt_and_its_budget_once(store):
    doc = _json(store, "audit", "call", "c1")
    assert doc["attempt_count"] == 1 and doc["latency_used_ms"] == pytest.approx(5.0)
    trace = _json(store, "audit", "trace", TRACE)
    assert trace["counts"]["calls"] == 2
    assert [s["span_id"] for s in trace["spans"]] == [SHADOWED, ALONE]  # every span still shown


def test_a_span_is_not_hidden_by_a_line_of_another_trace_or_span(tmp_path):
    db = tmp_path / "s.duckdb"
    other = [{**_line(), "event_id": "gw-2", "trace_id": "cd" * 16},          # same span id, other trace
             {**_line(), "event_id": "gw-3", "span_id": "00000000000000ff"},  # same trace, other span
             {**_line(), "event_id": "gw-4", "span_id": None}]
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "gw.jsonl", other)).returncode == 0
    ingest_spans(db, tmp_path / "spans.json", _spans())
    [row] = _json(db, "stats")
    assert row["attempts"] == 5


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_the_lake_engines_count_the_attempt_once_as_the_store_does(store, tmp_path, engine):
    # The lake's tool_calls is the migrations' view, transpiled (toolctl/engines/lake.py).
    from toolctl.engines import open_source, spark_session
    from toolctl.metrics.stats import StatsQuery, stats

    if engine == "spark":
        pytest.importorskip("pyspark")
        spark_session("local[2]")
    lake = tmp_path / "lake"
    assert run_toolctl("--db", store, "lake", "export", lake).returncode == 0
    with open_source(engine, lake, "local[2]") as src:
        rows = stats(src, StatsQuery(by=("tenant",)))
    assert {r["tenant"]: r["attempts"] for r in rows} == {"acme": 1, None: 1}


RETRY = "00000000000000a3"


def _other_ids_store(tmp_path):
    """Call c1 (key k1) traced as two attempts; the gateway logged attempt 1 under its own call
    id, idempotency key and event id, naming the span by trace and span id."""
    db = tmp_path / "s.duckdb"
    common = {**TOOL, "gen_ai.tool.name": "search", "gen_ai.tool.call.id": "c1",
              "toolctl.idempotency_key": "k1"}
    ingest_spans(db, tmp_path / "spans.json", [
        otlp_span(TRACE, SHADOWED, "execute_tool search", start=0, attrs={**common, "toolctl.attempt": 1}),
        otlp_span(TRACE, RETRY, "execute_tool search", start=5_000_000, attrs={**common, "toolctl.attempt": 2})])
    line = {**_line(), "call_id": "gw-c1", "idempotency_key": "gw-k1"}
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "gw.jsonl", [line])).returncode == 0
    return db


def test_audit_search_by_id_leaves_out_a_span_whose_line_carries_other_ids(tmp_path):
    # The line names the span by (trace_id, span_id) only: whatever ids the lookup goes by,
    # the span is that line's attempt, as in stats, and is not listed on its own.
    db = _other_ids_store(tmp_path)
    assert [r["attempts"] for r in _json(db, "stats")] == [2]
    retry = f"{TRACE}:{RETRY}"
    assert [r["event_id"] for r in _json(db, "audit", "search", "--call-id", "c1")] == [retry]
    assert [r["event_id"] for r in _json(db, "audit", "search", "--idempotency-key", "k1")] == [retry]
    assert _json(db, "audit", "search", "--event-id", f"{TRACE}:{SHADOWED}") == []
    assert [r["event_id"] for r in _json(db, "audit", "search", "--call-id", "gw-c1")] == ["gw-1"]


def test_audit_call_leaves_out_a_span_whose_line_carries_another_call_id(tmp_path):
    db = _other_ids_store(tmp_path)
    doc = _json(db, "audit", "call", "c1")
    assert [a["attempt"] for a in doc["attempts"]] == [2]
    assert [s["span_id"] for s in doc["spans"]] == [RETRY]
    assert doc["latency_used_ms"] == pytest.approx(2.0)


def test_the_lake_leaves_out_a_span_whose_line_lies_outside_the_window(tmp_path):
    # The attempt's time is its line's (the gateway's clock a millisecond behind its tracer's:
    # another hour partition): a window holding only the span holds no attempt, on the lake as
    # in the store, for stats and for audit search.
    db = tmp_path / "s.duckdb"
    ingest_spans(db, tmp_path / "spans.json", _spans()[:1])
    line = {**_line(), "ts": "2025-11-24T15:59:59.999Z"}
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "gw.jsonl", [line])).returncode == 0
    lake = tmp_path / "lake"
    assert run_toolctl("--db", db, "lake", "export", lake).returncode == 0
    for since, until, attempts in (("2025-11-24T16:00:00Z", "2025-11-24T17:00:00Z", []),
                                   ("2025-11-24T15:00:00Z", "2025-11-24T16:00:00Z", [1])):
        window = ("--since", since, "--until", until)
        assert [r["attempts"] for r in _json(db, "stats", *window)] == attempts
        assert [r["attempts"] for r in _json(db, "stats", *window, "--lake", lake)] == attempts
        for lookup in ((), ("--trace-id", TRACE)):
            want = ["gw-1"] * len(attempts)
            assert [r["event_id"] for r in _json(db, "audit", "search", *lookup, *window, "--lake", lake)] == want


def test_audit_call_of_a_call_id_only_a_hidden_span_carries_says_where_the_attempt_is(tmp_path):
    # The span of call c9 is recorded by a JSON line under another call id: the call has no
    # attempt of its own, which "no stored event or span has call_id" misstated.
    db = tmp_path / "s.duckdb"
    ingest_spans(db, tmp_path / "spans.json", [otlp_span(
        TRACE, SHADOWED, "execute_tool search",
        attrs={**TOOL, "gen_ai.tool.name": "search", "gen_ai.tool.call.id": "c9"})])
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "gw.jsonl", [_line()])).returncode == 0
    r = run_toolctl("--db", db, "audit", "call", "c9")
    assert r.returncode == 1 and r.stdout == ""
    error, hint = r.stderr.splitlines()
    assert error == (f"Error: call_id 'c9' has no attempt of its own: its tool span {TRACE}:{SHADOWED} "
                     "is recorded by JSON line gw-1 (call_id 'c1')"), error
    assert hint == f"Hint: see the attempt with `toolctl audit call c1` or `toolctl audit trace {TRACE}`", hint
