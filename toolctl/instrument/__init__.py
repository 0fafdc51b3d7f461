"""toolctl.instrument: record tool calls the way toolctl counts them.

A small library for gateways and agents, built on the OpenTelemetry SDK. Every attempt of a
tool call becomes one OTel GenAI ``execute_tool`` span carrying the attributes toolctl's
collector maps to tool-call columns (tenant, attempt, idempotency key, error code, HTTP
status, retryable, confidence), and optionally one schema-v1 JSON line::

    from toolctl.instrument import Instrument, RetryPolicy, ToolError, otlp_tracer_provider

    inst = Instrument(tracer_provider=otlp_tracer_provider("gateway", "1.4.0"),
                      events="tool-calls.jsonl")

    @inst.tool(retry=RetryPolicy(max_attempts=3, timeout_ms=2000))
    def get_weather(city: str) -> dict:
        ...

    outcome = inst.run(get_weather, {"city": "Oslo"}, call_id="call_1")   # gateway style
    outcome.envelope()   # {"status": "ok", "data": ..., "confidence": ..., "trace_id": ...}

Importing ``toolctl`` (or running the CLI) does not import this package or OpenTelemetry.
Usage, the attribute table and retry semantics: docs/instrument.md.
"""

from __future__ import annotations

from toolctl.instrument.core import (Instrument, Outcome, ToolCall, ToolResult,
                                     current_call)
from toolctl.instrument.errors import (DEFAULT_RETRYABLE_CODES, TIMEOUT, ToolError,
                                       ToolTimeoutError)
from toolctl.instrument.exporting import otlp_tracer_provider
from toolctl.instrument.retry import NO_RETRY, RetryPolicy
from toolctl.instrument.sink import JsonLineSink

__all__ = [
    "DEFAULT_RETRYABLE_CODES", "Instrument", "JsonLineSink", "NO_RETRY", "Outcome", "RetryPolicy",
    "TIMEOUT", "ToolCall", "ToolError", "ToolResult", "ToolTimeoutError", "current_call",
    "otlp_tracer_provider",
]
