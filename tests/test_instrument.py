"""toolctl.instrument with the real OpenTelemetry SDK (InMemorySpanExporter)."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import hmac
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from collector.mapping import map_span
from toolctl.instrument import (Instrument, JsonLineSink, RetryPolicy, ToolError, ToolResult,
                                current_call)
from toolctl.instrument.exporting import traces_url
from toolctl.models import ToolCallEvent, parse_rfc3339

REPO = Path(__file__).resolve().parents[1]
SALT = b"fixed-test-salt"


@pytest.fixture
def otel():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "gw", "service.version": "v9"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def make(otel, **kw) -> tuple[Instrument, InMemorySpanExporter, io.StringIO]:
    provider, exporter = otel
    buf = io.StringIO()
    inst = Instrument(tracer_provider=provider, events=buf, redaction_salt=SALT, **kw)
    return inst, exporter, buf


def events(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def marker(kind: str, secret: str) -> str:
    return f"[REDACTED:{kind}:{hmac.new(SALT, secret.encode(), hashlib.sha256).hexdigest()[:4]}]"


def mapped(span):
    """What toolctl's collector derives from the span (the contract the attributes serve)."""
    return map_span(dict(span.attributes), dict(span.resource.attributes), name=span.name,
                    status_code=span.status.status_code.value, start_ns=span.start_time,
                    end_ns=span.end_time)


def test_decorated_sync_tool_emits_one_genai_execute_tool_span_and_returns_its_value(otel):
    inst, exporter, buf = make(otel)

    @inst.tool
    def get_weather(city: str) -> dict:
        return {"city": city, "temp_c": 3}

    assert get_weather("Oslo") == {"city": "Oslo", "temp_c": 3}
    [span] = exporter.get_finished_spans()
    assert span.name == "execute_tool get_weather" and span.kind == SpanKind.INTERNAL
    a = dict(span.attributes)
    assert a["gen_ai.operation.name"] == "execute_tool" and a["gen_ai.tool.name"] == "get_weather"
    assert a["gen_ai.tool.call.id"].startswith("call_") and a["toolctl.attempt"] == 1
    # Arguments and results are opt-in: absent by default.
    assert "gen_ai.tool.call.arguments" not in a and "gen_ai.tool.call.result" not in a
    assert "error.type" not in a and span.status.status_code == StatusCode.OK
    m = mapped(span)
    assert (m.tool_rule, m.tool, m.status, m.attempt, m.call_id) == (
        "gen_ai", "get_weather", "ok", 1, a["gen_ai.tool.call.id"])
    [ev] = events(buf)
    assert "args" not in ev and "data" not in ev
    assert (ev["service"], ev["version"], ev["status"]) == ("gw", "v9", "ok")  # from the resource


def test_the_json_line_event_validates_and_matches_its_span(otel):
    inst, exporter, buf = make(otel, capture_results=True, tenant="acme")
    with inst.call("search", call_id="call_7", idempotency_key="k-7", stage="execute",
                   session_id="s-1", user="u-1") as call:
        time.sleep(0.01)
        call.succeed({"hits": 2}, confidence=0.75, http_status=200)
    [span] = exporter.get_finished_spans()
    [line] = buf.getvalue().splitlines()
    ev = ToolCallEvent.model_validate_json(line)
    ctx = span.get_span_context()
    assert ev.trace_id == f"{ctx.trace_id:032x}" and ev.span_id == f"{ctx.span_id:016x}"
    assert ev.latency_ms == (span.end_time - span.start_time) / 1e6 >= 10
    assert int(ev.ts.timestamp() * 1e6) == span.start_time // 1000  # µs of the span start
    assert (ev.tool, ev.status, ev.call_id, ev.idempotency_key, ev.tenant, ev.session_id, ev.user,
            ev.stage, ev.confidence, ev.http_status, ev.data) == (
        "search", "ok", "call_7", "k-7", "acme", "s-1", "u-1", "execute", 0.75, 200, {"hits": 2})
    m = mapped(span)
    assert (m.tenant, m.session_id, m.user_id, m.idempotency_key, m.confidence, m.http_status) == (
        "acme", "s-1", "u-1", "k-7", 0.75, 200)
    assert json.loads(m.result) == {"hits": 2}


