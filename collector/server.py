"""The live collector: OTLP/HTTP traces and logs, JSON lines, and remote reads.

Endpoints (see docs/serve.md):

* ``POST /v1/traces``: ExportTraceServiceRequest, protobuf or JSON, optionally gzip or deflate.
* ``POST /v1/logs``: ExportLogsServiceRequest; a log record whose body is a tool-call
  event object (a kvlist, or a string holding a JSON object) is stored as one event.
* ``POST /v1/tool-calls``: JSON lines (NDJSON), the same rules as ``toolctl ingest``.
* ``POST /api/v1/read/{operation}``: a read operation of ``toolctl.api`` (used by the CLI
  while this server holds the store).
* ``GET /healthz``: readiness (never needs the token).
* ``GET /metrics``: the collector's own counters, Prometheus text format (docs/metrics.md).

A 2xx answer is sent only after the request's transaction committed (``WriteQueue``).
Bodies are bounded before and while reading and while gunzipping (413); undecodable
bodies are 400 (final, as OTLP says); unknown media types 415; a full write queue 503
with ``Retry-After``. Starlette and uvicorn are imported only by ``toolctl serve``.
"""

from __future__ import annotations

import base64
import hmac
import io
import json
import os
import queue
import zlib
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.telemetry import (SELF_HEADER, Telemetry, TelemetryMiddleware, max_tools_from_env,
                                 start_otel, tally_lines, toolctl_version)
from collector.writer_queue import QueueClosedError, QueueFullError, WriteQueue
from toolctl.errors import ToolctlError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
#: Seconds a client should wait after a 503 (queue full, shutting down).
RETRY_AFTER_SECONDS = 1
READ_CURSORS = 4
#: Connections the decoding threads redact and hash spans on (SpanWrite's preparer).
PREPARE_CURSORS = 2
#: Largest request body of a read operation (a pydantic request model as JSON).
MAX_READ_REQUEST_BYTES = 1024 * 1024
#: Largest X-Toolctl-First-Line (a forwarded ingest's line number).
MAX_FIRST_LINE = 2**62

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl",
                "application/json", "text/plain"}


@dataclass
class ServerConfig:
    db_path: Path
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_line_bytes: int = 1024 * 1024
    queue_max_items: int = 1024
    queue_max_bytes: int = 256 * 1024 * 1024
    url: str | None = None  # announced in the discovery file once serving
    lake: Path | None = None  # also append committed rows to this Parquet lake (collector/lake_sink.py)
    lake_flush_seconds: float = 1.0
    #: worker processes that decode /v1/traces requests (collector/decode_pool.py); 0: the
    #: server's own thread pool does it
    decode_workers: int = 0


