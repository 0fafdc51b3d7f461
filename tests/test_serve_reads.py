"""Read commands and ingest keep working while `toolctl serve` holds the store."""

from __future__ import annotations

import json
import os

import duckdb
import numpy as np
import pytest

from tests.conftest import TOOL, otlp_span, run_toolctl, write_jsonl
from tests.test_collector_server import NDJSON, ev, free_port, ndjson, serve  # noqa: F401 (fixture)

T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z in ns




def export_spans(url: str):
    """Export GenAI and OpenInference tool spans with the real SDK and OTLP/HTTP exporter.

    Returns the known answer: per-tool-span (duration ms, error?, auth failure?).
    """
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", compression=Compression.Gzip, timeout=30)
    provider = TracerProvider(resource=Resource.create({"service.name": "agent", "service.version": "1.2.3"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=16))
    tracer = provider.get_tracer("toolctl-test")
    rng = np.random.default_rng(7)
    known = []
    for i in range(40):
        start = T0 + i * 1_000_000_000
        dur_ns = int(rng.integers(1_000_000, 3_000_000_000))  # 1 ms … 3 s
        genai = i % 2 == 0
        attrs = ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
                  "gen_ai.tool.call.id": f"call-{i}"} if genai else
                 {"openinference.span.kind": "TOOL", "tool.name": "search", "tool.id": f"call-{i}"})
        span = tracer.start_span(f"execute_tool search" if genai else "search", kind=SpanKind.INTERNAL,
                                 attributes=attrs, start_time=start)
        auth = i % 7 == 3
        error = auth or i % 5 == 0
        if auth:  # the tool's HTTP call was refused: 401 or 403 on the child span
            child = tracer.start_span("POST", context=set_span_in_context(span), kind=SpanKind.CLIENT,
                                      attributes={"http.response.status_code": 401 if i % 2 else 403},
                                      start_time=start + 1000)
            child.set_status(Status(StatusCode.ERROR))
            child.end(end_time=start + 2000)
        if error:
            span.set_status(Status(StatusCode.ERROR, "tool failed"))
        span.end(end_time=start + dur_ns)
        known.append((dur_ns / 1e6, error, auth))
    assert provider.force_flush(30_000)
    provider.shutdown()
    return known


