"""`GET /metrics` and the collector's own OpenTelemetry, against real `toolctl serve` processes.

The exposition is parsed with prometheus-client's parser (an implementation independent of
the hand-written renderer). Expected figures come from labels written next to each input
line, never from the code under test.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import tomllib
from collections import Counter

import duckdb
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import tests.test_collector_server as tcs
from tests.conftest import REPO
from tests.test_collector_server import NDJSON, TOKEN, ev, ndjson, serve  # noqa: F401 (fixture)

JSON_CT = {"Content-Type": "application/json"}


def scrape(s, token: str | None = None) -> dict[str, dict[tuple, float]]:
    """sample name -> {sorted label items: value}, parsed by prometheus-client."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(s.url + "/metrics", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def by(metrics: dict, name: str, **fixed: str) -> dict:
    """The samples of ``name`` whose labels include ``fixed``, keyed by their other labels."""
    out = {}
    for labels, value in metrics.get(name, {}).items():
        d = dict(labels)
        if all(d.get(k) == v for k, v in fixed.items()):
            rest = tuple(v for k, v in labels if k not in fixed)
            out[rest[0] if len(rest) == 1 else rest] = value
    return out


# Each JSON line with what it must do: ok / error (stored, that status), dup, or a reject class.
LINES = [
    (ev(1, tool="search"), "ok"),
    (ev(2, tool="search", status="error"), "error"),
    (ev(3, tool="fetch", status="error", args={"password": "hunter2-secret", "q": "x"}), "error"),
    ("{not json", "invalid_json"),
    (ev(4, status="maybe"), "invalid_value"),
    ({"event_id": "e5", "ts": "2026-11-24T06:00:00Z", "status": "ok", "latency_ms": 1}, "missing_field"),
    (ev(1, tool="search"), "dup"),
    ("[1, 2]", "not_object"),
    (ev(6, latency_ms="slow"), "wrong_type"),
]
REDACTED_IN_LINES = 1  # the password value above


def _span(trace: str, span: str, name: str, attrs: dict, status: int = 0) -> dict:
    t0 = 1_764_000_000_000_000_000
    return {"traceId": trace, "spanId": span, "name": name, "kind": 1,
            "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 5_000_000),
            "status": {"code": status},
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}


def test_metrics_count_what_was_received_stored_and_rejected(serve):
    s = serve()
    body = ndjson([line for line, _ in LINES] + [""])  # a blank line is not a line
    outcome = Counter(o for _, o in LINES)
    stored_lines = outcome["ok"] + outcome["error"]
    reject_classes = {k: v for k, v in outcome.items() if k not in ("ok", "error", "dup")}

    assert s.post("/v1/tool-calls", body, NDJSON).status_code == 200
    # The same body again: valid lines are duplicates now, rejects were kept the first time.
    assert s.post("/v1/tool-calls", body, NDJSON).status_code == 200

    tool_span = _span("ab" * 16, "cd" * 8, "execute_tool lookup",
                      {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup",
                       "password": "hunter2-secret"}, status=2)  # one field to redact
    plain_span = _span("ab" * 16, "ce" * 8, "SELECT", {"db.system": "duckdb"})
    bad_span = _span("zz", "cf" * 8, "broken", {})
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [tool_span, plain_span, bad_span]}]}]}
    assert s.post("/v1/traces", json.dumps(doc).encode(), JSON_CT).status_code == 200

    records = [{"body": {"stringValue": json.dumps(ev(10, tool="search"))}},
               {"body": {"stringValue": "just a message"}}]
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    assert s.post("/v1/logs", json.dumps(logs).encode(), JSON_CT).status_code == 200

    assert s.post("/v1/tool-calls", b"{}", {"Content-Type": "text/html"}).status_code == 415
    assert s.post("/v1/traces", b"{not json", JSON_CT).status_code == 400
    assert httpx.get(s.url + "/no/such/path").status_code == 404

    m = scrape(s)
    n_lines = len(LINES)
    assert by(m, "toolctl_received_items_total", route="/v1/tool-calls") == {"line": 2 * n_lines}
    assert by(m, "toolctl_received_items_total", route="/v1/traces") == {"span": 3}
    assert by(m, "toolctl_received_items_total", route="/v1/logs") == {"log_record": 2}
    assert by(m, "toolctl_stored_total", table="events") == {"/v1/tool-calls": stored_lines, "/v1/logs": 1}
    assert by(m, "toolctl_stored_total", table="spans") == {"/v1/traces": 2}
    assert by(m, "toolctl_duplicates_total") == {
        "/v1/tool-calls": outcome["dup"] + (stored_lines + outcome["dup"]), "/v1/traces": 0, "/v1/logs": 0}
    assert by(m, "toolctl_rejected_total", route="/v1/tool-calls") == {
        **reject_classes, "already_kept": sum(reject_classes.values())}
    assert by(m, "toolctl_rejected_total", route="/v1/traces") == {"invalid_span": 1}
    assert by(m, "toolctl_rejected_total", route="/v1/logs") == {"not_object": 1}
    # Values redacted in what was stored: the re-sent copy was redacted in passing, not stored.
    assert by(m, "toolctl_redacted_fields_total")["/v1/tool-calls"] == REDACTED_IN_LINES
    assert by(m, "toolctl_redacted_fields_total")["/v1/traces"] == 1

    # No line carries a call_id: every stored attempt is a call of its own.
    attempts = Counter(line["tool"] for line, o in LINES if o in ("ok", "error"))
    errors = Counter(line["tool"] for line, o in LINES if o == "error")
    attempts.update({"lookup": 1, "search": 1})  # the tool span, the log record
    errors.update({"lookup": 1})
    assert by(m, "toolctl_tool_attempts_total") == dict(attempts)
    assert by(m, "toolctl_tool_attempt_errors_total") == {tool: errors.get(tool, 0) for tool in attempts}
    assert by(m, "toolctl_tool_calls_total") == dict(attempts)

    assert by(m, "toolctl_responses_total", route="/v1/tool-calls") == {"200": 2, "415": 1}
    assert by(m, "toolctl_responses_total", route="/v1/traces") == {"200": 1, "400": 1}
    assert by(m, "toolctl_responses_total", route="other") == {"404": 1}
    assert by(m, "toolctl_requests_total")["/metrics"] == 1  # this scrape, before its answer
    assert "/metrics" not in by(m, "toolctl_responses_total", code="200")
    assert by(m, "toolctl_commit_duration_seconds_count") == {(): 4}  # one per committed write
    assert by(m, "toolctl_commit_duration_seconds_bucket")["+Inf"] == 4
    assert by(m, "toolctl_queue_items") == {(): 0}
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert by(m, "toolctl_build_info") == {("%d.%d.%d" % sys.version_info[:3], version): 1}  # (python, version)
    assert abs(by(m, "process_start_time_seconds")[()] - time.time()) < 600

    assert s.stop() == 0
    conn = duckdb.connect(str(s.db), read_only=True)
    try:
        events = conn.execute("SELECT count(*) FROM events").fetchall()[0][0]
        spans = conn.execute("SELECT count(*) FROM spans").fetchall()[0][0]
    finally:
        conn.close()
    assert events == stored_lines + 1 and spans == 2  # the counters match the store