def test_tool_error_sets_error_type_status_http_status_and_counts_as_auth_failure(otel):
    inst, exporter, buf = make(otel)

    @inst.tool("crm_lookup")
    def lookup(customer: str) -> dict:
        raise ToolError("UNAUTHENTICATED", "token expired", http_status=401)

    with pytest.raises(ToolError) as info:
        lookup("c-1")
    assert info.value.code == "UNAUTHENTICATED"
    [span] = exporter.get_finished_spans()
    a = dict(span.attributes)
    assert a["error.type"] == "UNAUTHENTICATED" and a["http.response.status_code"] == 401
    assert a["toolctl.retryable"] is False
    assert span.status.status_code == StatusCode.ERROR and span.status.description == "token expired"
    m = mapped(span)
    assert (m.status, m.error_code, m.http_status, m.retryable, m.auth_signal) == (
        "error", "UNAUTHENTICATED", 401, False, True)
    [ev] = events(buf)
    ToolCallEvent.model_validate(ev)
    assert (ev["status"], ev["error_code"], ev["message"], ev["retryable"], ev["http_status"]) == (
        "error", "UNAUTHENTICATED", "token expired", False, 401)


def test_an_unexpected_exception_is_recorded_by_class_name_with_its_message_redacted(otel):
    inst, exporter, buf = make(otel)
    token = "sk-abcdefghijklmnop0123"

    @inst.tool
    def flaky() -> None:
        raise KeyError(f"no entry for {token}")

    with pytest.raises(KeyError):
        flaky()
    [span] = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "KeyError"
    [exc_event] = [e for e in span.events if e.name == "exception"]
    assert exc_event.attributes["exception.type"] == "KeyError"
    assert token not in exc_event.attributes["exception.message"]
    assert token not in exc_event.attributes["exception.stacktrace"]
    assert marker("api_key", token) in exc_event.attributes["exception.message"]
    assert token not in span.status.description
    [ev] = events(buf)
    assert ev["error_code"] == "KeyError" and token not in ev["message"]


def test_arguments_and_results_are_recorded_only_when_opted_in_and_then_redacted(otel):
    inst, exporter, buf = make(otel, capture_arguments=True, capture_results=True)
    bearer = "Bearer abcdefgh12345678"

    @inst.tool
    def send_email(to: str, body: str, api_key: str, retries: int = 1) -> dict:
        return {"queued": True, "echo": body, "session_token": "tok-123"}

    out = send_email("bob@example.com", f"auth {bearer}", api_key="k-secret")
    assert out["session_token"] == "tok-123"  # the caller gets the real value
    [span] = exporter.get_finished_spans()
    args = json.loads(span.attributes["gen_ai.tool.call.arguments"])
    result = json.loads(span.attributes["gen_ai.tool.call.result"])
    assert args == {"to": marker("email", "bob@example.com"), "body": f"auth {marker('bearer', bearer)}",
                    "api_key": marker("api_key", "k-secret")}
    assert result == {"queued": True, "echo": f"auth {marker('bearer', bearer)}",
                      "session_token": marker("token", "tok-123")}
    [ev] = events(buf)
    assert ev["args"] == args and ev["data"] == result
    assert json.loads(mapped(span).args) == args


def test_non_object_results_are_wrapped_so_the_event_stays_schema_v1(otel):
    inst, exporter, buf = make(otel, capture_arguments=True, capture_results=True)
    with inst.call("count", args=["a", "b"]) as call:
        call.succeed(42)
    [ev] = events(buf)
    ToolCallEvent.model_validate(ev)
    assert ev["args"] == {"value": ["a", "b"]} and ev["data"] == {"result": 42}