class HTTPProblem(Exception):
    """A request-level failure: status, message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# -- bodies ---------------------------------------------------------------------------------
def media_type(request: Any) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, decompressed if so encoded (gzip, deflate), at most ``limit`` bytes
    either way."""
    from starlette.concurrency import run_in_threadpool

    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "deflate", ""):
        raise HTTPProblem(415, f"unsupported Content-Encoding {encoding!r}: send identity, gzip or deflate")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_n = int(declared)
        except ValueError:
            raise HTTPProblem(400, f"invalid Content-Length {declared!r}") from None
        if declared_n > limit:
            raise HTTPProblem(413, f"body of {declared_n} bytes exceeds the limit of {limit} bytes "
                                   "(--max-body-bytes): split the request")
    from starlette.requests import ClientDisconnect

    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPProblem(413, f"body exceeds the limit of {limit} bytes (--max-body-bytes): "
                                       "split the request")
            parts.append(chunk)
    except ClientDisconnect:  # nothing was stored; nobody is left to answer
        raise HTTPProblem(400, f"the client disconnected after {size} bytes of the body") from None
    body = b"".join(parts)
    if encoding == "gzip":
        body = await run_in_threadpool(gunzip_bounded, body, limit)
    elif encoding == "deflate":
        body = await run_in_threadpool(inflate_bounded, body, limit)
    return body


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Gunzip ``data`` (all members) without ever producing more than ``limit`` bytes."""
    out: list[bytes] = []
    size = 0
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = d.decompress(data, limit + 1 - size)
        except zlib.error as exc:
            raise HTTPProblem(400, f"body is not valid gzip: {exc}") from None
        size += len(chunk)
        if size > limit or d.unconsumed_tail:
            raise HTTPProblem(413, f"decompressed body exceeds the limit of {limit} bytes "
                                   "(--max-body-bytes): split the request")
        if not d.eof:
            raise HTTPProblem(400, "gzip body is truncated")
        out.append(chunk)
        data = d.unused_data
    return b"".join(out)


def inflate_bounded(data: bytes, limit: int) -> bytes:
    """Inflate a ``Content-Encoding: deflate`` body (the OpenTelemetry SDKs' other choice
    besides gzip) without ever producing more than ``limit`` bytes. HTTP's deflate is the zlib
    format; raw deflate, which some clients send under that name, is taken too."""
    zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    d = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise HTTPProblem(400, f"body is not valid deflate: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise HTTPProblem(413, f"decompressed body exceeds the limit of {limit} bytes "
                               "(--max-body-bytes): split the request")
    if not d.eof:
        raise HTTPProblem(400, "deflate body is truncated")
    if d.unused_data:
        raise HTTPProblem(400, f"{len(d.unused_data)} bytes follow the end of the deflate body")
    return out


# -- OTLP responses -------------------------------------------------------------------------
def otlp_encoding(request: Any) -> str:
    mt = media_type(request)
    if mt == PROTOBUF:
        return "protobuf"
    if mt == JSON:
        return "json"
    raise HTTPProblem(415, f"unsupported Content-Type {mt or '(none)'!r}: OTLP/HTTP takes "
                           f"{PROTOBUF} or {JSON}")


def status_response(status: int, message: str, encoding: str = "json",
                    headers: dict[str, str] | None = None) -> Any:
    """An error answer: a google.rpc.Status in the request's encoding (OTLP/HTTP)."""
    from starlette.responses import Response

    # gRPC code for the body: INVALID_ARGUMENT, UNAUTHENTICATED, RESOURCE_EXHAUSTED, …
    code = {400: 3, 401: 16, 413: 3, 415: 3, 429: 8, 503: 14, 404: 5}.get(status, 2)
    if encoding == "protobuf":
        from google.rpc import status_pb2

        body = status_pb2.Status(code=code, message=message).SerializeToString()
        return Response(body, status_code=status, media_type=PROTOBUF, headers=headers)
    return Response(json.dumps({"code": code, "message": message}), status_code=status,
                    media_type=JSON, headers=headers)


def export_response(kind: str, encoding: str, rejected: int, message: str | None) -> Any:
    """ExportTraceServiceResponse / ExportLogsServiceResponse with partial_success if any."""
    from starlette.responses import Response

    field = "rejected_spans" if kind == "traces" else "rejected_log_records"
    if encoding == "protobuf":
        if kind == "traces":
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as svc

            msg = svc.ExportTraceServiceResponse()
        else:
            from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as svc

            msg = svc.ExportLogsServiceResponse()
        if rejected:
            setattr(msg.partial_success, field, rejected)
            msg.partial_success.error_message = message or ""
        return Response(msg.SerializeToString(), media_type=PROTOBUF)
    doc: dict[str, Any] = {}
    if rejected:
        camel = "rejectedSpans" if kind == "traces" else "rejectedLogRecords"
        doc["partialSuccess"] = {camel: rejected, "errorMessage": message or ""}
    return Response(json.dumps(doc), media_type=JSON)


