"""Instrument tool calls: one OTel GenAI ``execute_tool`` span (and optionally one schema-v1
JSON-line event) per attempt, with the attribute names toolctl's collector maps to tool-call
columns (docs/spans.md, docs/instrument.md)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from toolctl.audit.redact import RULES_ENV, Redactor, Rules, load_rules
from toolctl.instrument.errors import (DEFAULT_RETRYABLE_CODES, ToolError, ToolTimeoutError,
                                       error_fields)
from toolctl.instrument.retry import NO_RETRY, RetryPolicy
from toolctl.instrument.sink import JsonLineSink

log = logging.getLogger("toolctl.instrument")

#: Span attribute names (docs/spans.md "Field mapping"): OTel GenAI where a convention
#: exists, toolctl's own names where none does.
A_OPERATION = "gen_ai.operation.name"
A_TOOL = "gen_ai.tool.name"
A_TOOL_TYPE = "gen_ai.tool.type"
A_CALL_ID = "gen_ai.tool.call.id"
A_ARGUMENTS = "gen_ai.tool.call.arguments"
A_RESULT = "gen_ai.tool.call.result"
A_ERROR_TYPE = "error.type"
A_TENANT = "tenant.id"
A_SESSION = "session.id"
A_USER = "user.id"
A_HTTP_STATUS = "http.response.status_code"
A_ATTEMPT = "toolctl.attempt"
A_IDEMPOTENCY_KEY = "toolctl.idempotency_key"
A_RETRYABLE = "toolctl.retryable"
A_CONFIDENCE = "toolctl.confidence"
A_TIMEOUT_MS = "toolctl.timeout_ms"
A_STAGE = "toolctl.stage"

STAGES = ("validate", "authorize", "execute")

#: A UTF-16 surrogate on its own (os.listdir's undecodable bytes, half an emoji): a Python
#: string can hold one, but the OTLP exporter cannot encode it and then drops the whole batch
#: of spans it was in, other calls' spans included.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _id_text(name: str, value: Any) -> str | None:
    """An id or label as the string schema v1 wants: an integer (a JSON-RPC request id, a
    numeric tenant) becomes its decimal text, as toolctl's collector reads it from a span;
    anything else that is not a string fails fast (the JSON line would be dropped)."""
    if value is None or isinstance(value, str):
        return _utf8(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{name} must be a string or an integer, got {type(value).__name__} {value!r}")


def _utf8(text: str | None) -> str | None:
    """``text`` as UTF-8 can carry it: each unpaired surrogate becomes U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text) if isinstance(text, str) else text

_scope: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("toolctl_instrument_scope",
                                                                        default={})
_current: contextvars.ContextVar["ToolCall | None"] = contextvars.ContextVar(
    "toolctl_instrument_call", default=None)


@dataclass(frozen=True)
class ToolResult:
    """What a tool may return instead of a bare value, to report confidence or an HTTP status."""

    data: Any = None
    confidence: float | None = None
    http_status: int | None = None


@dataclass
class Outcome:
    """The final result of a call after all its attempts (``Instrument.run`` / ``arun``)."""

    tool: str
    call_id: str
    status: str
    attempts: int
    data: Any = None
    confidence: float | None = None
    trace_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    retryable: bool | None = None
    http_status: int | None = None
    value: Any = None  # what the tool returned, unchanged
    exception: BaseException | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def envelope(self) -> dict[str, Any]:
        """The gateway's result envelope for the model (data unredacted: it is the answer)."""
        if self.ok:
            return {"status": "ok", "data": self.data, "confidence": self.confidence,
                    "trace_id": self.trace_id}
        return {"status": "error", "error_code": self.error_code, "message": self.message,
                "retryable": self.retryable}


def _check_confidence(confidence: float | None) -> float | None:
    if confidence is None:
        return None
    if type(confidence) not in (int, float) or not 0 <= confidence <= 1:
        raise ValueError(f"confidence must be a number within [0, 1], got {confidence!r}")
    return float(confidence)