def test_tool_labels_escape_quotes_newlines_unicode_and_overflow_to_other(serve):
    s = serve(env={"TOOLCTL_METRICS_MAX_TOOLS": "4"})
    tools = ['say "hi"', "two\nlines", "back\\slash", "检索 🔧", "fifth", "sixth"]
    for i, tool in enumerate(tools):  # one request each: labels go to the first four seen
        status = "error" if i % 2 else "ok"
        assert s.post("/v1/tool-calls", ndjson([ev(i, tool=tool, status=status)]), NDJSON).status_code == 200
    m = scrape(s)
    expected_calls = {t: 1 for t in tools[:4]} | {"_other": 2}
    assert by(m, "toolctl_tool_attempts_total") == expected_calls
    assert by(m, "toolctl_tool_calls_total") == expected_calls
    assert by(m, "toolctl_tool_attempt_errors_total") == {'say "hi"': 0, "two\nlines": 1, "back\\slash": 0,
                                                          "检索 🔧": 1, "_other": 1}
    # A tool already labelled keeps its own series after the cap is reached.
    assert s.post("/v1/tool-calls", ndjson([ev(99, tool="two\nlines")]), NDJSON).status_code == 200
    assert by(scrape(s), "toolctl_tool_calls_total")["two\nlines"] == 2
    assert s.stop() == 0


# Attempts of retried calls, sent in two requests the way a gateway streams them: a call's
# later attempts arrive after its first. Each with the (tool, call, final?) it stands for.
RETRIES_FIRST = [
    ev(1, tool="search", call_id="c1", attempt=1, status="error"),
    ev(2, tool="search", call_id="c2", attempt=1),
    ev(3, tool="fetch", call_id="c3", attempt=1, status="error"),
    ev(4, tool="fetch", status="error"),  # no call_id: a call of its own
    ev(5, tool="fetch", call_id="c4"),  # attempt absent: 1
]
RETRIES_LATER = [
    ev(6, tool="search", call_id="c1", attempt=2, status="error"),
    ev(7, tool="search", call_id="c1", attempt=3),
    ev(8, tool="fetch", call_id="c3", attempt=2, status="error"),
]