# -- OTLP logs → event lines ------------------------------------------------------------------
def _pb_any(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "kvlist_value":
        return {kv.key: _pb_any(kv.value) for kv in v.kvlist_value.values}
    if which == "array_value":
        return [_pb_any(x) for x in v.array_value.values]
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    return getattr(v, which)


class _BadRecord:
    """A log record refused while decoding (its body is no AnyValue): the reason and the
    record as text for the rejects table."""

    def __init__(self, reason: str, record: Any):
        from collector.otlp import _raw_text

        self.reason = reason
        self.raw = _raw_text(record)


def _plain(value: Any) -> Any:
    """A decoded AnyValue as JSON can hold it: bytes as base64, as the protobuf path gives them."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _json_record_body(rec: Any) -> Any:
    """A JSON log record's body as a Python value (None when absent), or a _BadRecord: one
    record that cannot be read costs only itself, as one span does on /v1/traces."""
    from collector.otlp import _JSON_SPAN_ERRORS, _json_any

    if not isinstance(rec, dict):
        return _BadRecord(f"is not an object ({type(rec).__name__})", rec)
    try:
        return _plain(_json_any(rec.get("body")))
    except RecursionError:
        return _BadRecord("body is nested too deeply", rec)
    except _JSON_SPAN_ERRORS as exc:
        return _BadRecord(f"body is not an OTLP AnyValue: {exc}", rec)


def _json_entries(doc: Any, key: str, where: str) -> list:
    """``doc[key]``, a list of objects (absent or null: none); 400 naming ``where`` if not."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where or 'the top level'} is not an object ({type(doc).__name__})")
    entries = doc.get(key)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ValueError(f"{where + '.' if where else ''}{key} is not an array ({type(entries).__name__})")
    return entries


def _json_id(rec: dict, camel: str, snake: str) -> str:
    """An OTLP/JSON log record's trace or span id (hex, any case; either field name, as a
    span's), or "" when absent."""
    from collector.otlp import _field

    value = _field(rec, camel, snake)
    return value.lower() if isinstance(value, str) else ""


def _with_record_context(body: Any, trace_id: str, span_id: str) -> Any:
    """A body that is an event (an object, or a string holding one) with the log record's
    own trace and span ids filled in where the event names none.

    OpenTelemetry's logging SDKs put the active span's ids on the record, not in its body:
    a gateway logging its envelope inside the tool span sends exactly that. Without them
    the event would be linked to no trace, and counted beside the span it records (the
    tool_calls view counts a span once when an event names it, README "attempts"). The
    body's own ids win; invalid ids (wrong length, not hex, all zero) are not taken.
    """
    from collector.otlp import _SPAN_ID, _TRACE_ID, _ZERO_SPAN, _ZERO_TRACE  # a span's own rules

    ctx = {}
    if _TRACE_ID.fullmatch(trace_id) and trace_id != _ZERO_TRACE:
        ctx["trace_id"] = trace_id
    if _SPAN_ID.fullmatch(span_id) and span_id != _ZERO_SPAN:
        ctx["span_id"] = span_id
    if not ctx or isinstance(body, _BadRecord):
        return body
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return body
        if not isinstance(parsed, dict):
            return body
        body = parsed
    if isinstance(body, dict):
        for key, value in ctx.items():
            if body.get(key) is None:
                body[key] = value
    return body