def _check_http_status(status: int | None) -> int | None:
    if status is not None and (type(status) is not int or not -(2**31) <= status < 2**31):
        raise ValueError(f"http_status must be a 32-bit integer, got {status!r}")
    return status


def _jsonable(v: Any, _path: tuple[int, ...] = ()) -> Any:
    """A value as plain JSON, leaf by leaf: other leaves become their str(), NaN/±inf their
    text, a container inside itself "[...]". Recording must never break the tool call."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (dict, list, tuple)):
        if id(v) in _path:
            return "[...]"
        inner = _path + (id(v),)
        if isinstance(v, dict):
            return {str(k): _jsonable(x, inner) for k, x in v.items()}
        return [_jsonable(x, inner) for x in v]
    return str(v)


#: The largest argument or result text put on a span, in UTF-8 bytes (`toolctl ingest`'s
#: line limit). An OTLP request over `toolctl serve --max-body-bytes` (16 MiB) is refused
#: with 413, and every span of the batch with it: other calls' spans are lost too.
MAX_PAYLOAD_BYTES = 1024 * 1024


def _recorded(capture: Callable[[], Any], tool: str, what: str) -> tuple[Any, str] | None:
    """(value, its JSON text) of a captured argument or result, or None when it cannot be
    recorded (a 5,000-digit int, a __str__ that raises, nesting deeper than Python's stack,
    JSON text over MAX_PAYLOAD_BYTES): the call goes on unrecorded in that respect, never
    fails for it."""
    try:
        value = capture()
        if value is None:
            return None
        text = _utf8(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        if len(text) > MAX_PAYLOAD_BYTES // 4 and len(text.encode("utf-8")) > MAX_PAYLOAD_BYTES:
            log.warning("toolctl.instrument: tool %r: %s not recorded (longer than %d bytes)",
                        tool, what, MAX_PAYLOAD_BYTES)
            return None
        return value, text
    except Exception as exc:  # noqa: BLE001 - recording must never break the tool call
        log.warning("toolctl.instrument: tool %r: %s not recorded (%s)", tool, what, type(exc).__name__)
        return None


def _as_object(v: Any, key: str) -> dict[str, Any] | None:
    """Schema v1 wants objects for args/data: anything else is wrapped as {key: value}."""
    if v is None:
        return None
    v = _jsonable(v)
    return v if isinstance(v, dict) else {key: v}


def _rfc3339(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ns % 1_000_000_000) // 1000:06d}Z"


class ToolCall:
    """One attempt of one tool call: a context manager (``with`` or ``async with``).

    Inside, call ``succeed(data, confidence=...)`` or ``fail(code, ...)``; leaving the block by
    an exception records it as the attempt's error (``ToolError`` fields, ``TimeoutError`` →
    ``TIMEOUT``, anything else → its class name) and lets it propagate. Leaving normally
    without either records success with no data. Attributes after exit: ``status``,
    ``error_code``, ``retryable``, ``trace_id``, ``span_id``, ``latency_ms``, ``event``.
    """

    def __init__(self, inst: "Instrument", tool: str, *, args: Any = None, call_id: str | None = None,
                 attempt: int = 1, idempotency_key: str | None = None, tenant: str | None = None,
                 session_id: str | None = None, user: str | None = None,
                 timeout_ms: float | None = None, stage: str | None = None,
                 retryable_codes: frozenset[str] = DEFAULT_RETRYABLE_CODES):
        if not isinstance(tool, str) or not tool:
            raise ValueError("tool name must be a non-empty string")
        if type(attempt) is not int or not 1 <= attempt < 2**31:
            raise ValueError(f"attempt must be an integer ≥ 1, got {attempt!r}")
        if stage is not None and stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        scope = _scope.get()
        self.inst = inst
        self.tool = _utf8(tool)
        self.args = args
        self.call_id = _id_text("call_id", call_id) or f"call_{uuid.uuid4().hex[:24]}"
        self.attempt = attempt
        self.idempotency_key = _id_text("idempotency_key", idempotency_key)
        self.tenant = _id_text("tenant", tenant or scope.get("tenant") or inst.tenant)
        self.session_id = _id_text("session_id", session_id or scope.get("session_id"))
        self.user = _id_text("user", user or scope.get("user"))
        self.timeout_ms = timeout_ms
        self.stage = stage
        self.retryable_codes = retryable_codes
        self.status: str | None = None
        self.data: Any = None
        self.confidence: float | None = None
        self.http_status: int | None = None
        self.error_code: str | None = None
        self.message: str | None = None
        self.retryable: bool | None = None
        self.trace_id: str | None = None
        self.span_id: str | None = None
        self.latency_ms: float | None = None
        self.event: dict[str, Any] | None = None
        self._span: Any = None
        self._tokens: tuple[Any, Any] | None = None
        self._start_ns = 0

    # -- recording ---------------------------------------------------------------------------
    def succeed(self, data: Any = None, *, confidence: float | None = None,
                http_status: int | None = None) -> None:
        """Record this attempt as a success returning ``data``."""
        self.confidence = _check_confidence(confidence)
        self.http_status = _check_http_status(http_status)
        self.status, self.data = "ok", data
        self.error_code = self.message = self.retryable = None

    def fail(self, code: str, message: str = "", *, retryable: bool | None = None,
             http_status: int | None = None) -> None:
        """Record this attempt as failed without raising (a gateway-side decision)."""
        err = ToolError(code, message, retryable=retryable, http_status=http_status)
        self._record_error(err.code, err.message, err.retryable, err.http_status)

    def _record_error(self, code: str, message: str, retryable: bool | None,
                      http_status: int | None) -> None:
        self.status, self.data, self.confidence = "error", None, None
        self.error_code, self.message = _utf8(code), message
        self.retryable = retryable if retryable is not None else code in self.retryable_codes
        if http_status is not None:
            self.http_status = http_status

    # -- the span ----------------------------------------------------------------------------
    def _start(self) -> "ToolCall":
        if self._span is not None:
            raise RuntimeError("a ToolCall records one attempt: create a new one per attempt")
        red = self.inst._redactor()
        attrs: dict[str, Any] = {A_OPERATION: "execute_tool", A_TOOL: self.tool, A_TOOL_TYPE: "function",
                                 A_CALL_ID: self.call_id, A_ATTEMPT: self.attempt}
        for key, value in ((A_IDEMPOTENCY_KEY, self.idempotency_key), (A_TENANT, self.tenant),
                           (A_SESSION, self.session_id), (A_USER, self.user),
                           (A_TIMEOUT_MS, self.timeout_ms), (A_STAGE, self.stage)):
            if value is not None:
                attrs[key] = value
        self._recorded_args = None
        if self.inst.capture_arguments and self.args is not None:
            recorded = _recorded(lambda: red.value(_as_object(self.args, "value")), self.tool, "arguments")
            if recorded is not None:
                self._recorded_args, attrs[A_ARGUMENTS] = recorded
        self._start_ns = time.time_ns()
        self._span = self.inst.tracer.start_span(f"execute_tool {self.tool}", kind=SpanKind.INTERNAL,
                                                 attributes=attrs, start_time=self._start_ns)
        ctx = self._span.get_span_context()
        if ctx.is_valid:
            self.trace_id, self.span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
        self._tokens = (otel_context.attach(trace.set_span_in_context(self._span)), _current.set(self))
        return self

    def _finish(self, exc: BaseException | None) -> None:
        end_ns = max(time.time_ns(), self._start_ns)
        if exc is not None:
            self._record_error(*error_fields(exc))
        elif self.status is None:
            self.status = "ok"
        red = self.inst._redactor()
        span = self._span
        recorded_data = None
        if self.status == "ok":
            recorded = (_recorded(lambda: red.value(_as_object(self.data, "result")), self.tool, "result")
                        if self.inst.capture_results else None)
            if recorded is not None:
                recorded_data = recorded[0]
                span.set_attribute(A_RESULT, recorded[1])
            if self.confidence is not None:
                span.set_attribute(A_CONFIDENCE, self.confidence)
            span.set_status(Status(StatusCode.OK))
        else:
            self.message = _utf8(red.loose_text(self.message or ""))
            span.set_attribute(A_ERROR_TYPE, self.error_code)
            span.set_attribute(A_RETRYABLE, bool(self.retryable))
            if exc is not None and not isinstance(exc, ToolError):
                _record_exception(span, exc, {
                    "exception.message": self.message,
                    "exception.stacktrace": _utf8(red.loose_text(_stacktrace(exc)))}, end_ns)
            span.set_status(Status(StatusCode.ERROR, self.message))
        if self.http_status is not None:
            span.set_attribute(A_HTTP_STATUS, self.http_status)
        span.end(end_time=end_ns)
        tokens, self._tokens = self._tokens, None
        if tokens is not None:
            _current.reset(tokens[1])
            otel_context.detach(tokens[0])
        self.latency_ms = (end_ns - self._start_ns) / 1e6
        if self.inst.sink is not None:
            self.event = self._event(recorded_data)
            self.inst.sink.write(self.event)

    def _event(self, recorded_data: Any) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "schema_version": 1,
            "event_id": f"{self.trace_id}:{self.span_id}" if self.trace_id else uuid.uuid4().hex,
            "ts": _rfc3339(self._start_ns), "tool": self.tool, "status": self.status,
            "latency_ms": self.latency_ms, "trace_id": self.trace_id, "span_id": self.span_id,
            "call_id": self.call_id, "session_id": self.session_id, "tenant": self.tenant,
            "user": self.user, "service": self.inst.service, "version": self.inst.version,
            "stage": self.stage, "attempt": self.attempt, "idempotency_key": self.idempotency_key,
            "timeout_ms": self.timeout_ms, "http_status": self.http_status,
        }
        if self.status == "ok":
            ev.update(confidence=self.confidence, data=recorded_data)
        else:
            ev.update(error_code=self.error_code, message=self.message, retryable=self.retryable)
        if self._recorded_args is not None:
            ev["args"] = self._recorded_args
        return {k: v for k, v in ev.items() if v is not None}

    def __enter__(self) -> "ToolCall":
        return self._start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self._finish(exc)
        return False

    async def __aenter__(self) -> "ToolCall":
        return self._start()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self._finish(exc)
        return False


def _record_exception(span: Any, exc: BaseException, attributes: dict[str, str], end_ns: int) -> None:
    """The span's ``exception`` event. The SDK's ``record_exception`` calls ``str(exc)``
    itself, which raises for an exception whose ``__str__`` raises: then add the event
    directly (the message is already in ``attributes``)."""
    try:
        span.record_exception(exc, attributes=attributes, timestamp=end_ns)
    except Exception:  # noqa: BLE001 - recording must never break the tool call
        cls = type(exc)
        kind = cls.__qualname__ if cls.__module__ in (None, "builtins") else f"{cls.__module__}.{cls.__qualname__}"
        span.add_event("exception", attributes={"exception.type": kind, "exception.escaped": "False",
                                                **attributes}, timestamp=end_ns)


def _stacktrace(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def current_call() -> ToolCall | None:
    """The attempt being recorded in this context (inside a tool: set confidence, status …)."""
    return _current.get()


class Instrument:
    """Instrumentation for one gateway or agent process.

    Args:
        tracer_provider: an OpenTelemetry ``TracerProvider`` (default: the global one). Its
            resource's ``service.name`` / ``service.version`` are the call's service and
            version (the canary dimension) for spans and JSON lines alike.
        service, version: override the resource's values in JSON-line events only (spans
            always carry the resource); give them when there is no SDK provider.
        tenant: the default tenant (``context()`` and per-call arguments override it).
        events: a path, a text stream or a ``JsonLineSink`` for schema-v1 JSON lines
            (None: spans only).
        capture_arguments, capture_results: record arguments / results (opt-in; redacted
            with toolctl's rules before they leave the process).
        redaction_rules: ``Rules``, a rules file (TOML, see docs/audit.md) or None for
            ``$TOOLCTL_REDACTION_RULES`` or the default rules.
        redaction_salt: the HMAC key of redaction fingerprints (default: random per process,
            so fingerprints correlate within a process only).
    """

    def __init__(self, *, tracer_provider: Any = None, service: str | None = None,
                 version: str | None = None, tenant: str | None = None,
                 events: JsonLineSink | str | Path | TextIO | None = None,
                 capture_arguments: bool = False, capture_results: bool = False,
                 redaction_rules: Rules | str | Path | None = None,
                 redaction_salt: bytes | None = None):
        provider = tracer_provider or trace.get_tracer_provider()
        self.tracer = provider.get_tracer("toolctl.instrument")
        resource = getattr(getattr(provider, "resource", None), "attributes", {}) or {}
        self.service = service or _str_or_none(resource.get("service.name"))
        self.version = version or _str_or_none(resource.get("service.version"))
        self.tenant = tenant
        if events is None or isinstance(events, JsonLineSink):
            self.sink = events
        else:
            self.sink = JsonLineSink(events)
        self.capture_arguments = capture_arguments
        self.capture_results = capture_results
        if redaction_rules is None or isinstance(redaction_rules, (str, Path)):
            redaction_rules = load_rules(redaction_rules or os.environ.get(RULES_ENV) or None)
        self.rules = redaction_rules
        self.salt = redaction_salt if redaction_salt is not None else os.urandom(16)

    def _redactor(self) -> Redactor:
        return Redactor(self.rules, self.salt)

    @contextlib.contextmanager
    def context(self, *, tenant: str | None = None, session_id: str | None = None,
                user: str | None = None) -> Iterator[None]:
        """Ambient tenant/session/user for every call made inside the block (contextvars:
        safe across threads and asyncio tasks)."""
        merged = dict(_scope.get())
        merged.update({k: v for k, v in (("tenant", tenant), ("session_id", session_id),
                                         ("user", user)) if v is not None})
        token = _scope.set(merged)
        try:
            yield
        finally:
            _scope.reset(token)

    def call(self, tool: str, **kw: Any) -> ToolCall:
        """One attempt as a context manager (see ``ToolCall``); ``kw``: args, call_id, attempt,
        idempotency_key, tenant, session_id, user, timeout_ms, stage, retryable_codes."""
        return ToolCall(self, tool, **kw)

    # -- calls with attempts -----------------------------------------------------------------
    def _prepare(self, tool: str, policy: RetryPolicy | None, call_id: str | None,
                 idempotency_key: str | None) -> tuple[RetryPolicy, str, str | None]:
        policy = policy or NO_RETRY
        call_id = call_id or f"call_{uuid.uuid4().hex[:24]}"
        if idempotency_key is None and policy.max_attempts > 1:
            idempotency_key = f"idem_{uuid.uuid4().hex}"  # one key shared by every attempt
        return policy, call_id, idempotency_key

    def run(self, fn: Callable[..., Any], args: dict[str, Any] | None = None, *, tool: str | None = None,
            policy: RetryPolicy | None = None, call_id: str | None = None,
            idempotency_key: str | None = None, record_args: Any = None, **call_kw: Any) -> Outcome:
        """Call a sync ``fn(**args)`` under ``policy``: one span/event per attempt, all sharing
        the call id and idempotency key. Never raises for the tool's failures: the final
        ``Outcome`` carries them (``outcome.envelope()`` is what a gateway returns).
        ``fn`` may be an ``@inst.tool`` function: its own function runs, under the tool name,
        retry policy and stage it was decorated with unless given here, so a dispatch is
        one call rather than a call nested in another's attempt."""
        fn, tool, policy, call_kw = _undecorated(fn, tool, policy, call_kw)
        if _is_async(fn):
            raise TypeError(f"{_name_of(fn)} is a coroutine function: run() would record the coroutine "
                            "object as an instant success without running it; use `await inst.arun(...)`")
        return self._run_sync(fn, (), dict(args or {}), tool, policy, call_id,
                              idempotency_key, args if record_args is None else record_args, call_kw)

    async def arun(self, fn: Callable[..., Any], args: dict[str, Any] | None = None, *,
                   tool: str | None = None, policy: RetryPolicy | None = None,
                   call_id: str | None = None, idempotency_key: str | None = None,
                   record_args: Any = None, **call_kw: Any) -> Outcome:
        """``run`` for a coroutine function (timeouts cancel the attempt's task)."""
        fn, tool, policy, call_kw = _undecorated(fn, tool, policy, call_kw)
        if not _is_async(fn):
            raise TypeError(f"{_name_of(fn)} is not a coroutine function: arun() awaits what it returns; "
                            "use inst.run(...) (from async code: `await asyncio.to_thread(inst.run, ...)`)")
        return await self._run_async(fn, (), dict(args or {}), tool, policy, call_id,
                                     idempotency_key, args if record_args is None else record_args,
                                     call_kw)

    def _attempt(self, tool, record_args, call_id, attempt, idem, policy, call_kw) -> ToolCall:
        """One attempt of a call run under ``policy`` (shared call id and idempotency key)."""
        return self.call(tool, args=record_args, call_id=call_id, attempt=attempt,
                         idempotency_key=idem, timeout_ms=policy.timeout_ms,
                         retryable_codes=policy.retryable_codes, **call_kw)

    def _run_sync(self, fn, a, kw, tool, policy, call_id, idem, record_args, call_kw) -> Outcome:
        policy, call_id, idem = self._prepare(tool, policy, call_id, idem)
        for attempt in range(1, policy.max_attempts + 1):
            call = self._attempt(tool, record_args, call_id, attempt, idem, policy, call_kw)
            value = exc = None
            try:
                with call:
                    value = _call_with_timeout(fn, a, kw, policy.timeout_ms)
                    _record_value(call, value)
            except Exception as e:  # recorded on the span/event by ToolCall
                exc = e
            if _final(call, attempt, policy):
                return _outcome(call, attempt, value, exc)
            time.sleep(policy.delay_ms(attempt) / 1000)
        raise AssertionError("unreachable")

    async def _run_async(self, fn, a, kw, tool, policy, call_id, idem, record_args, call_kw) -> Outcome:
        policy, call_id, idem = self._prepare(tool, policy, call_id, idem)
        for attempt in range(1, policy.max_attempts + 1):
            call = self._attempt(tool, record_args, call_id, attempt, idem, policy, call_kw)
            value = exc = None
            try:
                async with call:
                    if policy.timeout_ms is None:
                        value = await fn(*a, **kw)
                    else:
                        try:
                            value = await asyncio.wait_for(fn(*a, **kw), policy.timeout_ms / 1000)
                        except asyncio.TimeoutError as e:
                            raise ToolTimeoutError(policy.timeout_ms) from e
                    _record_value(call, value)
            except Exception as e:
                exc = e
            if _final(call, attempt, policy):
                return _outcome(call, attempt, value, exc)
            await asyncio.sleep(policy.delay_ms(attempt) / 1000)
        raise AssertionError("unreachable")

    # -- the decorator -----------------------------------------------------------------------
    def tool(self, name: str | Callable[..., Any] | None = None, *, retry: RetryPolicy | None = None,
             stage: str | None = None) -> Any:
        """Decorate a sync or async tool function: every invocation is one call (one span and
        event per attempt under ``retry``). The function's arguments are the call's arguments
        (recorded only with ``capture_arguments``); its return value is passed through and its
        final exception re-raised. Usable bare (``@inst.tool``) or with options
        (``@inst.tool("search", retry=RetryPolicy(...))``). Per-invocation call id, tenant …
        come from ``inst.context(...)``."""
        if callable(name):
            return self.tool()(name)

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            _refuse_generator(fn)
            tool_name = name or fn.__name__
            sig = inspect.signature(fn)

            def recorded(a: tuple, kw: dict) -> dict[str, Any]:
                try:
                    bound = sig.bind(*a, **kw).arguments
                except TypeError:
                    return {"args": list(a), **kw}
                return {k: v for k, v in bound.items() if k not in ("self", "cls")}

            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def async_wrapper(*a: Any, **kw: Any) -> Any:
                    out = await self._run_async(fn, a, kw, tool_name, retry, None, None,
                                                recorded(a, kw), {"stage": stage})
                    return _unwrap(out)
                async_wrapper.toolctl_tool = (fn, tool_name, retry, stage)  # for run()/arun()
                return async_wrapper

            @functools.wraps(fn)
            def wrapper(*a: Any, **kw: Any) -> Any:
                out = self._run_sync(fn, a, kw, tool_name, retry, None, None, recorded(a, kw),
                                     {"stage": stage})
                return _unwrap(out)
            wrapper.toolctl_tool = (fn, tool_name, retry, stage)  # for run()/arun()
            return wrapper

        return decorate


def _is_async(fn: Callable[..., Any]) -> bool:
    """A coroutine function, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def _name_of(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


def _refuse_generator(fn: Callable[..., Any]) -> None:
    """A generator tool returns before it runs: its attempt would be recorded as a success
    taking no time, and an error raised while it is consumed would not be recorded at all."""
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"{_name_of(fn)} is a generator function: toolctl.instrument "
                        "records functions that return their result; collect the items in the tool "
                        "(return list(...)) or record the stream with `with inst.call(...)`")


def _undecorated(fn: Callable[..., Any], tool: str | None, policy: RetryPolicy | None,
                 call_kw: dict[str, Any]) -> tuple[Callable[..., Any], str, RetryPolicy | None, dict]:
    """``run(fn)`` of an ``@inst.tool`` function: the function it wraps, with the decorator's
    name, policy and stage where the dispatch gives none."""
    _refuse_generator(fn)
    decorated = getattr(fn, "toolctl_tool", None)
    if decorated is None:
        return fn, tool or fn.__name__, policy, call_kw
    inner, name, retry, stage = decorated
    if stage is not None and call_kw.get("stage") is None:
        call_kw = {**call_kw, "stage": stage}
    return inner, tool or name, policy or retry, call_kw


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _record_value(call: ToolCall, value: Any) -> None:
    if call.status is not None:  # the tool recorded its own outcome through current_call()
        return
    if isinstance(value, ToolResult):
        call.succeed(value.data, confidence=value.confidence, http_status=value.http_status)
    else:
        call.succeed(value)


def _final(call: ToolCall, attempt: int, policy: RetryPolicy) -> bool:
    """No further attempt: it succeeded, the budget is spent, or the error is not retryable."""
    return call.status == "ok" or attempt == policy.max_attempts or not call.retryable


def _outcome(call: ToolCall, attempts: int, value: Any, exc: BaseException | None) -> Outcome:
    return Outcome(tool=call.tool, call_id=call.call_id, status=call.status or "ok", attempts=attempts,
                   data=call.data, confidence=call.confidence, trace_id=call.trace_id,
                   error_code=call.error_code, message=call.message, retryable=call.retryable,
                   http_status=call.http_status, value=value, exception=exc)


def _unwrap(out: Outcome) -> Any:
    if out.ok:
        return out.value
    if out.exception is not None:
        raise out.exception
    raise ToolError(out.error_code or "_OTHER", out.message or "", retryable=out.retryable,
                    http_status=out.http_status)


def _call_with_timeout(fn: Callable[..., Any], a: tuple, kw: dict, timeout_ms: float | None) -> Any:
    """Run a sync function with a deadline. Python cannot stop a thread: a late attempt keeps
    running in its daemon thread after it is recorded as TIMEOUT (prefer async tools, or tools
    that honour their own deadline, when that matters)."""
    if timeout_ms is None:
        return fn(*a, **kw)
    ctx = contextvars.copy_context()  # the attempt's span stays the parent of the tool's spans
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = ctx.run(fn, *a, **kw)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=target, name="toolctl-attempt", daemon=True).start()
    if not done.wait(timeout_ms / 1000):
        raise ToolTimeoutError(timeout_ms)
    if "error" in box:
        raise box["error"]
    return box["value"]