def test_tool_calls_count_calls_started_and_attempts_count_every_stored_attempt(serve):
    s = serve()
    assert s.post("/v1/tool-calls", ndjson(RETRIES_FIRST), NDJSON).status_code == 200
    assert s.post("/v1/tool-calls", ndjson(RETRIES_LATER), NDJSON).status_code == 200
    m = scrape(s)
    sent = RETRIES_FIRST + RETRIES_LATER
    attempts = Counter(e["tool"] for e in sent)
    attempt_errors = Counter(e["tool"] for e in sent if e["status"] == "error")
    calls = Counter(e["tool"] for e in sent if "call_id" not in e or e.get("attempt", 1) == 1)
    assert dict(calls) == {"search": 2, "fetch": 3}  # c1, c2; c3, the solo event, c4
    assert by(m, "toolctl_tool_attempts_total") == dict(attempts) == {"search": 4, "fetch": 4}
    assert by(m, "toolctl_tool_attempt_errors_total") == dict(attempt_errors) == {"search": 2, "fetch": 3}
    assert by(m, "toolctl_tool_calls_total") == dict(calls)
    assert s.stop() == 0

    # Every call's first attempt was stored, so the counters agree with `toolctl stats`.
    from tests.conftest import run_toolctl

    res = run_toolctl("--db", s.db, "stats", "--by", "tool", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = {r["tool"]: r for r in json.loads(res.stdout)}
    assert {t: r["calls"] for t, r in rows.items()} == dict(calls)
    assert {t: r["attempts"] for t, r in rows.items()} == dict(attempts)


def test_metrics_needs_the_bearer_token_like_the_other_routes(serve):
    s = serve(env={"TOOLCTL_TOKEN": TOKEN})
    r = httpx.get(s.url + "/metrics")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(s.url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(s.url + "/healthz").status_code == 200
    m = scrape(s, token=TOKEN)
    assert by(m, "toolctl_responses_total", route="/metrics") == {"401": 2}  # refusals are counted
    assert s.stop() == 0


def test_bad_tool_label_cap_is_a_usage_error_at_startup(tmp_path):
    from tests.conftest import run_toolctl

    res = run_toolctl("--db", tmp_path / "s.duckdb", "serve", "--port", "0",
                      env={"TOOLCTL_METRICS_MAX_TOOLS": "lots"}, timeout=60)
    assert res.returncode == 2
    assert "TOOLCTL_METRICS_MAX_TOOLS='lots'" in res.stderr and "Hint:" in res.stderr


@pytest.mark.slow
def test_queue_full_503s_are_counted_exactly_as_clients_saw_them(serve):
    s = serve("--queue-max-items", "1")
    codes: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def send(k: int) -> None:
        body = ndjson([ev(k * 10_000 + i, tool=f"t{k}") for i in range(3000)])
        start.wait()
        code = s.post("/v1/tool-calls", body, NDJSON).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = Counter(str(c) for c in codes)
    assert set(seen) <= {"200", "503"} and seen["503"] >= 1, seen
    m = scrape(s)
    assert by(m, "toolctl_responses_total", route="/v1/tool-calls") == dict(seen)
    assert by(m, "toolctl_stored_total", route="/v1/tool-calls") == {"events": 3000 * seen["200"]}
    assert s.stop() == 0


# -- the collector's own OpenTelemetry ----------------------------------------------------------
def _spans_by_name(db) -> Counter:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        rows = conn.execute("SELECT name, service FROM spans").fetchall()
    finally:
        conn.close()
    assert all(service == "toolctl-collector" for _, service in rows), rows
    return Counter(name for name, _ in rows)


def _wait_for(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


OTEL_FAST = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_EXPORTER_OTLP_TIMEOUT": "3",
             "OTEL_METRICS_EXPORTER": "none"}


def test_collector_spans_arrive_at_the_otlp_endpoint_it_is_given(serve, tmp_path):
    target = serve(db=tmp_path / "target.duckdb")
    source = serve(db=tmp_path / "source.duckdb",
                   env={"OTEL_EXPORTER_OTLP_ENDPOINT": target.url, **OTEL_FAST})
    assert source.post("/v1/tool-calls", ndjson([ev(1), ev(2)]), NDJSON).status_code == 200
    assert source.post("/v1/tool-calls", b"x", {"Content-Type": "text/html"}).status_code == 415
    assert source.stop() == 0  # shutdown flushes what is pending
    assert target.stop() == 0
    names = _spans_by_name(target.db)
    assert names["POST /v1/tool-calls"] == 2 and names["toolctl.commit"] == 1
    conn = duckdb.connect(str(target.db), read_only=True)
    try:
        codes = conn.execute("SELECT attributes->>'http.response.status_code' FROM spans "
                             "WHERE name = 'POST /v1/tool-calls' ORDER BY 1").fetchall()
    finally:
        conn.close()
    assert [c for (c,) in codes] == ["200", "415"]
    assert tcs.table_counts(source.db)["spans"] == 0  # nothing looped back into the source


def test_collector_exporting_to_itself_stores_its_spans_without_a_loop(serve, tmp_path, monkeypatch):
    port = tcs.free_port()
    monkeypatch.setattr(tcs, "free_port", lambda: port)
    s = serve(env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", **OTEL_FAST})
    assert s.post("/v1/tool-calls", ndjson([ev(1)]), NDJSON).status_code == 200

    def stored_spans() -> float:
        return sum(by(scrape(s), "toolctl_stored_total", table="spans").values())

    _wait_for(lambda: stored_spans() >= 2)  # its request span and commit span came back
    time.sleep(1.5)  # ~15 export intervals: a loop would keep adding spans of its own exports
    assert stored_spans() == 2
    assert s.stop() == 0
    # Its exports were stored (POST /v1/traces, their commits) but made no spans of their
    # own; probes and scrapes make none either.
    assert _spans_by_name(s.db) == {"POST /v1/tool-calls": 1, "toolctl.commit": 1}


class _Receiver:
    """A tiny OTLP/HTTP receiver on 127.0.0.1: keeps every request's path, headers and body."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_collector_metrics_are_exported_as_otel_metrics_with_the_same_counts(serve):
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    receiver = _Receiver()
    try:
        s = serve(env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_TRACES_EXPORTER": "none",
                       "OTEL_METRIC_EXPORT_INTERVAL": "200", "OTEL_SERVICE_NAME": "collector-a"})
        body = ndjson([ev(1, tool="search"), ev(2, tool="search", status="error"), "{nope"])
        assert s.post("/v1/tool-calls", body, NDJSON).status_code == 200
        assert s.stop() == 0  # the last export carries every count
    finally:
        receiver.close()
    assert receiver.received and {path for path, _, _ in receiver.received} == {"/v1/metrics"}
    path, headers, last = receiver.received[-1]
    assert headers.get("X-Toolctl-Self-Telemetry") == "1"
    req = metrics_service_pb2.ExportMetricsServiceRequest.FromString(last)
    rm = req.resource_metrics[0]
    resource = {kv.key: kv.value.string_value for kv in rm.resource.attributes}
    assert resource["service.name"] == "collector-a"  # OTEL_SERVICE_NAME wins over the default
    points = {}
    for sm in rm.scope_metrics:
        for metric in sm.metrics:
            kind = metric.WhichOneof("data")
            for dp in getattr(metric, kind).data_points:
                labels = tuple(sorted((kv.key, kv.value.string_value) for kv in dp.attributes))
                points[(metric.name, labels)] = dp.count if kind == "histogram" else dp.as_int
    assert points[("toolctl.stored", (("route", "/v1/tool-calls"), ("table", "events")))] == 2
    assert points[("toolctl.rejected", (("reason_class", "invalid_json"), ("route", "/v1/tool-calls")))] == 1
    assert points[("toolctl.tool_attempts", (("tool", "search"),))] == 2
    assert points[("toolctl.tool_attempt_errors", (("tool", "search"),))] == 1
    assert points[("toolctl.tool_calls", (("tool", "search"),))] == 2  # no call_id: each its own call
    assert points[("toolctl.responses", (("code", "200"), ("route", "/v1/tool-calls")))] == 1
    assert points[("toolctl.commit.duration", ())] == 1  # histogram: one commit


def test_nothing_of_opentelemetry_is_imported_without_an_endpoint(tmp_path):
    import os
    import subprocess

    probe = ("import sys; from collector.telemetry import Telemetry, start_otel; "
             "bridge = start_otel(Telemetry(version='x')); "
             "print(bridge is not None, any(m.startswith('opentelemetry') for m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    off = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True)
    assert off.returncode == 0, off.stderr
    assert off.stdout.split() == ["False", "False"]
    on = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                        env={**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert on.returncode == 0, on.stderr
    assert on.stdout.split() == ["True", "True"]


@pytest.mark.slow
def test_an_unreachable_otlp_endpoint_does_not_hold_up_shutdown(serve):
    dead = f"http://127.0.0.1:{tcs.free_port()}"  # nothing listens there
    s = serve(env={"OTEL_EXPORTER_OTLP_ENDPOINT": dead, "OTEL_METRIC_EXPORT_INTERVAL": "200"})
    assert s.post("/v1/tool-calls", ndjson([ev(1)]), NDJSON).status_code == 200
    time.sleep(1)  # exports are failing and retrying with back-off by now
    started = time.monotonic()
    s.proc.send_signal(__import__("signal").SIGTERM)
    assert s.proc.wait(timeout=60) == 0
    assert time.monotonic() - started < 15  # the 5 s bound, plus the drain
    assert "did not take the last telemetry within 5 s" in s.proc.stderr.read().decode()
    s.proc.stdout.close()
    s.proc.stderr.close()
    assert tcs.table_counts(s.db)["events"] == 1
