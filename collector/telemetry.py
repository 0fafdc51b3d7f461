"""The collector's own telemetry: counters for ``GET /metrics`` and, optionally, OpenTelemetry.

``Telemetry`` holds every figure ``toolctl serve`` reports about itself (docs/metrics.md).
It is fed with counts the write path already has: a request's ``BatchResult`` /
``TraceIngestResult`` plus one grouped query per committed batch (``tally_lines``,
``tally_spans``), run by the writer inside the batch's transaction; no Python code runs
per row. The event loop records a request's tally only after its transaction committed,
so a burst rolled back and replayed by the group commit is never counted twice.

``render()`` writes the Prometheus text exposition format 0.0.4 by hand: the format is a
few lines of escaping, and writing it ourselves keeps prometheus-client out of the
runtime dependencies and lets the tests parse the output with an independent parser.

``OTelBridge`` exports the same figures (and a span per request and per commit) through
opentelemetry-sdk when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the per-signal variable) is set;
nothing of opentelemetry is imported otherwise. Its exports carry the header
``X-Toolctl-Self-Telemetry``; requests with that header are stored like any other but get
no span of their own (nor does a commit made only of them), so pointing the collector at
itself, or two collectors at each other, cannot loop.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

#: Distinct tool names that get their own label; attempts and calls of further tools are
#: counted under ``OTHER_TOOL``. Bounds the series a scrape returns (env ``TOOLCTL_METRICS_MAX_TOOLS``).
DEFAULT_MAX_TOOLS = 500
MAX_TOOLS_ENV = "TOOLCTL_METRICS_MAX_TOOLS"
OTHER_TOOL = "_other"

#: The ``route`` label: fixed paths; anything else (probes, typos) is ``other``.
ROUTES = ("/v1/traces", "/v1/logs", "/v1/tool-calls", "/api/v1/read", "/api/v1/write",
          "/api/v1/ingest-source", "/api/v1/ingest-otlp", "/healthz", "/metrics")
OTHER_ROUTE = "other"
#: Probes and scrapes get no span (they would drown the spans that matter); they are counted.
UNTRACED_ROUTES = ("/healthz", "/metrics")

#: Upper bounds (seconds) of the commit latency histogram.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Longest wait for the last export when the collector stops.
SHUTDOWN_TIMEOUT_SECONDS = 5.0

#: A request carrying this header is an export of a toolctl collector's own telemetry.
SELF_HEADER = "X-Toolctl-Self-Telemetry"

#: Reject reason classes (``reason_class`` label); see REJECT_CLASSES_SQL.
REJECT_CLASSES = ("invalid_json", "not_object", "not_utf8", "too_long", "missing_field",
                  "wrong_type", "invalid_value", "invalid_span", "already_kept")

# Per-tool attempts (stored rows), attempts with status error, and calls started among the
# events one batch stored, in name order (so which tools get a label under the cap is
# deterministic). A call is started by its first attempt, or is an event without call_id
# (README "Figure definitions": such an event is a call of its own); `attempt` absent = 1,
# as in stats.sql. No index needed: batch_id grows with insertion order, so DuckDB's zone
# maps skip all but the last row groups.
TOOLS_OF_EVENT_BATCH_SQL = """
SELECT tool, count(*) AS attempts, count(*) FILTER (WHERE status = 'error') AS errors,
       count(*) FILTER (WHERE call_id IS NULL OR coalesce(attempt, 1) = 1) AS calls
FROM events WHERE batch_id = $batch_id GROUP BY tool ORDER BY tool
"""

# The same for the tool spans of one span batch (tool_rule set = counted as a tool call).
TOOLS_OF_SPAN_BATCH_SQL = """
SELECT tool, count(*) AS attempts, count(*) FILTER (WHERE status = 'error') AS errors,
       count(*) FILTER (WHERE call_id IS NULL OR coalesce(attempt, 1) = 1) AS calls
FROM spans WHERE batch_id = $batch_id AND tool_rule IS NOT NULL GROUP BY tool ORDER BY tool
"""

# Rejects one line batch stored, by reason class. Reasons are the fixed texts of
# parse_batch.sql and collector.parsers.jsonl; the order of the WHENs matters.
REJECT_CLASSES_SQL = """
SELECT CASE
         WHEN reason LIKE 'invalid JSON%' THEN 'invalid_json'
         WHEN reason LIKE 'not a JSON object%' OR reason LIKE '%body is not a tool-call event object'
           THEN 'not_object'
         WHEN reason LIKE 'not valid UTF-8%' THEN 'not_utf8'
         WHEN reason LIKE 'line too long%' THEN 'too_long'
         WHEN reason LIKE 'missing required field%' THEN 'missing_field'
         WHEN reason LIKE 'wrong type for%' THEN 'wrong_type'
         ELSE 'invalid_value'
       END AS reason_class,
       count(*) AS n