def test_retries_record_one_span_per_attempt_with_shared_call_id_and_idempotency_key(otel):
    inst, exporter, buf = make(otel)
    seen = []

    @inst.tool(retry=RetryPolicy(max_attempts=4, backoff_ms=20, multiplier=2))
    def get_weather(city: str) -> dict:
        seen.append(time.monotonic())
        if len(seen) < 3:
            raise ToolError("UNAVAILABLE", "upstream 503", http_status=503)
        return {"city": city}

    assert get_weather("Lima") == {"city": "Lima"}
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
    assert [s.attributes["toolctl.attempt"] for s in spans] == [1, 2, 3]
    assert len({s.attributes["gen_ai.tool.call.id"] for s in spans}) == 1
    keys = {s.attributes["toolctl.idempotency_key"] for s in spans}
    assert len(keys) == 1 and keys != {None}
    assert [mapped(s).status for s in spans] == ["error", "error", "ok"]
    assert [s.attributes.get("toolctl.retryable") for s in spans] == [True, True, None]
    # Backoff: 20 ms after attempt 1, 40 ms after attempt 2.
    assert seen[1] - seen[0] >= 0.019 and seen[2] - seen[1] >= 0.039
    evs = events(buf)
    assert [e["attempt"] for e in evs] == [1, 2, 3] and len({e["call_id"] for e in evs}) == 1


@pytest.mark.parametrize("is_async", [False, True])
def test_a_decorated_tool_dispatched_with_run_is_one_call_under_the_dispatchs_id(otel, is_async):
    # Found by running docs/instrument.md: inst.run(get_weather, …) of the decorated function
    # recorded two calls per dispatch (the retries under a generated id nested inside one
    # attempt under request.call_id), so calls and retries were both wrong.
    import asyncio

    inst, exporter, buf = make(otel)
    tries = []

    def body(city: str) -> dict:
        tries.append(city)
        if len(tries) == 1:
            raise ToolError("UNAVAILABLE", "upstream 503", http_status=503)
        return {"city": city}

    if is_async:
        @inst.tool("get_weather", retry=RetryPolicy(max_attempts=3), stage="execute")
        async def get_weather(city: str) -> dict:
            return body(city)

        out = asyncio.run(inst.arun(get_weather, {"city": "Oslo"}, call_id="call-42"))
    else:
        @inst.tool("get_weather", retry=RetryPolicy(max_attempts=3), stage="execute")
        def get_weather(city: str) -> dict:
            return body(city)

        out = inst.run(get_weather, {"city": "Oslo"}, call_id="call-42")
    assert out.envelope()["status"] == "ok" and tries == ["Oslo", "Oslo"]
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
    assert [(s.attributes["gen_ai.tool.name"], s.attributes["gen_ai.tool.call.id"],
             s.attributes["toolctl.attempt"]) for s in spans] == [("get_weather", "call-42", 1),
                                                                  ("get_weather", "call-42", 2)]
    assert [(e["call_id"], e["attempt"], e.get("stage")) for e in events(buf)] == \
        [("call-42", 1, "execute"), ("call-42", 2, "execute")]


def test_a_non_retryable_error_is_not_retried_and_exhausted_retries_end_in_a_retryable_error(otel):
    inst, exporter, buf = make(otel)
    policy = RetryPolicy(max_attempts=3, backoff_ms=0)
    calls = {"validate": 0, "down": 0}

    def validate() -> None:
        calls["validate"] += 1
        raise ToolError("VALIDATION", "bad argument")

    def down() -> None:
        calls["down"] += 1
        raise ToolError("UNAVAILABLE", "still down")

    out = inst.run(validate, policy=policy)
    assert calls["validate"] == 1 and out.attempts == 1
    assert out.envelope() == {"status": "error", "error_code": "VALIDATION", "message": "bad argument",
                              "retryable": False}
    out = inst.run(down, policy=policy)
    assert calls["down"] == 3 and out.attempts == 3
    assert out.envelope() == {"status": "error", "error_code": "UNAVAILABLE", "message": "still down",
                              "retryable": True}
    # The tool's own opinion wins over the policy's code list.
    out = inst.run(lambda: (_ for _ in ()).throw(ToolError("UNAVAILABLE", "x", retryable=False)),
                   tool="opinionated", policy=policy)
    assert out.attempts == 1 and out.retryable is False


