"""OTel span → tool-call fields, recording which rule recognised the span as a tool call.

Input is a span's decoded attributes (plain Python values: str, bool, int, float, bytes,
list, dict) plus its resource attributes, name and status code. ``map_span`` returns the
tool-call columns of the ``spans`` table (``SpanMapping``); for a span no rule matches,
only ``auth_signal`` and ``latency_ms`` are meaningful and ``tool_rule`` is None.

Rules, tried in this order (the first match is recorded in ``tool_rule``):

=====================  ==============================================  ========================
tool_rule              the span carries                                tool name from
=====================  ==============================================  ========================
``mcp``                ``mcp.method.name = tools/call``                ``gen_ai.tool.name``
``gen_ai``             ``gen_ai.operation.name = execute_tool``        ``gen_ai.tool.name``
``openinference``      ``openinference.span.kind = TOOL``              ``tool.name``
``traceloop``          ``traceloop.span.kind = tool``                  ``traceloop.entity.name``
``gen_ai.tool.name``   a ``gen_ai.tool.name`` attribute (any span)     ``gen_ai.tool.name``
=====================  ==============================================  ========================

MCP comes first because MCP spans also carry ``gen_ai.tool.name``. When the named
attribute is absent the tool name falls back to the other tool-name attributes, then to
the span name after ``execute_tool `` / ``tools/call `` (or before ``.tool``).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

#: Values that name an authentication/authorization failure (error.type,
#: rpc.response.status_code, or an HTTP status given as a string).
AUTH_CODES = frozenset({"401", "403", "UNAUTHENTICATED", "PERMISSION_DENIED"})
#: gRPC numeric codes: 7 PERMISSION_DENIED, 16 UNAUTHENTICATED (rpc.grpc.status_code).
AUTH_GRPC_CODES = frozenset({7, 16})
HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")
STATUS_ERROR = 2

_NAME_KEYS = {
    "mcp": ("gen_ai.tool.name", "tool.name", "traceloop.entity.name"),
    "gen_ai": ("gen_ai.tool.name", "tool.name", "traceloop.entity.name"),
    "openinference": ("tool.name", "gen_ai.tool.name", "traceloop.entity.name"),
    "traceloop": ("traceloop.entity.name", "gen_ai.tool.name", "tool.name"),
    "gen_ai.tool.name": ("gen_ai.tool.name",),
}
_CALL_ID_KEYS = ("gen_ai.tool.call.id", "tool.id", "jsonrpc.request.id")
_ARGS_KEYS = ("gen_ai.tool.call.arguments", "input.value", "traceloop.entity.input")
_RESULT_KEYS = ("gen_ai.tool.call.result", "output.value", "traceloop.entity.output")
_USER_KEYS = ("user.id", "enduser.id")
_SESSION_KEYS = ("session.id", "gen_ai.conversation.id")


@dataclass(slots=True)
class SpanMapping:
    """The derived columns of one span (see toolctl/store/migrations/0002_spans.sql)."""

    auth_signal: bool
    latency_ms: float
    tool_rule: str | None = None
    tool: str | None = None
    status: str | None = None
    call_id: str | None = None
    session_id: str | None = None
    tenant: str | None = None
    user_id: str | None = None
    attempt: int | None = None
    idempotency_key: str | None = None
    retryable: bool | None = None
    confidence: float | None = None
    error_code: str | None = None
    http_status: int | None = None
    args: str | None = None  # JSON text
    result: str | None = None  # JSON text


def tool_rule(attrs: dict[str, Any]) -> str | None:
    """The first rule that recognises a span with these attributes as a tool call, or None."""
    if attrs.get("mcp.method.name") == "tools/call":
        return "mcp"
    if attrs.get("gen_ai.operation.name") == "execute_tool":
        return "gen_ai"
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() == "TOOL":
        return "openinference"
    kind = attrs.get("traceloop.span.kind")
    if isinstance(kind, str) and kind.lower() == "tool":
        return "traceloop"
    if "gen_ai.tool.name" in attrs:
        return "gen_ai.tool.name"
    return None


def is_auth_signal(attrs: dict[str, Any]) -> bool:
    """Does this span itself show an auth failure (401/403, UNAUTHENTICATED, PERMISSION_DENIED)?"""
    for key in HTTP_STATUS_KEYS:
        v = attrs.get(key)
        if v is not None and type(v) is not bool and _as_int(v) in (401, 403):
            return True
    # A number counts whatever type carries it (401, 401.0, "401"), as for http.* above. A
    # name counts exactly as written, as a JSON line's error_code does (README): the same
    # attempt as a span and as a line must not differ ("unauthenticated" is neither).
    for key in ("rpc.response.status_code", "error.type"):
        v = attrs.get(key)
        if isinstance(v, str) and v in AUTH_CODES:
            return True
        if v is not None and type(v) is not bool and _as_int(v) in (401, 403):
            return True
    v = attrs.get("rpc.grpc.status_code")
    return v is not None and type(v) is not bool and _as_int(v) in AUTH_GRPC_CODES


def map_span(attrs: dict[str, Any], resource: dict[str, Any], *, name: str,
             status_code: int, start_ns: int, end_ns: int) -> SpanMapping:
    """Derive the tool-call columns of one span (pure; no I/O)."""
    m = SpanMapping(auth_signal=is_auth_signal(attrs), latency_ms=(end_ns - start_ns) / 1e6)
    rule = tool_rule(attrs)
    if rule is None:
        return m
    m.tool_rule = rule
    m.tool = _first_str(attrs, _NAME_KEYS[rule]) or _name_from_span(name)
    error_type = attrs.get("error.type")
    error_code = _text(error_type) if error_type is not None else None
    m.error_code = error_code or None
    m.status = "error" if status_code == STATUS_ERROR or m.error_code else "ok"
    m.call_id = _first_text(attrs, _CALL_ID_KEYS)
    m.session_id = _first_text(attrs, _SESSION_KEYS) or _first_text(resource, _SESSION_KEYS)
    m.tenant = _first_text(attrs, ("tenant.id",)) or _first_text(resource, ("tenant.id",))
    m.user_id = _first_text(attrs, _USER_KEYS) or _first_text(resource, _USER_KEYS)
    attempt = _as_int(attrs.get("toolctl.attempt"))
    m.attempt = attempt if attempt is not None and 1 <= attempt <= 2**31 - 1 else 1
    m.idempotency_key = _first_text(attrs, ("toolctl.idempotency_key",))
    retryable = attrs.get("toolctl.retryable")
    m.retryable = retryable if type(retryable) is bool else None
    confidence = attrs.get("toolctl.confidence")
    if type(confidence) in (int, float) and 0 <= confidence <= 1:
        m.confidence = float(confidence)
    for key in HTTP_STATUS_KEYS:
        status = _as_int(attrs.get(key))
        if status is not None and -(2**31) <= status < 2**31:
            m.http_status = status
            break
    m.args = _payload_json(attrs, _ARGS_KEYS)
    m.result = _payload_json(attrs, _RESULT_KEYS)
    return m


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


#: One decoder for every payload check: json.loads(..., parse_constant=...) would build a
#: new JSONDecoder per call, a third of the cost of checking a small document.
_STRICT_JSON = json.JSONDecoder(parse_constant=_no_constant)


# -- the type-preserving JSON encoding of OTLP AnyValues (docs/spans.md) -------------------
#: Single-key objects that stand for a value JSON cannot hold; a kvlist that happens to
#: look like one is wrapped as {"$kvlist": {...}} so reading back is unambiguous.
MARKERS = frozenset({"$bytes", "$double", "$kvlist"})


def typed_value(v: Any) -> Any:
    """A decoded AnyValue as a JSON-ready value that keeps its OTLP type (see MARKERS)."""
    t = type(v)
    if t is str or t is int or t is bool or v is None:
        return v
    if t is float:
        if v != v or v in (float("inf"), float("-inf")):
            return {"$double": "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")}
        return v
    if t is bytes:
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if t is list:
        return [typed_value(x) for x in v]
    if t is dict:
        d = {k: typed_value(x) for k, x in v.items()}
        if len(d) == 1 and next(iter(d)) in MARKERS:
            return {"$kvlist": d}
        return d
    raise TypeError(f"not an OTLP value: {t.__name__}")


_SCALARS = frozenset({str, int, bool, float, type(None)})
#: One encoder for every span (json.dumps with options builds a new one per call).
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def typed_json(v: Any) -> str:
    """``typed_value`` as compact JSON text (integers exact, doubles keep a '.' or exponent)."""
    if type(v) is dict and (len(v) != 1 or next(iter(v)) not in MARKERS):
        types = set(map(type, v.values()))
        if _SCALARS.issuperset(types) and (float not in types or all(
                x - x == 0 for x in v.values() if type(x) is float)):
            # The common flat attribute map of finite scalars, nothing to rewrite: orjson,
            # ~5x faster than the standard encoder, and this runs for every span the
            # collector receives. Same text (tests/test_collector_mapping.py), except that
            # a double below 1e-4 may be written 0.0000x rather than x e-05.
            try:
                return orjson.dumps(v).decode("utf-8")
            except (TypeError, ValueError):  # a lone surrogate, an int beyond 64 bits
                pass
    return _ENCODE(typed_value(v))


def _name_from_span(name: str) -> str:
    for prefix in ("execute_tool ", "tools/call "):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    if name.endswith(".tool") and len(name) > 5:
        return name[:-5]
    return name


#: An integer written as text: ASCII digits with an optional sign, at most 20 characters
#: (int() would also take "4_01", "²" or a 5000-digit string, and fail or run long).
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,19}")


def _as_int(v: Any) -> int | None:
    """An attribute as an integer, or None when it is not one (never raises: a value the
    mapping cannot use is ignored, the span is still kept)."""
    if type(v) is int:
        return v
    if type(v) is str:
        text = v.strip()
        return int(text) if _INT_TEXT.fullmatch(text) else None
    if type(v) is float and v.is_integer():
        return int(v)
    return None


def _text(v: Any) -> str:
    """An id-like attribute as text: ints (JSON-RPC ids) become their decimal form."""
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, (list, dict, bool)):
        try:
            return json.dumps(v)
        except (TypeError, ValueError):  # bytes inside an array or kvlist
            return typed_json(v)
    return str(v)


def _first_str(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        v = attrs.get(key)
        if isinstance(v, str) and v:
            return v
    return None


def _first_text(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        v = attrs.get(key)
        if v is not None and v != "":
            return _text(v)
    return None


#: A \u escape of a UTF-16 surrogate: Python's JSON decoder takes one without its pair,
#: DuckDB's JSON type does not (a truncated emoji, as an LLM may write one).
SURROGATE_ESCAPE = r"\\u[dD][89a-fA-F]"
_SURROGATE_ESCAPE = re.compile(SURROGATE_ESCAPE)


def _payload_json(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """Arguments/results as JSON text: a string holding a JSON object or array is that
    document; any other value is kept as the JSON value it is (strings stay strings).

    Only a document DuckDB also reads as JSON is kept as one: one with an unpaired
    surrogate escape is kept as the string it is."""
    for key in keys:
        if key not in attrs:
            continue
        v = attrs[key]
        if isinstance(v, str) and v[:1] in ("{", "["):
            try:
                doc = _STRICT_JSON.decode(v)
            except (ValueError, RecursionError):
                pass
            else:
                if not (_SURROGATE_ESCAPE.search(v) and has_unpaired_surrogate(doc)):
                    return v
        return typed_json(v)
    return None


def has_unpaired_surrogate(value: Any) -> bool:
    """Does a decoded JSON value hold a string (or key) with a UTF-16 surrogate out of its
    pair? Such text is not Unicode: it cannot be stored, and DuckDB refuses it as JSON."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (TypeError, ValueError, RecursionError):  # not JSON-shaped: decided elsewhere
        return False
    return False