FROM rejects WHERE batch_id = $batch_id GROUP BY 1
"""


@dataclass
class WriteTally:
    """What one committed request did, for the counters."""

    unit: str  # 'line' | 'span' | 'log_record'
    table: str  # 'events' | 'spans'
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    redacted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason class -> count
    tools: list[tuple[str, int, int, int]] = field(default_factory=list)  # (tool, attempts, errors, calls)


def tally_lines(store: Any, result: Any, *, unit: str = "line", received: int | None = None) -> WriteTally:
    """The tally of a ``write_line_batch`` result; call in the writer, in the same job.

    Rejects not stored by this batch (kept already by an identical earlier request) are
    counted as ``already_kept``, so the classes always add up to ``result.rejected``.
    """
    tally = WriteTally(unit, "events", received=result.lines if received is None else received,
                       stored=result.accepted, duplicates=result.duplicates, redacted=result.redacted)
    if result.accepted:
        tally.tools = [(r["tool"], r["attempts"], r["errors"], r["calls"])
                       for r in store.fetch_dicts(TOOLS_OF_EVENT_BATCH_SQL, {"batch_id": result.batch_id})]
    if result.rejected:
        classes = {r["reason_class"]: r["n"]
                   for r in store.fetch_dicts(REJECT_CLASSES_SQL, {"batch_id": result.batch_id})}
        kept_before = result.rejected - sum(classes.values())
        if kept_before > 0:
            classes["already_kept"] = kept_before
        tally.rejected = classes
    return tally


def tally_spans(store: Any, result: Any, *, batch_id: int, redacted: int) -> WriteTally:
    """The tally of a span batch the writer just stored (``batch_id``; ``redacted``: fields
    redaction replaced in it, known to the writer, not read back); call right after it."""
    tally = WriteTally("span", "spans", received=result.spans + result.duplicates + result.rejected_spans,
                       stored=result.spans, duplicates=result.duplicates)
    if result.rejected_spans:
        tally.rejected = {"invalid_span": result.rejected_spans}
    if result.spans or result.rejected_spans:
        tally.redacted = redacted
        if result.tool_calls:
            tally.tools = [(r["tool"], r["attempts"], r["errors"], r["calls"])
                           for r in store.fetch_dicts(TOOLS_OF_SPAN_BATCH_SQL, {"batch_id": batch_id})]
    return tally


def route_of(path: str) -> str:
    """The bounded ``route`` label of a request path."""
    if path in ROUTES:
        return path
    for prefix in ("/api/v1/read/", "/api/v1/write/"):
        if path.startswith(prefix):
            return prefix.rstrip("/")
    return OTHER_ROUTE


def toolctl_version() -> str:
    """The installed toolctl's version (``0+unknown`` when run from a tree never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toolctl")
    except PackageNotFoundError:
        return "0+unknown"


def max_tools_from_env() -> int:
    raw = os.environ.get(MAX_TOOLS_ENV)
    if not raw:
        return DEFAULT_MAX_TOOLS
    try:
        value = int(raw)
        if value < 0:
            raise ValueError
    except ValueError:
        from toolctl.errors import UsageError

        raise UsageError(f"{MAX_TOOLS_ENV}={raw!r} is not a non-negative integer",
                         hint=f"unset it for the default of {DEFAULT_MAX_TOOLS} tool labels") from None
    return value