def test_a_sync_attempt_past_its_timeout_is_a_timeout_error_and_the_retry_succeeds(otel):
    inst, exporter, buf = make(otel)
    n = []

    def slow(x: int) -> ToolResult:
        n.append(1)
        if len(n) == 1:
            time.sleep(0.3)
        return ToolResult({"x": x}, confidence=0.5)

    out = inst.run(slow, {"x": 1}, policy=RetryPolicy(max_attempts=2, timeout_ms=60, backoff_ms=0))
    assert out.envelope() == {"status": "ok", "data": {"x": 1}, "confidence": 0.5, "trace_id": out.trace_id}
    first, second = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
    assert first.attributes["error.type"] == "TIMEOUT" and first.attributes["toolctl.timeout_ms"] == 60
    assert 60 <= (first.end_time - first.start_time) / 1e6 < 250  # recorded at the deadline
    assert second.attributes["toolctl.confidence"] == 0.5
    assert [e["status"] for e in events(buf)] == ["error", "ok"]
    assert events(buf)[0]["timeout_ms"] == 60


def test_async_tools_are_instrumented_with_cancelling_timeouts(otel):
    inst, exporter, buf = make(otel, capture_arguments=True)
    cancelled = []

    @inst.tool("search_web", retry=RetryPolicy(max_attempts=3, timeout_ms=50, backoff_ms=1))
    async def search(query: str) -> dict:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            cancelled.append(query)
            raise
        return {}

    with pytest.raises(ToolError) as info:
        asyncio.run(search("q"))
    assert info.value.code == "TIMEOUT"
    assert cancelled == ["q", "q", "q"]
    spans = exporter.get_finished_spans()
    assert [s.attributes["error.type"] for s in spans] == ["TIMEOUT"] * 3
    assert [s.attributes["toolctl.attempt"] for s in spans] == [1, 2, 3]
    assert json.loads(spans[0].attributes["gen_ai.tool.call.arguments"]) == {"query": "q"}


def test_async_context_manager_and_current_call(otel):
    inst, exporter, buf = make(otel)

    async def main():
        async with inst.call("rank", call_id="c-1") as call:
            assert current_call() is call
            call.fail("RATE_LIMITED", "slow down", http_status=429)
        assert current_call() is None
        return call

    call = asyncio.run(main())
    assert (call.status, call.error_code, call.retryable) == ("error", "RATE_LIMITED", True)
    [span] = exporter.get_finished_spans()
    assert mapped(span).error_code == "RATE_LIMITED" and mapped(span).http_status == 429


def test_spans_the_tool_starts_are_children_of_its_attempt_span_even_in_the_timeout_thread(otel):
    provider, _ = otel
    inst, exporter, buf = make(otel)
    http = provider.get_tracer("http")

    def fetch() -> dict:
        with http.start_as_current_span("GET /x"):
            return {"threads": threading.current_thread().name}

    inst.run(fetch, policy=RetryPolicy(max_attempts=1, timeout_ms=5000))
    child, tool = exporter.get_finished_spans()
    assert child.name == "GET /x" and child.parent.span_id == tool.context.span_id
    assert child.context.trace_id == tool.context.trace_id


def test_context_sets_tenant_session_and_user_and_explicit_arguments_win(otel):
    inst, exporter, buf = make(otel, tenant="default-tenant")
    with inst.context(tenant="acme", session_id="s-9"):
        with inst.context(user="u-1"):
            with inst.call("a"):
                pass
        with inst.call("b", tenant="globex"):
            pass
    with inst.call("c"):
        pass
    got = [(e["tool"], e.get("tenant"), e.get("session_id"), e.get("user")) for e in events(buf)]
    assert got == [("a", "acme", "s-9", "u-1"), ("b", "globex", "s-9", None),
                   ("c", "default-tenant", None, None)]
    assert [s.attributes.get("tenant.id") for s in exporter.get_finished_spans()] == [
        "acme", "globex", "default-tenant"]