def log_bodies(payload: bytes, encoding: str) -> list[tuple[str, Any]]:
    """(locator, body as a Python value or a _BadRecord) for every log record; 400 if the
    request itself is undecodable."""
    out: list[tuple[str, Any]] = []
    if encoding == "protobuf":
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        req = logs_service_pb2.ExportLogsServiceRequest()
        try:
            req.ParseFromString(payload)
        except DecodeError as exc:
            raise HTTPProblem(400, f"body is not an ExportLogsServiceRequest (protobuf): {exc}") from None
        for i, rl in enumerate(req.resource_logs):
            for j, sl in enumerate(rl.scope_logs):
                for k, rec in enumerate(sl.log_records):
                    body = _pb_any(rec.body) if rec.HasField("body") else None
                    out.append((f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]",
                                _with_record_context(body, rec.trace_id.hex(), rec.span_id.hex())))
        return out
    try:
        doc = json.loads(payload)
        for i, rl in enumerate(_json_entries(doc, "resourceLogs", "")):
            for j, sl in enumerate(_json_entries(rl, "scopeLogs", f"resourceLogs[{i}]")):
                where = f"resourceLogs[{i}].scopeLogs[{j}]"
                for k, rec in enumerate(_json_entries(sl, "logRecords", where)):
                    body = _json_record_body(rec)
                    if isinstance(rec, dict):
                        body = _with_record_context(body, _json_id(rec, "traceId", "trace_id"),
                                                    _json_id(rec, "spanId", "span_id"))
                    out.append((f"{where}.logRecords[{k}]", body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPProblem(400, f"body is not an ExportLogsServiceRequest (OTLP/JSON): {exc}") from None
    except RecursionError:
        raise HTTPProblem(400, "body is not an ExportLogsServiceRequest (OTLP/JSON): nested too deeply") from None
    return out


def log_line_batch(bodies: list[tuple[str, Any]]) -> Any:
    """A LineBatch with one JSON line per record; bodies that are not objects are rejects."""
    from collector.parsers.jsonl import LineBatch

    lines: list[bytes] = []
    rejects: dict[int, tuple[str, bytes, int]] = {}
    for idx, (where, body) in enumerate(bodies):
        if isinstance(body, _BadRecord):
            raw = body.raw.encode("utf-8", "backslashreplace")
            lines.append(b"")
            rejects[idx] = (f"{where}: {body.reason}", raw, len(raw))
            continue
        if isinstance(body, str):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                body = parsed
        if isinstance(body, dict):
            # ASCII escapes: a lone surrogate in a string stays a JSON escape (then a reject), never a 500
            lines.append(json.dumps(body).encode("ascii"))
            continue
        raw = json.dumps(body).encode("ascii")
        lines.append(b"")
        rejects[idx] = (f"{where}: body is not a tool-call event object", raw, len(raw))
    return LineBatch(1, lines, rejects)


# -- the app ----------------------------------------------------------------------------------
class _Pool:
    """Connections to the store made up front (``cursor()`` is not called concurrently with
    the writer), handed out one call at a time."""

    def __init__(self, stores: list[Any]):
        self._pool: queue.Queue = queue.Queue()
        self._all = list(stores)
        for s in self._all:
            self._pool.put(s)

    @classmethod
    def readers(cls, store: Any, n: int) -> "_Pool":
        """Read-only cursors on the writer's connection, for the read API."""
        from toolctl.store import Store

        readers = []
        for _ in range(n):
            reader = Store(store.conn.cursor(), store.path, read_only=True)
            reader._configure()
            readers.append(reader)
        return cls(readers)

    def run(self, fn: Any) -> Any:
        conn = self._pool.get()
        try:
            return fn(conn)
        finally:
            self._pool.put(conn)

    def close(self) -> None:
        for conn in self._all:
            conn.close()


def create_app(store: Any, config: ServerConfig) -> Any:
    """The Starlette app serving ``store`` (opened for writing; the app closes it on shutdown)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from toolctl import api
    from toolctl.remote import dumps, remove_discovery, write_discovery
    from toolctl.store.writer import write_line_batch

    store.space_checkpoints()  # a collector is a load that never ends (Store.space_checkpoints)
    writes = WriteQueue(store, max_items=config.queue_max_items, max_bytes=config.queue_max_bytes)
    readers = _Pool.readers(store, READ_CURSORS)
    preparers = _Pool([store.companion() for _ in range(PREPARE_CURSORS)])
    decode_pool = None
    if config.decode_workers:
        from collector.decode_pool import DecodePool
        from toolctl.audit.redact import rules_for, store_salt

        # The workers redact as this process would: its rules and the store's salt, now.
        decode_pool = DecodePool(config.decode_workers, rules=rules_for(store), salt=store_salt(store))
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    telemetry = Telemetry(version=toolctl_version(), max_tools=max_tools_from_env(), queue_depth=writes.depth)
    lake_sink = None
    if config.lake is not None:
        from collector.lake_sink import LakeSink

        lake_sink = LakeSink(writes, config.lake, flush_seconds=config.lake_flush_seconds)

    def on_commit(seconds: float, start_ns: int, jobs: list) -> None:
        telemetry.record_commit(seconds, start_ns=start_ns, jobs=len(jobs),
                                quiet=all(getattr(job.run, "toolctl_quiet", False) for job in jobs))
        if lake_sink is not None:
            lake_sink.notify(jobs)

    writes.on_commit = on_commit

    async def commit(run: Any, nbytes: int, request: Any = None) -> Any:
        import asyncio

        if request is not None and SELF_HEADER in request.headers:
            run.toolctl_quiet = True  # our own telemetry: no commit span for it (no loop)
        try:
            future = writes.submit(run, nbytes)
        except (QueueFullError, QueueClosedError) as exc:
            raise HTTPProblem(503, exc.message, retry) from None
        try:
            return await asyncio.wrap_future(future)
        except ToolctlError as exc:  # the store refused the write: nothing was committed
            raise HTTPProblem(503 if exc.exit_code == 4 else 500, exc.message, retry) from None

    def problem_response(exc: HTTPProblem, encoding: str) -> Any:
        return status_response(exc.status, exc.message, encoding, exc.headers)

    async def traces(request: Request) -> Any:
        from collector.decode_pool import WorkerLostError
        from collector.otlp import OTLPDecodeError, prepare_write

        encoding = "json"
        try:
            encoding = otlp_encoding(request)
            body = await read_body(request, config.max_body_bytes)
            source = forwarded_text(request, "x-toolctl-source") or "otlp-http:/v1/traces"
            try:  # decoded to Arrow here; the writer merges a burst of these into one batch
                if decode_pool is not None:
                    write = await decode_pool.prepare(body, encoding, source=source, kind="http")
                else:
                    write = await run_in_threadpool(prepare_write, body, encoding, source=source, kind="http",
                                                    preparer=preparers.run)
            except OTLPDecodeError as exc:
                raise HTTPProblem(400, exc.message) from None
            except WorkerLostError as exc:  # nothing of it was stored: a retry stores it once
                raise HTTPProblem(503, f"{exc}: retry the request", retry) from None
            result = await commit(write, len(body), request)
            if result.tally is not None:
                telemetry.record_write("/v1/traces", result.tally)
        except HTTPProblem as exc:
            return problem_response(exc, encoding)
        return export_response("traces", encoding, result.rejected_spans, result.error_message)

    async def logs(request: Request) -> Any:
        encoding = "json"
        try:
            encoding = otlp_encoding(request)
            body = await read_body(request, config.max_body_bytes)
            bodies = await run_in_threadpool(log_bodies, body, encoding)
            batch = log_line_batch(bodies)
            if not batch.lines:
                return export_response("logs", encoding, 0, None)
            from toolctl.models import REJECT_RAW_CAP

            table = await run_in_threadpool(batch.to_arrow, REJECT_RAW_CAP)
            source = forwarded_text(request, "x-toolctl-source") or "otlp-http:/v1/logs"

            def run(s: Any) -> tuple[int, str | None, Any]:
                res = write_line_batch(s, table, source=source, kind="http")
                first = None
                if res.rejected:
                    row = s.row("SELECT line_no, reason FROM rejects WHERE batch_id = ? ORDER BY line_no LIMIT 1",
                                [res.batch_id])
                    if row is None:  # kept already by an earlier identical request
                        first = next(iter(batch.rejects.values()), ("invalid tool-call event",))[0]
                    elif row[0] - 1 in batch.rejects:  # refused before parsing: has its locator
                        first = row[1]
                    else:  # line n is the n-th log record of the request
                        first = f"{bodies[row[0] - 1][0]}: {row[1]}"
                return res.rejected, first, tally_lines(s, res, unit="log_record")

            rejected, first, tally = await commit(run, len(body), request)
            telemetry.record_write("/v1/logs", tally)
        except HTTPProblem as exc:
            return problem_response(exc, encoding)
        message = f"{rejected} log record(s) rejected; first: {first}" if rejected else None
        return export_response("logs", encoding, rejected, message)

    async def tool_calls(request: Request) -> Any:
        try:
            mt = media_type(request)
            if mt not in NDJSON_TYPES:
                raise HTTPProblem(415, f"unsupported Content-Type {mt or '(none)'!r}: send JSON lines "
                                       "as application/x-ndjson")
            first_line = forwarded_first_line(request) or 1
            kind = forwarded_kind(request, "http")
            try:  # `toolctl ingest --max-line-bytes` forwarded; the server's value otherwise
                max_line = int(request.headers.get("x-toolctl-max-line-bytes", config.max_line_bytes))
                if max_line < 1:
                    raise ValueError
            except ValueError:
                raise HTTPProblem(400, "X-Toolctl-Max-Line-Bytes must be a positive integer") from None
            source = forwarded_text(request, "x-toolctl-source") or "http:/v1/tool-calls"
            body = await read_body(request, config.max_body_bytes)
            broken = forwarded_text(request, "x-toolctl-input-error")
            if broken is not None:  # a forwarded ingest's source broke off: its one reject line
                table = input_error_table(broken, first_line)
            else:
                table = await run_in_threadpool(ndjson_table, body, first_line, max_line)
            if table is None:
                return JSONResponse({"lines": 0, "accepted": 0, "duplicates": 0, "rejected": 0})

            def run(s: Any) -> Any:
                written = write_line_batch(s, table, source=source, kind=kind)
                return written, tally_lines(s, written)

            res, tally = await commit(run, len(body), request)
            telemetry.record_write("/v1/tool-calls", tally)
        except HTTPProblem as exc:
            return JSONResponse({"code": exc.status, "message": exc.message}, status_code=exc.status,
                                headers=exc.headers)
        return JSONResponse({"lines": res.lines, "accepted": res.accepted,
                             "duplicates": res.duplicates, "rejected": res.rejected,
                             "redacted": res.redacted, "batch_id": res.batch_id})

    async def ingest_otlp(request: Request) -> Any:
        """A forwarded `toolctl ingest` of an OTLP file (collector/forward.py): the file's
        bytes, or with X-Toolctl-First-Line the part of a one-request-per-line file that
        starts there; stored as a local ingest stores it (``ingest_otlp_data``)."""
        from collector.otlp import ingest_otlp_data

        try:
            fmt = request.headers.get("x-toolctl-format", "")
            if fmt not in ("otlp_json", "otlp_protobuf"):
                raise HTTPProblem(400, "X-Toolctl-Format must be otlp_json or otlp_protobuf")
            kind = forwarded_kind(request, "file")
            first_line = forwarded_first_line(request)
            source = forwarded_text(request, "x-toolctl-source") or "http:/api/v1/ingest-otlp"
            broken = forwarded_text(request, "x-toolctl-input-error")
            body = await read_body(request, config.max_body_bytes)

            def run(s: Any) -> Any:
                return ingest_otlp_data(s, body, fmt=fmt, source=source, kind=kind, broken=broken,
                                        first_line=first_line)

            res = await commit(run, len(body), request)
            for tally in res.tallies:
                if tally is not None:
                    telemetry.record_write("/api/v1/ingest-otlp", tally)
        except HTTPProblem as exc:
            return JSONResponse({"message": exc.message}, status_code=exc.status, headers=exc.headers)
        return JSONResponse({"spans": res.spans, "duplicates": res.duplicates,
                             "tool_calls": res.tool_calls, "rejected": res.rejected})

    async def ingest_source(request: Request) -> Any:
        """A forwarded `toolctl ingest` finished a source: note it as a local ingest does."""
        from pydantic import BaseModel, Field, ValidationError

        from toolctl.store.writer import record_source

        class SourceDone(BaseModel):
            source: str
            sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
            nbytes: int = Field(ge=0)
            lines: int = Field(ge=0)
            accepted: int = Field(ge=0)
            duplicates: int = Field(ge=0)
            rejected: int = Field(ge=0)

        try:
            body = await read_body(request, MAX_READ_REQUEST_BYTES)
            try:
                done = SourceDone.model_validate_json(body)
            except ValidationError as exc:
                raise HTTPProblem(400, f"invalid ingest-source record: {exc.errors()[0]['msg']}") from None
            await commit(lambda s: record_source(s, **done.model_dump()), len(body))
        except HTTPProblem as exc:
            return JSONResponse({"message": exc.message}, status_code=exc.status, headers=exc.headers)
        return JSONResponse({"recorded": done.source})

    async def submit_write(name: str, req: Any, nbytes: int) -> Any:
        import asyncio

        try:
            def run(s: Any) -> Any:
                return api.run_local(s, name, req, "write")

            run.toolctl_alone = name.startswith("lake_")  # they commit their own transactions
            future = writes.submit(run, nbytes)
        except (QueueFullError, QueueClosedError) as exc:
            raise HTTPProblem(503, exc.message, retry) from None
        # Errors are not converted inside the job: they must roll its transaction back.
        return await asyncio.wrap_future(future)

    async def operation(request: Request, kind: str) -> Any:
        """A read (on a read cursor) or write (through the writer queue) of ``toolctl.api``."""
        from pydantic import ValidationError

        name = request.path_params["operation"]
        if name not in (api.READS if kind == "read" else api.WRITES):
            return JSONResponse({"message": f"unknown {kind} operation {name!r}"}, status_code=404)
        try:
            body = await read_body(request, MAX_READ_REQUEST_BYTES)
            req = api.request_model(name, kind).model_validate_json(body or b"{}")
            if kind == "read":
                result = await run_in_threadpool(readers.run, lambda r: api.run_local(r, name, req))
            else:
                result = await submit_write(name, req, len(body))
        except HTTPProblem as exc:
            return JSONResponse({"message": exc.message}, status_code=exc.status, headers=exc.headers)
        except ValidationError as exc:
            return JSONResponse({"message": f"invalid {name} request: {exc.errors()[0]['msg']}",
                                 "error_class": "UsageError"}, status_code=400)
        except ToolctlError as exc:
            return JSONResponse({"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code,
                                 "error_class": type(exc).__name__}, status_code=400)
        return Response(b'{"result": ' + dumps(result) + b"}", media_type=JSON)

    async def read_op(request: Request) -> Any:
        return await operation(request, "read")

    async def write_op(request: Request) -> Any:
        return await operation(request, "write")

    # What a forwarding `toolctl ingest` compares its own redaction rules with.
    from toolctl.audit.redact import rules_for

    redaction = rules_for(store).fingerprint

    async def healthz(request: Request) -> Any:
        items, nbytes = writes.depth()
        doc = {"status": "ok", "pid": os.getpid(), "queue_items": items, "queue_bytes": nbytes,
               "redaction": redaction}
        if decode_pool is not None:
            doc["decode_workers"] = decode_pool.pids()
        return JSONResponse(doc)

    async def metrics(request: Request) -> Any:
        return Response(telemetry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @asynccontextmanager
    async def lifespan(app: Any):
        otel = start_otel(telemetry)
        writes.start()
        if decode_pool is not None:
            decode_pool.start()
        if lake_sink is not None:
            lake_sink.start()
        if config.url:
            write_discovery(config.db_path, url=config.url)
        try:
            yield
        finally:
            # uvicorn has stopped accepting and finished the open requests: drain, close.
            if lake_sink is not None:
                lake_sink.close()  # the last export, through the writer, before it stops
            if decode_pool is not None:
                decode_pool.close()  # no request is left to decode: the workers exit
            writes.close()
            readers.close()
            preparers.close()
            store.close()
            remove_discovery(config.db_path)
            if otel is not None:
                otel.shutdown()  # flushes the last spans and metrics

    app = Starlette(routes=[
        Route("/v1/traces", traces, methods=["POST"]),
        Route("/v1/logs", logs, methods=["POST"]),
        Route("/v1/tool-calls", tool_calls, methods=["POST"]),
        Route("/api/v1/read/{operation}", read_op, methods=["POST"]),
        Route("/api/v1/write/{operation}", write_op, methods=["POST"]),
        Route("/api/v1/ingest-source", ingest_source, methods=["POST"]),
        Route("/api/v1/ingest-otlp", ingest_otlp, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.writes = writes
    app.state.lake_sink = lake_sink
    app.state.telemetry = telemetry
    # Outside the auth check, so 401s are counted too.
    return TelemetryMiddleware(BearerAuth(app, config.token) if config.token else app, telemetry)


def forwarded_first_line(request: Any) -> int | None:
    """X-Toolctl-First-Line of a forwarded ingest (None when absent). Line numbers are
    BIGINTs: the bound leaves room to count the body's lines on from there."""
    if "x-toolctl-first-line" not in request.headers:
        return None
    try:
        first_line = int(request.headers["x-toolctl-first-line"])
        if not 1 <= first_line <= MAX_FIRST_LINE:
            raise ValueError
    except ValueError:
        raise HTTPProblem(400, f"X-Toolctl-First-Line must be an integer from 1 to {MAX_FIRST_LINE}") from None
    return first_line


def forwarded_text(request: Any, name: str) -> str | None:
    """A text header of a forwarded ingest (X-Toolctl-Source, X-Toolctl-Input-Error):
    percent-encoded UTF-8, as ``toolctl ingest`` sends it (``toolctl.remote._header_safe``),
    so a source path keeps its non-ASCII characters exactly as a local ingest stores them."""
    from urllib.parse import unquote

    value = request.headers.get(name)
    return None if value is None else unquote(value, errors="backslashreplace")


def forwarded_kind(request: Any, default: str) -> str:
    """X-Toolctl-Kind of a forwarded ingest: where its source came from."""
    kind = request.headers.get("x-toolctl-kind", default)
    if kind not in ("http", "file", "stdin"):
        raise HTTPProblem(400, "X-Toolctl-Kind must be http, file or stdin")
    return kind


def input_error_table(reason: str, line_no: int) -> Any:
    """The rejected line a source that broke off counts as (a truncated gzip: collector/
    pipeline.py stores the same for a local ingest), for ``write_line_batch``."""
    from collector.parsers.jsonl import reason_line
    from toolctl.models import REJECT_RAW_CAP

    return reason_line(line_no, reason).to_arrow(REJECT_RAW_CAP)


def ndjson_table(body: bytes, first_line: int, max_line_bytes: int) -> Any:
    """JSON lines → one Arrow table for ``write_line_batch`` (None if there are no lines)."""
    import pyarrow as pa

    from collector.parsers.jsonl import iter_line_batches
    from toolctl.models import REJECT_RAW_CAP

    tables = []
    for batch in iter_line_batches(io.BytesIO(body), max_line_bytes=max_line_bytes,
                                   chunk_bytes=max(len(body), 1), raw_cap=REJECT_RAW_CAP):
        batch.first_line += first_line - 1
        tables.append(batch.to_arrow(REJECT_RAW_CAP))
    if not tables:
        return None
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


class BearerAuth:
    """ASGI middleware: every path but /healthz needs ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str):
        self.app = app
        self.state = getattr(app, "state", None)
        self._token = token.encode("utf-8")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = b""
            for key, value in scope.get("headers", []):
                if key == b"authorization":
                    given = value
                    break
            scheme, _, cred = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(cred.strip(), self._token):
                from starlette.responses import JSONResponse

                resp = JSONResponse({"code": 16, "message": "missing or wrong bearer token"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)