class Telemetry:
    """Thread-safe counters of one collector process, rendered for Prometheus."""

    def __init__(self, *, version: str, max_tools: int = DEFAULT_MAX_TOOLS,
                 queue_depth: Callable[[], tuple[int, int]] | None = None):
        self.version = version
        self.max_tools = max_tools
        self.queue_depth = queue_depth or (lambda: (0, 0))
        self.start_time = time.time()
        self._lock = threading.Lock()
        self.requests: Counter = Counter()  # route
        self.responses: Counter = Counter()  # (route, code)
        self.received: Counter = Counter()  # (route, unit)
        self.stored: Counter = Counter()  # (route, table)
        self.duplicates: Counter = Counter()  # route
        self.rejected: Counter = Counter()  # (route, reason_class)
        self.redacted: Counter = Counter()  # route
        self.tool_attempts: Counter = Counter()  # tool label
        self.tool_attempt_errors: Counter = Counter()
        self.tool_calls: Counter = Counter()  # calls started: see TOOLS_OF_EVENT_BATCH_SQL
        self._tool_labels: set[str] = set()
        self.commit_buckets = [0] * len(COMMIT_BUCKETS)
        self.commit_count = 0
        self.commit_sum = 0.0
        self.otel: OTelBridge | None = None

    # -- recording -------------------------------------------------------------------------
    def record_request(self, route: str) -> None:
        with self._lock:
            self.requests[route] += 1

    def record_response(self, route: str, code: int) -> None:
        with self._lock:
            self.responses[(route, str(code))] += 1

    def record_write(self, route: str, tally: WriteTally) -> None:
        """Count a committed request (call after its transaction committed)."""
        with self._lock:
            self.received[(route, tally.unit)] += tally.received
            self.stored[(route, tally.table)] += tally.stored
            self.duplicates[route] += tally.duplicates
            self.redacted[route] += tally.redacted
            for reason_class, n in tally.rejected.items():
                self.rejected[(route, reason_class)] += n
            for tool, attempts, errors, calls in tally.tools:
                label = self._tool_label(tool)
                self.tool_attempts[label] += attempts
                self.tool_attempt_errors[label] += errors
                self.tool_calls[label] += calls

    def _tool_label(self, tool: str) -> str:
        if tool in self._tool_labels:
            return tool
        if len(self._tool_labels) < self.max_tools:
            self._tool_labels.add(tool)
            return tool
        return OTHER_TOOL

    def record_commit(self, seconds: float, *, start_ns: int | None = None, jobs: int = 1,
                      quiet: bool = False) -> None:
        """One committed transaction of the writer, ``seconds`` long (never raises)."""
        with self._lock:
            self.commit_count += 1
            self.commit_sum += seconds
            for i, bound in enumerate(COMMIT_BUCKETS):
                if seconds <= bound:
                    self.commit_buckets[i] += 1
                    break
        if self.otel is not None:
            self.otel.commit(seconds, start_ns=start_ns, jobs=jobs, quiet=quiet)

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of every counter (for rendering and OTel callbacks)."""
        with self._lock:
            snap = {name: Counter(getattr(self, name)) for name in
                    ("requests", "responses", "received", "stored", "duplicates", "rejected",
                     "redacted", "tool_attempts", "tool_attempt_errors", "tool_calls")}
            snap["commit_buckets"] = list(self.commit_buckets)
            snap["commit_count"] = self.commit_count
            snap["commit_sum"] = self.commit_sum
        snap["queue_items"], snap["queue_bytes"] = self.queue_depth()
        return snap

    # -- Prometheus text format 0.0.4 ------------------------------------------------------
    def render(self) -> str:
        s = self.snapshot()
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[str, dict, float]]) -> None:
            out.append(f"# HELP {name} {escape_help(help_text)}")
            out.append(f"# TYPE {name} {kind}")
            for sample_name, labels, value in samples:
                out.append(f"{sample_name}{format_labels(labels)} {format_value(value)}")

        def counter(name: str, help_text: str, data: Counter, keys: tuple[str, ...]) -> None:
            samples = []
            for key, value in sorted(data.items()):
                values = key if isinstance(key, tuple) else (key,)
                samples.append((name + "_total", dict(zip(keys, values)), value))
            family(name + "_total", "counter", help_text, samples)

        counter("toolctl_requests", "HTTP requests received, by route.", s["requests"], ("route",))
        counter("toolctl_responses", "HTTP responses sent, by route and status code (503: queue full "
                "or shutting down).", s["responses"], ("route", "code"))
        counter("toolctl_received_items", "Lines, spans and log records in committed requests.",
                s["received"], ("route", "unit"))
        counter("toolctl_stored", "Rows newly stored (events or spans).", s["stored"], ("route", "table"))
        counter("toolctl_duplicates", "Valid items already stored (not stored again).",
                s["duplicates"], ("route",))
        counter("toolctl_rejected", "Items refused, by reason class (kept in `toolctl rejects`).",
                s["rejected"], ("route", "reason_class"))
        counter("toolctl_redacted_fields", "Field values replaced by the redaction rules before storing.",
                s["redacted"], ("route",))
        counter("toolctl_tool_attempts", f"Tool-call attempts stored (events and tool spans), by tool "
                f"(at most {self.max_tools} tool labels; further tools count as {OTHER_TOOL}).",
                s["tool_attempts"], ("tool",))
        counter("toolctl_tool_attempt_errors", "Tool-call attempts stored with status error, by tool.",
                s["tool_attempt_errors"], ("tool",))
        counter("toolctl_tool_calls", "Tool calls started, by tool: attempts stored with attempt 1 "
                "(or none) plus attempts without a call_id.", s["tool_calls"], ("tool",))
        family("toolctl_queue_items", "gauge", "Requests queued or being written.",
               [("toolctl_queue_items", {}, s["queue_items"])])
        family("toolctl_queue_bytes", "gauge", "Bytes of request bodies queued or being written.",
               [("toolctl_queue_bytes", {}, s["queue_bytes"])])
        samples: list[tuple[str, dict, float]] = []
        cumulative = 0
        for bound, n in zip(COMMIT_BUCKETS, s["commit_buckets"]):
            cumulative += n
            samples.append(("toolctl_commit_duration_seconds_bucket", {"le": format_value(bound)}, cumulative))
        samples.append(("toolctl_commit_duration_seconds_bucket", {"le": "+Inf"}, s["commit_count"]))
        samples.append(("toolctl_commit_duration_seconds_sum", {}, s["commit_sum"]))
        samples.append(("toolctl_commit_duration_seconds_count", {}, s["commit_count"]))
        family("toolctl_commit_duration_seconds", "histogram",
               "Seconds per writer transaction (one or a group of requests) until committed.", samples)
        family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch "
               "in seconds.", [("process_start_time_seconds", {}, self.start_time)])
        family("toolctl_build_info", "gauge", "Always 1; the labels say which toolctl is running.",
               [("toolctl_build_info", {"version": self.version,
                                        "python": "%d.%d.%d" % sys.version_info[:3]}, 1)])
        return "\n".join(out) + "\n"


def escape_label_value(value: str) -> str:
    """Label value escaping of the text format: backslash, double quote, line feed."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in labels.items()) + "}"