def test_bad_values_fail_fast_with_a_clear_message(otel):
    inst, _, _ = make(otel)
    with pytest.raises(ValueError, match="confidence"):
        with inst.call("x") as call:
            call.succeed({}, confidence=1.5)
    with pytest.raises(ValueError, match="stage"):
        inst.call("x", stage="deploy")
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="code"):
        ToolError("")


def test_retry_policy_backoff_grows_and_is_capped():
    p = RetryPolicy(backoff_ms=100, multiplier=3, max_backoff_ms=500)
    assert [p.delay_ms(n) for n in (1, 2, 3, 4)] == [100, 300, 500, 500]
    j = RetryPolicy(backoff_ms=100, jitter=0.5)
    import random

    rng = random.Random(1)
    assert all(50 <= j.delay_ms(1, rng) <= 100 for _ in range(100))


def test_the_sink_drops_an_invalid_event_instead_of_breaking_the_tool(tmp_path):
    sink = JsonLineSink(tmp_path / "out" / "e.jsonl")
    assert not sink.write({"event_id": "e1", "tool": "x", "status": "maybe", "latency_ms": 1,
                           "ts": "2026-11-24T06:00:00Z"})
    assert sink.write({"event_id": "e2", "tool": "x", "status": "ok", "latency_ms": 1,
                       "ts": "2026-11-24T06:00:00Z"})
    sink.close()
    assert (sink.dropped, sink.written) == (1, 1)
    [line] = (tmp_path / "out" / "e.jsonl").read_text().splitlines()
    assert json.loads(line)["event_id"] == "e2"


def test_without_an_sdk_provider_events_are_still_written(tmp_path):
    path = tmp_path / "e.jsonl"
    inst = Instrument(service="svc", version="1.0", events=path)
    out = inst.run(lambda: {"ok": 1}, tool="noop")
    inst.sink.close()
    [ev] = [json.loads(x) for x in path.read_text().splitlines()]
    ToolCallEvent.model_validate(ev)
    assert (ev["tool"], ev["service"], ev["version"], ev["status"]) == ("noop", "svc", "1.0", "ok")
    assert parse_rfc3339(ev["ts"]) and out.trace_id is None and "trace_id" not in ev


def test_traces_url_follows_the_otel_environment(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert traces_url(None) == "http://127.0.0.1:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert traces_url(None) == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom")
    assert traces_url(None) == "http://t:1/custom"
    assert traces_url("http://h:2") == "http://h:2/v1/traces"


def test_instrument_stays_out_of_the_cli_and_the_terminal_layer():
    code = "import sys, toolctl, toolctl.cli; print('opentelemetry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    for path in (REPO / "toolctl" / "instrument").rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
        assert not names & {"typer", "rich", "click", "duckdb"}, path


def test_values_json_cannot_hold_are_recorded_as_text_without_breaking_the_tool(otel):
    inst, exporter, buf = make(otel, capture_arguments=True, capture_results=True)
    cyclic: list = []
    cyclic.append(cyclic)

    @inst.tool
    def odd(x: object) -> dict:
        return {"score": float("nan"), "when": time}

    out = odd(cyclic)
    assert out["when"] is time
    [span] = exporter.get_finished_spans()
    assert json.loads(span.attributes["gen_ai.tool.call.arguments"]) == {"x": ["[...]"]}
    assert json.loads(span.attributes["gen_ai.tool.call.result"]) == {"score": "nan", "when": str(time)}
    [ev] = events(buf)
    ToolCallEvent.model_validate(ev)


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


@pytest.mark.parametrize("arg", [10**5000, _Unprintable(), "deep"], ids=["huge-int", "bad-str", "deep"])
def test_an_argument_that_cannot_be_recorded_never_stops_the_tool(otel, arg):
    # Found by fuzzing: recording raised inside the call's start, the tool never ran, and the
    # caller got None (a raising tool raised nothing).
    if arg == "deep":
        arg = []
        for _ in range(5000):
            arg = [arg]
    inst, _, buf = make(otel, capture_arguments=True)
    ran = []

    @inst.tool("charge")
    def charge(x):
        ran.append(True)
        raise RuntimeError("card declined")

    with pytest.raises(RuntimeError, match="card declined"):
        charge(arg)
    assert ran == [True]
    assert inst.run(lambda x: 42, {"x": arg}, tool="t").value == 42
    evs = events(buf)
    assert [e["status"] for e in evs] == ["error", "ok"] and all("args" not in e for e in evs)