def test_stats_while_serving_equal_figures_from_the_spans_known_durations(serve):
    s = serve()
    known = export_spans(s.url)
    res = run_toolctl("--db", s.db, "stats", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert s.proc.poll() is None  # the server held the file the whole time
    [row] = json.loads(res.stdout)
    durations = np.array([d for d, _, _ in known])
    errors = sum(e for _, e, _ in known)
    assert row["calls"] == row["attempts"] == len(known)
    assert row["errors"] == errors
    assert row["error_rate"] == pytest.approx(errors / len(known))
    assert row["auth_failures"] == sum(a for _, _, a in known)
    for q, key in ((50, "p50_ms"), (95, "p95_ms"), (99, "p99_ms")):
        assert row[key] == pytest.approx(float(np.percentile(durations, q)), rel=1e-9)
    # Grouping and filters go through the same operation.
    res = run_toolctl("--db", s.db, "stats", "--by", "service", "--status", "error", "--format", "json")
    assert res.returncode == 0, res.stderr
    [row] = json.loads(res.stdout)
    assert row["service"] == "agent" and row["attempts"] == errors
    # Human table too (it makes two reads).
    res = run_toolctl("--db", s.db, "stats")
    assert res.returncode == 0 and "Total: 40 calls" in res.stdout
    assert s.stop() == 0
    # The receiver hashed each span row ahead of the writer: the ledger still verifies.
    verified = run_toolctl("--db", s.db, "audit", "verify")
    assert verified.returncode == 0, verified.stderr


def test_remote_reads_equal_local_reads_of_the_same_store(serve, tmp_path):
    s = serve()
    docs = [ev(i, tool=f"t{i % 3}", status="error" if i % 4 == 0 else "ok",
               ts=f"2026-11-24T06:{i % 60:02d}:00Z") for i in range(200)]
    body = ndjson(docs + ["{broken", '{"event_id": "x"}'])
    assert s.post("/v1/tool-calls", body, NDJSON).status_code == 200
    queries = [("stats", "--format", "json"), ("stats", "--by", "tool", "--every", "15m", "--format", "json"),
               ("stats", "--format", "csv"), ("rejects", "--format", "json"), ("rejects", "--limit", "1"),
               ("stats", "--by", "nonsense")]
    remote = [run_toolctl("--db", s.db, *q) for q in queries]
    assert s.stop() == 0
    local = [run_toolctl("--db", s.db, *q) for q in queries]
    for q, r, l in zip(queries, remote, local):
        assert (r.returncode, r.stdout, r.stderr) == (l.returncode, l.stdout, l.stderr), q
    assert remote[-1].returncode == 2 and "cannot group by 'nonsense'" in remote[-1].stderr


def stored_rows(db, rows_sql: str):
    """What an ingest left in a store: the rows ``rows_sql`` selects, its rejects and its
    ingest_sources records (to compare a forwarded ingest with a local one)."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return (conn.execute(rows_sql).fetchall(),
                conn.execute("SELECT source, line_no, reason, raw FROM rejects ORDER BY ALL").fetchall(),
                conn.execute("SELECT source, sha256, bytes, lines, accepted, duplicates, rejected"
                             " FROM ingest_sources ORDER BY ALL").fetchall())
    finally:
        conn.close()


def test_ingest_while_serving_forwards_lines_and_stores_what_a_local_ingest_stores(serve, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [ev(i) for i in range(50)] + ["not json", ev(3), ev(99, message="x" * 500),
                                                                             ev(98, message="key sk-abcdefghijklmnopqrstuv")])
    s = serve()
    res = run_toolctl("--db", s.db, "ingest", src, "--max-line-bytes", "300", "--format", "json")
    assert res.returncode == 3, res.stderr  # one rejected line, like a local ingest
    summary = json.loads(res.stdout)
    assert (summary["lines"], summary["accepted"], summary["duplicates"], summary["rejected"]) == (54, 51, 1, 2)
    assert summary["redacted"] == 1  # the collector redacted it; the summary says so
    assert s.stop() == 0
    local_db = tmp_path / "local.duckdb"
    local = run_toolctl("--db", local_db, "ingest", src, "--max-line-bytes", "300", "--format", "json")
    assert local.returncode == 3 and json.loads(local.stdout)["redacted"] == 1

    events = "SELECT event_id, source, line_no, latency_ms FROM events ORDER BY event_id"
    assert stored_rows(s.db, events) == stored_rows(local_db, events)


def test_forwarded_ingest_keeps_a_broken_gzips_reject_and_fits_small_request_limits(serve, tmp_path):
    # Found by fuzzing the forwarding: a truncated .jsonl.gz lost its "input ended abnormally"
    # reject (lines 128 instead of 129), and --batch-bytes was ignored, so a collector with a
    # 1 MiB --max-body-bytes answered 413 to every file over 4 MiB of lines.
    import gzip

    d = tmp_path / "in"
    d.mkdir()
    body = "".join(json.dumps(ev(i, message="m" * 600)) + "\n" for i in range(3000)).encode()
    whole = gzip.compress(body)
    (d / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (d / "big.jsonl").write_bytes(body.replace(b'"e', b'"f'))  # ~2 MiB, other event ids
    s = serve("--max-body-bytes", "1MiB")
    res = run_toolctl("--db", s.db, "ingest", d, "--batch-bytes", "512KiB", "--format", "json")
    assert res.returncode == 3, res.stderr
    forwarded = json.loads(res.stdout)
    assert s.stop() == 0
    local_db = tmp_path / "local.duckdb"
    local = json.loads(run_toolctl("--db", local_db, "ingest", d, "--format", "json").stdout)
    for doc in (forwarded, local):
        for src in doc["sources"]:
            src.pop("forwarded_to", None)
    assert forwarded == local
    events = "SELECT event_id, source, line_no FROM events ORDER BY ALL"
    assert stored_rows(s.db, events) == stored_rows(local_db, events)
    reasons = [r[2] for r in stored_rows(s.db, events)[1]]
    assert any(r.startswith("input ended abnormally after line") for r in reasons)


def test_otlp_files_ingested_while_serving_store_what_a_local_ingest_stores(serve, tmp_path):
    import gzip
    import shutil

    from tests.test_collector_otlp import FIXTURES, sdk_request

    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(FIXTURES / "genai_trace.json", d / "otel.json")  # one pretty-printed request
    per_line = (FIXTURES / "frameworks.jsonl").read_text().splitlines()
    # one request per line (the Collector's file exporter), a broken line among them
    (d / "exporter.jsonl").write_text("\n".join(per_line[:2] + ['{"resourceSpans": [tru'] + per_line[2:]) + "\n")
    payload, _, _ = sdk_request(tmp_path)
    (d / "traces.binpb").write_bytes(payload)
    (d / "copy.otlp.gz").write_bytes(gzip.compress(payload))
    s = serve()
    # --batch-bytes 4096: the per-line file goes in several requests, its line numbers kept
    res = run_toolctl("--db", s.db, "ingest", d, "--batch-bytes", "4096", "--format", "json")
    assert res.returncode == 3, res.stderr  # the broken line
    forwarded = json.loads(res.stdout)
    assert s.stop() == 0
    local_db = tmp_path / "local.duckdb"
    res = run_toolctl("--db", local_db, "ingest", d, "--format", "json")
    assert res.returncode == 3, res.stderr
    local = json.loads(res.stdout)
    for doc in (forwarded, local):
        for src in doc["sources"]:
            src.pop("forwarded_to", None)
    assert forwarded == local
    assert (local["spans"], local["rejected"]) > (10, 0)

    spans = "SELECT trace_id, span_id, source, tool, status, latency_ms FROM spans ORDER BY ALL"
    assert stored_rows(s.db, spans) == stored_rows(local_db, spans)


def test_a_forwarded_ingest_stores_a_non_ascii_source_path_as_a_local_ingest_does(serve, tmp_path):
    # Found by running `toolctl ingest` against a live collector: the source path travels in a
    # header, sent backslash-escaped and never unescaped, so events, spans and rejects of
    # ".../日本/données.jsonl" were stored as ".../\\u65e5\\u672c/donn\\xe9es.jsonl" (and
    # `toolctl rejects --source 日本` found nothing), unlike a local ingest of the same file.
    import gzip

    from tests.test_collector_otlp import FIXTURES

    d = tmp_path / "in" / "日本 100%"
    d.mkdir(parents=True)
    write_jsonl(d / "données.jsonl", [ev(i) for i in range(5)] + ["not json"])
    whole = gzip.compress(b"".join(json.dumps(ev(i)).encode() + b"\n" for i in range(10, 400)))
    (d / "coupé\u2028.jsonl.gz").write_bytes(whole[: len(whole) // 2])  # its reject names the source too
    (d / "трасса.json").write_bytes((FIXTURES / "genai_trace.json").read_bytes())
    (d / os.fsdecode(b"caf\xe9.jsonl")).write_bytes(b"oops\n")  # not UTF-8: labelled caf\xe9
    s = serve()
    res = run_toolctl("--db", s.db, "ingest", tmp_path / "in", "--format", "json")
    assert res.returncode == 3, res.stderr
    assert s.stop() == 0
    local_db = tmp_path / "local.duckdb"
    assert run_toolctl("--db", local_db, "ingest", tmp_path / "in").returncode == 3
    events = ("SELECT event_id, source, line_no FROM events UNION ALL "
              "SELECT span_id, source, NULL FROM spans ORDER BY ALL")
    forwarded, local = stored_rows(s.db, events), stored_rows(local_db, events)
    assert forwarded == local
    sources = {row[1] for row in forwarded[0]} | {row[0] for row in forwarded[1]}
    assert sources == {str(d / "données.jsonl"), str(d / "coupé\u2028.jsonl.gz"), str(d / "трасса.json"),
                       str(d / "caf\\xe9.jsonl")}


def test_a_stale_discovery_file_is_ignored(tmp_path):
    db = tmp_path / "s.duckdb"
    src = write_jsonl(tmp_path / "in.jsonl", [ev(1), ev(2)])
    assert run_toolctl("--db", db, "ingest", src).returncode == 0
    # A server that died without cleaning up: its pid no longer exists.
    dead = os.fork() if hasattr(os, "fork") else None
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (tmp_path / "s.duckdb.serve.json").write_text(json.dumps({"pid": dead, "url": f"http://127.0.0.1:{free_port()}"}))
    res = run_toolctl("--db", db, "stats", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["calls"] == 2
    res = run_toolctl("--db", db, "ingest", src, "--format", "json")
    assert res.returncode == 0 and json.loads(res.stdout)["duplicates"] == 2


def test_a_store_reached_through_a_symbolic_link_finds_the_collector_that_holds_it(serve, tmp_path):
    # Found running reads against a live collector: the discovery file was looked for next to
    # the path as given, so `--db current.duckdb` (a link to the served file) waited 10 s for
    # the lock and exited 4, and a second `serve` on the link was refused only by that lock.
    (tmp_path / "current.duckdb").symlink_to(tmp_path / "store.duckdb")
    s = serve()
    assert s.post("/v1/tool-calls", ndjson([ev(1), ev(2)]), NDJSON).status_code == 200
    link = tmp_path / "current.duckdb"
    res = run_toolctl("--db", link, "stats", "--format", "json", timeout=8)
    assert res.returncode == 0 and json.loads(res.stdout)[0]["calls"] == 2, res.stderr
    res = run_toolctl("--db", link, "serve", "--port", str(free_port()), timeout=8)
    assert res.returncode == 4 and "is already served by pid" in res.stderr, res.stderr
    assert s.stop() == 0


def test_audit_commands_while_serving_equal_their_local_output(serve, tmp_path):
    s = serve()
    docs = [ev(i, tool="pay", status="ok", call_id=f"c{i % 5}", idempotency_key=f"k{i % 5}",
               trace_id="AB" * 16, ts=f"2026-11-24T06:{i % 60:02d}:00Z") for i in range(20)]
    assert s.post("/v1/tool-calls", ndjson(docs), NDJSON).status_code == 200
    # and a call that arrives only as OTLP tool spans, with a key an event call already used
    tool = {**TOOL, "gen_ai.tool.name": "pay", "gen_ai.tool.call.id": "sc", "toolctl.idempotency_key": "k1"}
    spans = [otlp_span("CD" * 16, f"{i + 1:016x}", "execute_tool pay", start=i * 10**9,
                       status=2 if i == 0 else 0, attrs={**tool, "toolctl.attempt": i + 1}) for i in range(2)]
    otlp = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}
    assert s.post("/v1/traces", json.dumps(otlp).encode(), {"Content-Type": "application/json"}).status_code == 200
    queries = [("audit", "search", "--call-id", "c1", "--format", "json"),
               ("audit", "search", "--tool", "pay", "--limit", "3"),
               ("audit", "duplicates", "--format", "json"), ("audit", "call", "c2", "--format", "json"),
               ("audit", "trace", "AB" * 16, "--format", "json"), ("audit", "log", "--format", "json"),
               ("audit", "verify", "--format", "json"),
               # errors too (found by fuzzing: an unknown id read through the server named the
               # collector and its HTTP status instead of the local message and hint)
               ("audit", "call", "nope"), ("audit", "trace", "ff" * 16),
               ("audit", "search", "--call-id", "sc"), ("audit", "search", "--tool", "pay", "--format", "csv"),
               ("audit", "call", "sc", "--format", "json"), ("audit", "trace", "cd" * 16)]
    remote = [run_toolctl("--db", s.db, *q) for q in queries]
    exported = tmp_path / "served.jsonl"
    exp = run_toolctl("--db", s.db, "audit", "export", "--tool", "pay", "-o", exported)
    assert s.stop() == 0
    local = [run_toolctl("--db", s.db, *q) for q in queries]
    for q, r, l in zip(queries, remote, local):
        assert (r.returncode, r.stdout, r.stderr) == (l.returncode, l.stdout, l.stderr), q
    assert remote[0].returncode == 0 and len(json.loads(remote[0].stdout)) == 4
    assert json.loads(remote[6].stdout)["intact"] is True
    assert remote[8].returncode == 1 and remote[8].stderr.startswith("Error: nothing stored has trace id")
    assert json.loads(remote[11].stdout)["attempt_count"] == 2 and "1 call(s)" in remote[12].stdout
    dup = json.loads(remote[2].stdout)[0]  # k1: four events and the span attempt that succeeded
    assert (dup["idempotency_key"], dup["successes"], dup["calls"]) == ("k1", 4 + 1, 1 + 1)
    assert exp.returncode == 0 and len(exported.read_text().splitlines()) == 20 + 2


def test_gate_and_runbook_run_while_serving_decide_like_a_local_run_and_are_ledgered(serve, tmp_path):
    s = serve()
    docs = []
    for i in range(400):
        version = "v2" if i % 2 else "v1"
        docs.append(ev(i, tool="search", version=version, call_id=f"c{i}", latency_ms=100 + (i % 50),
                       status="ok", ts=f"2026-11-24T06:{i % 60:02d}:{i % 7:02d}Z"))
    assert s.post("/v1/tool-calls", ndjson(docs), NDJSON).status_code == 200
    window = ("--since", "2026-11-24T06:00:00Z", "--until", "2026-11-24T07:00:00Z")
    gate = ("gate", "--baseline", "v1", "--candidate", "v2", *window, "--format", "json")
    runbook = ("runbook", "run", "retry-storm", *window, "--format", "json")
    served_gate, served_runbook = run_toolctl("--db", s.db, *gate), run_toolctl("--db", s.db, *runbook)
    served_history = run_toolctl("--db", s.db, "gate", "history", "--format", "json")  # refused before
    assert s.stop() == 0
    local_history = run_toolctl("--db", s.db, "gate", "history", "--format", "json")
    assert served_history.returncode == 0, served_history.stderr
    assert json.loads(served_history.stdout) == json.loads(local_history.stdout)[-1:]
    local_gate, local_runbook = run_toolctl("--db", s.db, *gate), run_toolctl("--db", s.db, *runbook)
    assert served_gate.returncode == local_gate.returncode != 40, served_gate.stderr
    a, b = json.loads(served_gate.stdout), json.loads(local_gate.stdout)
    assert a["verdict"] == b["verdict"]
    assert [c["outcome"] for c in a["checks"]] == [c["outcome"] for c in b["checks"]]
    assert b["evaluation"] == a["evaluation"] + 1  # the served run was persisted in the history
    assert served_runbook.returncode == local_runbook.returncode != 40, served_runbook.stderr
    assert json.loads(served_runbook.stdout)["checks"] == json.loads(local_runbook.stdout)["checks"]
    kinds = [e["kind"] for e in json.loads(run_toolctl("--db", s.db, "audit", "log", "--format", "json").stdout)]
    assert kinds.count("gate_decision") == 2 and kinds.count("runbook_run") == 2
    assert run_toolctl("--db", s.db, "audit", "verify").returncode == 0


def test_baselines_and_regress_while_serving_equal_their_local_output_and_are_ledgered(serve, tmp_path):
    """Found by fuzzing: while serving, `baseline save/delete` waited 10 s for the lock and
    exited 4 with a hint that did not apply; `baseline list/show` and `regress` exited 1."""
    import re

    s = serve()
    docs = [ev(i, tool="search" if i % 3 else "fetch", version="v2" if i % 2 else "v1", call_id=f"c{i}",
               latency_ms=100 + (i % 50), status="error" if i % 17 == 0 else "ok",
               ts=f"2026-11-24T06:{i % 60:02d}:{i % 7:02d}Z") for i in range(600)]
    assert s.post("/v1/tool-calls", ndjson(docs), NDJSON).status_code == 200
    local_db = tmp_path / "local.duckdb"
    assert run_toolctl("--db", local_db, "ingest", write_jsonl(tmp_path / "e.jsonl", docs)).returncode == 0
    window = ("--since", "2026-11-24T06:00:00Z", "--until", "2026-11-24T07:00:00Z")
    steps = [("baseline", "save", "b1", "--version", "v1", "--format", "json"),
             ("baseline", "save", "b2", "--version", "v2"), ("baseline", "list", "--format", "json"),
             ("baseline", "list"), ("baseline", "show", "b1"), ("baseline", "show", "b2", "--format", "json"),
             ("regress", "--baseline", "b1", *window, "--format", "json"), ("regress", "--baseline", "b1", *window),
             ("baseline", "save", "b1"), ("baseline", "show", "nope"), ("regress", "--baseline", "nope", *window),
             ("baseline", "delete", "b2"), ("baseline", "delete", "b2"), ("baseline", "list", "--format", "json")]

    def now_free(text: str) -> str:  # a baseline's created_at is the time it was saved
        return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z",
                      lambda m: m[0] if m[0].startswith("2026-11-24") else "<saved>", text)

    served = [run_toolctl("--db", s.db, *q, timeout=60) for q in steps]
    # Spark would start inside the collector's process: refused, with the way out
    spark = run_toolctl("--db", s.db, "regress", "--baseline", "b1", "--lake", tmp_path / "lake", "--engine", "spark")
    assert spark.returncode == 2 and "cannot run while `toolctl serve` holds the store" in spark.stderr
    assert s.stop() == 0
    local = [run_toolctl("--db", local_db, *q) for q in steps]
    for q, r, l in zip(steps, served, local):
        assert (r.returncode, now_free(r.stdout), r.stderr) == (l.returncode, now_free(l.stdout), l.stderr), q
    assert [r.returncode for r in served] == [0, 0, 0, 0, 0, 0, served[6].returncode, served[6].returncode,
                                              2, 2, 2, 0, 2, 0]
    assert json.loads(served[6].stdout)["verdict"] != "error" and served[6].returncode in (0, 10, 20)
    assert [b["name"] for b in json.loads(served[-1].stdout)] == ["b1"]
    kinds = [e["kind"] for e in json.loads(run_toolctl("--db", s.db, "audit", "log", "--format", "json").stdout)]
    assert kinds.count("baseline_save") == 2 and kinds.count("baseline_delete") == 1
    assert run_toolctl("--db", s.db, "audit", "verify").returncode == 0


def test_ingest_with_redaction_rules_is_refused_while_a_collector_that_would_skip_them_holds_the_store(
        serve, tmp_path):
    """The lines are forwarded to `toolctl serve`, which redacts with its own rules: a
    --redaction-rules file (or toolctl.toml's redaction.rules) was silently not applied and
    the secrets it names were stored in clear, exit 0."""
    rules = tmp_path / "rules.toml"
    rules.write_text('[redaction]\nextra_keys = ["ssn"]\n', encoding="utf-8")
    src = write_jsonl(tmp_path / "in.jsonl", [ev(1, args={"ssn": "123-45-6789"})])
    s = serve()
    res = run_toolctl("--db", s.db, "ingest", src, "--redaction-rules", rules)
    assert res.returncode == 2 and "TOOLCTL_REDACTION_RULES" in res.stderr, res.stderr
    (tmp_path / "toolctl.toml").write_text(f'[redaction]\nrules = "{rules}"\n', encoding="utf-8")
    res = run_toolctl("--db", s.db, "ingest", src, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert s.stop() == 0
    assert _query(s.db, "SELECT count(*) FROM events") == [(0,)]
    # the way the hint says: the collector started with the rules redacts them
    s = serve(db=tmp_path / "b.duckdb", env={"TOOLCTL_REDACTION_RULES": str(rules)})
    res = run_toolctl("--db", s.db, "ingest", src)
    assert res.returncode == 0, res.stderr
    assert s.stop() == 0
    ((ssn,),) = _query(s.db, "SELECT args->>'ssn' FROM events")
    assert ssn.startswith("[REDACTED:ssn:")


def test_a_collector_redacts_with_its_toolctl_toml_rules_and_takes_ingests_that_name_the_same(serve, tmp_path):
    """`toolctl serve` read redaction.rules from toolctl.toml nowhere: OTLP spans and lines
    posted to it kept what those rules name in clear. It applies them now, and a forwarded
    ingest whose own rules (flag, environment or the same toolctl.toml) redact exactly as
    the collector's is taken instead of refused."""
    rules = tmp_path / "rules.toml"
    rules.write_text('[redaction]\nextra_keys = ["ssn"]\n', encoding="utf-8")
    same = tmp_path / "same-rules.toml"  # another path, the same rules
    same.write_text(rules.read_text("utf-8"), encoding="utf-8")
    config = tmp_path / "toolctl.toml"
    config.write_text(f'[redaction]\nrules = "{rules}"\n', encoding="utf-8")
    s = serve(env={"TOOLCTL_CONFIG": str(config)})
    assert s.post("/v1/tool-calls", ndjson([ev(1, args={"ssn": "123-45-6789"})]), NDJSON).status_code == 200
    src = write_jsonl(tmp_path / "in.jsonl", [ev(2, args={"ssn": "987-65-4321"})])
    for before, after, env in (([], ["--redaction-rules", same], None),
                               ([], [], {"TOOLCTL_REDACTION_RULES": str(same)}),
                               (["--config", config], [], None)):
        res = run_toolctl("--db", s.db, *before, "ingest", src, *after, env=env)
        assert res.returncode == 0, (before, after, env, res.stderr)
    other = tmp_path / "other.toml"
    other.write_text('[redaction]\nextra_keys = ["passport"]\n', encoding="utf-8")
    res = run_toolctl("--db", s.db, "ingest", src, "--redaction-rules", other)
    assert res.returncode == 2 and "other rules" in res.stderr, res.stderr
    assert s.stop() == 0
    ssns = [r[0] for r in _query(s.db, "SELECT args->>'ssn' FROM events ORDER BY event_id")]
    assert len(ssns) == 2 and all(v.startswith("[REDACTED:ssn:") for v in ssns), ssns


def _query(db, sql: str) -> list[tuple]:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