def format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


# -- OpenTelemetry ----------------------------------------------------------------------------
def otel_wanted(env: dict[str, str] | None = None) -> tuple[bool, bool]:
    """(traces, metrics): which signals to export, from the standard OTEL_* variables."""
    env = dict(os.environ) if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False, False
    base = bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())

    def on(signal: str) -> bool:
        exporter = env.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower()
        return exporter != "none" and (base or bool(env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()))

    return on("TRACES"), on("METRICS")


class OTelBridge:
    """Spans and metrics of the collector through opentelemetry-sdk (OTLP/HTTP protobuf).

    Exporters, processors and readers take their settings from the standard OTEL_*
    variables (endpoint, headers, timeout, compression, OTEL_BSP_*, OTEL_METRIC_EXPORT_*);
    ``service.name`` is ``toolctl-collector`` unless OTEL_SERVICE_NAME or
    OTEL_RESOURCE_ATTRIBUTES name one.
    """

    def __init__(self, telemetry: Telemetry, *, traces: bool, metrics: bool):
        import requests
        from opentelemetry.sdk.resources import Resource

        self.telemetry = telemetry
        self.tracer: Any = None
        self._tracer_provider: Any = None
        self._meter_provider: Any = None
        self._histogram: Any = None
        resource = Resource.create({"service.version": telemetry.version})
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "toolctl-collector"}))

        def session() -> Any:
            s = requests.Session()
            s.headers[SELF_HEADER] = "1"  # marks our exports: see the module docstring
            return s

        if traces:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self._tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
            self._tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(session=session())))
            self.tracer = self._tracer_provider.get_tracer("toolctl.collector", telemetry.version)
        if metrics:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            reader = PeriodicExportingMetricReader(OTLPMetricExporter(session=session()))
            self._meter_provider = MeterProvider(resource=resource, metric_readers=[reader],
                                                 shutdown_on_exit=False)
            self._add_instruments(self._meter_provider.get_meter("toolctl.collector", telemetry.version))

    def _add_instruments(self, meter: Any) -> None:
        from opentelemetry.metrics import Observation

        specs = [("requests", ("route",), "{request}"), ("responses", ("route", "code"), "{response}"),
                 ("received", ("route", "unit"), "{item}"), ("stored", ("route", "table"), "{row}"),
                 ("duplicates", ("route",), "{item}"), ("rejected", ("route", "reason_class"), "{item}"),
                 ("redacted", ("route",), "{field}"), ("tool_attempts", ("tool",), "{attempt}"),
                 ("tool_attempt_errors", ("tool",), "{attempt}"), ("tool_calls", ("tool",), "{call}")]
        names = {"received": "toolctl.received_items", "redacted": "toolctl.redacted_fields"}
        for attr, keys, unit in specs:
            def callback(_options: Any, attr: str = attr, keys: tuple = keys) -> list:
                data = self.telemetry.snapshot()[attr]
                return [Observation(v, dict(zip(keys, k if isinstance(k, tuple) else (k,))))
                        for k, v in data.items()]

            meter.create_observable_counter(names.get(attr, f"toolctl.{attr}"), [callback], unit=unit)

        def queue(_options: Any) -> list:
            items, nbytes = self.telemetry.queue_depth()
            return [Observation(items, {"unit": "request"}), Observation(nbytes, {"unit": "byte"})]

        meter.create_observable_gauge("toolctl.queue.depth", [queue])
        self._histogram = meter.create_histogram("toolctl.commit.duration", unit="s",
                                                 explicit_bucket_boundaries_advisory=list(COMMIT_BUCKETS))

    # -- recording -------------------------------------------------------------------------
    def start_request(self, method: str, route: str) -> Any:
        """A SERVER span for one request (None when traces are off); end it with ``end_request``."""
        if self.tracer is None:
            return None
        from opentelemetry.trace import SpanKind

        return self.tracer.start_span(f"{method} {route}", kind=SpanKind.SERVER,
                                      attributes={"http.request.method": method, "http.route": route})

    def end_request(self, span: Any, code: int | None) -> None:
        if span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        if code is not None:
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", str(code))
        span.end()

    def commit(self, seconds: float, *, start_ns: int | None, jobs: int, quiet: bool) -> None:
        try:
            if self._histogram is not None:
                self._histogram.record(seconds)
            if self.tracer is not None and not quiet:
                end_ns = time.time_ns()
                span = self.tracer.start_span("toolctl.commit", start_time=start_ns or end_ns - int(seconds * 1e9),
                                              attributes={"toolctl.jobs": jobs})
                span.end(end_time=end_ns)
        except Exception as exc:  # telemetry must never break the writer thread
            sys.stderr.write(f"toolctl serve: self-telemetry failed: {exc}\n")

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_SECONDS) -> None:
        """Flush and stop: pending spans and a last metrics export go out now.

        Waits at most ``timeout`` seconds in all: an unreachable endpoint (the exporters
        retry with back-off) must not keep ``toolctl serve`` from exiting after SIGTERM.
        """
        providers = [p for p in (self._tracer_provider, self._meter_provider) if p is not None]

        def stop() -> None:
            for provider in providers:
                provider.shutdown()

        worker = threading.Thread(target=stop, name="toolctl-otel-shutdown", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            sys.stderr.write(f"toolctl serve: the OTLP endpoint did not take the last telemetry within "
                             f"{timeout:g} s; dropped it\n")


def start_otel(telemetry: Telemetry) -> OTelBridge | None:
    """Attach an ``OTelBridge`` when the OTEL_* variables ask for one (else import nothing)."""
    traces, metrics = otel_wanted()
    if not (traces or metrics):
        return None
    telemetry.otel = OTelBridge(telemetry, traces=traces, metrics=metrics)
    return telemetry.otel


class TelemetryMiddleware:
    """ASGI middleware outside authentication: counts every request and response by route,
    and wraps each in an OTel span unless it is self-telemetry, a probe or a scrape."""

    def __init__(self, app: Any, telemetry: Telemetry):
        self.app = app
        self.state = getattr(app, "state", None)
        self.telemetry = telemetry

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_of(scope["path"])
        self.telemetry.record_request(route)
        span = None
        otel = self.telemetry.otel
        if otel is not None and route not in UNTRACED_ROUTES:
            marker = SELF_HEADER.lower().encode("ascii")
            if not any(key == marker for key, _ in scope.get("headers", [])):
                span = otel.start_request(scope.get("method", "GET"), route)
        status: list[int] = []

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                self.telemetry.record_response(route, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if span is not None:
                otel.end_request(span, status[0] if status else None)