def test_events_stay_lines_toolctl_ingest_accepts_whatever_the_tool_raises_or_takes(otel, tmp_path):
    from tests.conftest import run_toolctl

    inst, _, buf = make(otel, capture_arguments=True)

    @inst.tool("read_file")
    def read_file(name):
        raise FileNotFoundError(f"no such file: {name}")  # os.listdir's undecodable bytes

    @inst.tool("summarise")
    def summarise(doc):
        return "ok"

    with pytest.raises(FileNotFoundError):  # not the sink's UnicodeEncodeError
        read_file("report-\udce9.txt")
    assert summarise("word " * 250_000) == "ok"  # a 1.25 MB argument
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and all(len(line.encode("utf-8")) <= 1024 * 1024 for line in lines)
    assert "args" not in json.loads(lines[1])  # kept the call, not its payload
    path = tmp_path / "ev.jsonl"
    path.write_text(buf.getvalue(), encoding="utf-8")
    proc = run_toolctl("--db", tmp_path / "s.duckdb", "ingest", path, "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["accepted"] == 2, proc.stdout + proc.stderr


def test_spans_stay_encodable_for_otlp_whatever_strings_the_tool_raises_or_takes(otel):
    """An unpaired surrogate (an undecodable file name) in a tool's name, arguments, result or
    error must not make the OTLP exporter drop the batch: every other call's span is in it."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    inst, exporter, buf = make(otel, capture_arguments=True, capture_results=True)
    name = b"report-\xff.csv".decode("utf-8", "surrogateescape")

    def read_file(path):
        raise ToolError("NOT_FOUND", f"no such file: {path}")

    def explode(path):
        raise FileNotFoundError(f"no such file: {path}")

    assert inst.run(lambda: 1, {}, tool="good").ok
    assert not inst.run(read_file, {"path": name}, call_id=f"c-{name}").ok
    assert not inst.run(explode, {"path": name}, tenant=name).ok
    assert inst.run(lambda: {"file": name}, {}, tool=name).ok
    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    encode_spans(spans).SerializeToString()  # what OTLPSpanExporter does; raised UnicodeEncodeError
    assert spans[3].attributes["gen_ai.tool.name"] == "report-\ufffd.csv"
    assert spans[1].attributes["gen_ai.tool.call.id"] == "c-report-\ufffd.csv"
    assert spans[1].status.description == "no such file: report-\ufffd.csv"
    assert [e["tool"] for e in events(buf)] == [s.attributes["gen_ai.tool.name"] for s in spans]


def test_a_payload_over_1_mib_is_left_off_the_span_so_the_batch_stays_under_serves_body_limit(otel):
    """toolctl serve refuses an OTLP request over 16 MiB with 413 and the exporter drops the
    whole batch: a 20 MiB argument must not take the call (and its batch) with it. Any
    payload over MAX_PAYLOAD_BYTES (1 MiB) is left off; 1.5 MiB shows it at a tenth of the cost."""
    inst, exporter, buf = make(otel, capture_arguments=True, capture_results=True)
    doc = "word " * (300 * 1024)  # 1.5 MiB
    small = "é" * 200_000  # 400 kB of UTF-8 (over a quarter MiB in characters): kept
    assert inst.run(lambda doc: doc, {"doc": doc}, tool="summarise").value == doc
    assert inst.run(lambda doc: doc, {"doc": small}, tool="summarise").ok
    big, kept = exporter.get_finished_spans()
    assert "gen_ai.tool.call.arguments" not in big.attributes and "gen_ai.tool.call.result" not in big.attributes
    assert json.loads(kept.attributes["gen_ai.tool.call.arguments"]) == {"doc": small}
    assert [("args" in e, "data" in e) for e in events(buf)] == [(False, False), (True, True)]


def test_a_generator_tool_is_refused_rather_than_recorded_as_an_instant_success(otel):
    """Its body runs only when consumed, after the attempt was recorded: an error while
    streaming would be lost and the call counted ok in 0 ms."""
    inst, exporter, _ = make(otel)

    def stream():
        yield 1
        raise ToolError("UNAVAILABLE", "upstream closed the stream")

    async def astream():
        yield 1

    for fn in (stream, astream):
        with pytest.raises(TypeError, match="generator function"):
            inst.tool("stream")(fn)
        with pytest.raises(TypeError, match="generator function"):
            inst.run(fn, {})
    with pytest.raises(TypeError, match="generator function"):
        asyncio.run(inst.arun(astream, {}))
    assert exporter.get_finished_spans() == ()


def test_an_exception_whose_str_raises_is_still_recorded_as_the_attempts_error(otel):
    """Recording the failure called str(exc): when that raised, the attempt's span was never
    ended (nothing exported) and run() reported the failed call as ok."""
    inst, exporter, buf = make(otel)

    class BrokenMessage(Exception):
        def __str__(self):
            raise RuntimeError("lazy message formatting failed")

    def tool():
        raise BrokenMessage()

    out = inst.run(tool, {}, tool="lookup")
    assert (out.status, out.error_code, out.message) == ("error", "BrokenMessage", "BrokenMessage")
    assert isinstance(out.exception, BrokenMessage)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR and span.attributes["error.type"] == "BrokenMessage"
    assert [e.name for e in span.events] == ["exception"]
    assert [e["status"] for e in events(buf)] == ["error"]

    decorated = inst.tool("lookup")(tool)
    with pytest.raises(BrokenMessage):  # the tool's own exception, not the recorder's
        decorated()


def test_an_integer_call_id_or_tenant_is_recorded_as_text_on_the_span_and_the_json_line(otel, tmp_path):
    """JSON-RPC (MCP) request ids are integers. The span carried the int (the collector reads
    it as "12345") but the JSON line failed schema v1 and was dropped: the archive lost the call."""
    inst, exporter, buf = make(otel)
    with inst.context(tenant=42):
        assert inst.run(lambda: 1, {}, tool="t", call_id=12345, idempotency_key=7).ok
    (span,) = exporter.get_finished_spans()
    (ev,) = events(buf)
    assert span.attributes["gen_ai.tool.call.id"] == ev["call_id"] == "12345"
    assert span.attributes["tenant.id"] == ev["tenant"] == "42"
    assert span.attributes["toolctl.idempotency_key"] == ev["idempotency_key"] == "7"
    with pytest.raises(ValueError, match="call_id must be a string or an integer"):
        inst.run(lambda: 1, {}, tool="t", call_id=1.5)


def test_run_and_arun_refuse_the_wrong_kind_of_function_before_it_runs(otel):
    """run(coroutine function) recorded the unawaited coroutine as an instant success (the
    tool never ran); arun(plain function) ran it and recorded its success as a TypeError."""
    inst, exporter, _ = make(otel)
    ran = []

    async def fetch():
        ran.append("fetch")

    def lookup():
        ran.append("lookup")
        return {"ok": True}

    class AsyncCallable:
        async def __call__(self):
            return "called"

    with pytest.raises(TypeError, match="coroutine function.*arun"):
        inst.run(fetch, {})
    with pytest.raises(TypeError, match="not a coroutine function.*inst.run"):
        asyncio.run(inst.arun(lookup, {}))
    assert ran == [] and exporter.get_finished_spans() == ()
    assert asyncio.run(inst.arun(AsyncCallable(), {}, tool="obj")).value == "called"


@pytest.mark.parametrize("field", ["backoff_ms", "max_backoff_ms", "multiplier"])
def test_a_nan_backoff_is_refused_when_the_policy_is_made_not_raised_by_a_retry(field):
    """NaN passed the `< 0` checks; the first retry then raised ValueError out of time.sleep,
    out of run(), which never raises for a tool's failures."""
    with pytest.raises(ValueError, match="must be ≥ 0"):
        RetryPolicy(max_attempts=2, **{field: float("nan")})
