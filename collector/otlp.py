"""OTLP traces in: ExportTraceServiceRequest (OTLP/JSON or protobuf) → the ``spans`` table.

``ingest_otlp_traces`` is the one entry point for a request body (``toolctl serve``) and
``SpanBatch`` the builder the file pipeline fills document by document. Both decoders
walk the request once and append each span to column lists (no per-row objects, no
per-row SQL); the writer inserts the lot through Arrow in one statement
(``toolctl.store.spans``).

OTLP/JSON is decoded here rather than with protobuf's json_format, which expects base64
ids: OTLP/JSON carries trace/span ids as hex (any case accepted, stored lowercase), enums
as integers (names accepted too), int64 as numbers or strings, keys in lowerCamelCase
(the protobuf field names, snake_case, are read too, as the Collector reads them), and
receivers ignore unknown fields.

A span that cannot be stored (bad ids, missing times, wrong types) is rejected with a
reason and a locator (``resourceSpans[i].scopeSpans[j].spans[k]``); the rest of the
request is stored. A payload that cannot be decoded at all raises ``OTLPDecodeError``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from collector.mapping import SURROGATE_ESCAPE, has_unpaired_surrogate, map_span, typed_json, typed_value
from toolctl.errors import InputError
from toolctl.jsonio import unicode_json

Encoding = Literal["json", "protobuf"]

_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_INT64_MAX = 2**63 - 1
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_UINT32_MAX = 2**32 - 1
#: A JSON \u escape of a UTF-16 surrogate (a request without one cannot hold an unpaired one).
_SURROGATE_ESCAPE = re.compile(SURROGATE_ESCAPE.encode("ascii"))
#: What a document with an unpaired surrogate is refused with.
_NOT_UNICODE = ("holds a string with an unpaired UTF-16 surrogate escape (\\ud800-\\udfff without "
                "its pair): not valid Unicode")
_SPAN_KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
               "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_FLOAT_WORDS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
#: events/links as JSON (their values are typed_value()s already); one encoder, reused.
_ENCODE_LOOSE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: Raw text kept for a rejected span (the rejects table's cap applies as well).
_REJECT_RAW_CHARS = 16 * 1024


class OTLPDecodeError(InputError):
    """The payload is not an ExportTraceServiceRequest in the stated encoding at all."""

    code = "otlp_decode"


@dataclass
class TraceIngestResult:
    """What one request did: new spans stored, spans already stored, new tool calls among
    the stored spans, spans refused (``error_message`` says why, for partial_success)."""

    spans: int = 0
    duplicates: int = 0
    tool_calls: int = 0
    rejected_spans: int = 0
    error_message: str | None = None
    #: The collector's /metrics tally of the batch this request was stored in (set on the
    #: first request of a merged burst only, so counters add each stored batch once).
    tally: Any = None


class _SpanError(ValueError):
    """One span cannot be stored; the message is the reason."""


#: What decoding one OTLP/JSON span (or its resource or scope) raises when it cannot be
#: stored: a reason for that span alone, never a failure of the whole request.
_JSON_SPAN_ERRORS = (_SpanError, ValueError, TypeError, AttributeError, KeyError, OverflowError,
                     RecursionError)


# Column order of the builder = the `spans` table's columns before batch_id, source.
COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "trace_state", "name", "kind", "start_ns",
    "end_ns", "start_time", "status_code", "status_message", "flags", "service",
    "service_version", "resource", "scope_name", "scope_version", "attributes", "events",
    "links", "dropped_attributes_count", "dropped_events_count", "dropped_links_count",
    "auth_signal", "tool_rule", "tool", "status", "latency_ms", "call_id", "session_id",
    "tenant", "user_id", "attempt", "idempotency_key", "retryable", "confidence",
    "error_code", "http_status", "args", "result",
)
_MAPPED = COLUMNS[COLUMNS.index("tool_rule"):]


@dataclass
class SpanBatch:
    """Spans decoded so far, as column lists, plus the spans (or documents) refused."""

    rows: list[tuple] = field(default_factory=list)
    #: (line_no or None, reason, raw text) per refused span or document
    rejects: list[tuple[int | None, str, str]] = field(default_factory=list)
    #: spans refused, counting the spans inside a refused resourceSpans/scopeSpans entry
    rejected_spans: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    def tool_rule_counts(self) -> dict[str, int]:
        i = COLUMNS.index("tool_rule")
        out: dict[str, int] = {}
        for r in self.rows:
            if r[i] is not None:
                out[r[i]] = out.get(r[i], 0) + 1
        return out

    # -- building ----------------------------------------------------------------------
    def reject(self, line_no: int | None, reason: str, raw: Any, *, spans: int = 1) -> None:
        text = raw if isinstance(raw, str) else _raw_text(raw)
        # An entry that is itself a JSON string may hold an unpaired surrogate (no UTF-8
        # column takes it): kept as its escape, as _raw_text keeps one inside a document.
        text = text[:_REJECT_RAW_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")
        self.rejects.append((line_no, reason, text))
        self.rejected_spans += spans

    def _append(self, *, trace_id: str, span_id: str, parent: str | None, trace_state: str | None,
                name: str, kind: int, start: int, end: int, status_code: int,
                status_message: str | None, flags: int | None, resource: _Resource,
                scope_name: str | None, scope_version: str | None, attrs: dict[str, Any],
                events: list, links: list, dropped: tuple[int, int, int]) -> None:
        if not 0 < start <= _INT64_MAX:
            raise _SpanError("startTimeUnixNano is missing or out of range")
        if not 0 < end <= _INT64_MAX:
            raise _SpanError("endTimeUnixNano is missing or out of range")
        if end < start:
            raise _SpanError("endTimeUnixNano is before startTimeUnixNano")
        m = map_span(attrs, resource.attrs, name=name, status_code=status_code,
                     start_ns=start, end_ns=end)
        self.rows.append((
            trace_id, span_id, parent, trace_state or None, name, kind, start, end, start,
            status_code, status_message or None, flags, resource.service, resource.version,
            resource.json, scope_name or None, scope_version or None, typed_json(attrs),
            _ENCODE_LOOSE(events) if events else "[]",
            _ENCODE_LOOSE(links) if links else "[]",
            dropped[0], dropped[1], dropped[2],
            m.auth_signal, m.tool_rule, m.tool, m.status, m.latency_ms, m.call_id, m.session_id,
            m.tenant, m.user_id, m.attempt, m.idempotency_key, m.retryable, m.confidence,
            m.error_code, m.http_status, m.args, m.result,
        ))

    # -- OTLP/JSON -----------------------------------------------------------------------
    def add_json_request(self, doc: Any, line_no: int | None = None, raw: bytes | None = None) -> None:
        """Append the spans of one decoded OTLP/JSON ExportTraceServiceRequest.

        ``raw``: the JSON text ``doc`` was decoded from. Only a text with a surrogate escape
        can hold an unpaired surrogate, so only then (or without ``raw``) is each resource,
        scope and span checked for one; such an entry is refused like any other.
        Raises OTLPDecodeError when ``doc`` is not such a request at all."""
        if not isinstance(doc, dict):
            raise OTLPDecodeError("OTLP/JSON payload is not a JSON object",
                                  hint="send an ExportTraceServiceRequest: {\"resourceSpans\": [...]}")
        rss = doc.get("resourceSpans", doc.get("resource_spans", []))
        if not isinstance(rss, list):
            raise OTLPDecodeError("OTLP/JSON resourceSpans is not an array",
                                  hint="send an ExportTraceServiceRequest: {\"resourceSpans\": [...]}")
        check_unicode = raw is None or _SURROGATE_ESCAPE.search(raw) is not None
        for i, rs in enumerate(rss):
            where = f"resourceSpans[{i}]"
            try:
                if not isinstance(rs, dict):
                    raise _SpanError("is not an object")
                scopes = rs.get("scopeSpans", rs.get("scope_spans")) or []
                if check_unicode and has_unpaired_surrogate(
                        {k: v for k, v in rs.items() if k not in ("scopeSpans", "scope_spans")}):
                    raise _SpanError("resource " + _NOT_UNICODE)
                resource = _Resource(_json_attrs(_obj(rs.get("resource"), "resource").get("attributes")))
                if not isinstance(scopes, list):
                    raise _SpanError("scopeSpans is not an array")
            except _JSON_SPAN_ERRORS as exc:
                self.reject(line_no, f"{where}: {exc}", rs, spans=_count_spans(rs))
                continue
            for j, ss in enumerate(scopes):
                swhere = f"{where}.scopeSpans[{j}]"
                try:
                    if not isinstance(ss, dict):
                        raise _SpanError("is not an object")
                    if check_unicode and has_unpaired_surrogate({k: v for k, v in ss.items() if k != "spans"}):
                        raise _SpanError("scope " + _NOT_UNICODE)
                    scope = _obj(ss.get("scope"), "scope")
                    scope_name, scope_version = _opt_str(scope.get("name")), _opt_str(scope.get("version"))
                    spans = ss.get("spans") or []
                    if not isinstance(spans, list):
                        raise _SpanError("spans is not an array")
                except _JSON_SPAN_ERRORS as exc:
                    self.reject(line_no, f"{swhere}: {exc}", ss, spans=_count_spans({"scopeSpans": [ss]}))
                    continue
                for k, sp in enumerate(spans):
                    try:
                        if check_unicode and has_unpaired_surrogate(sp):
                            raise _SpanError("span " + _NOT_UNICODE)
                        self._add_json_span(sp, resource, scope_name, scope_version)
                    except _JSON_SPAN_ERRORS as exc:
                        self.reject(line_no, f"{swhere}.spans[{k}]: {exc}", sp)

    def _add_json_span(self, sp: Any, resource: _Resource, scope_name: str | None,
                       scope_version: str | None) -> None:
        if not isinstance(sp, dict):
            raise _SpanError("span is not an object")
        status = _obj(sp.get("status"), "status")
        flags = sp.get("flags")
        self._append(
            trace_id=_hex_id(_field(sp, "traceId", "trace_id"), _TRACE_ID, _ZERO_TRACE, "traceId"),
            span_id=_hex_id(_field(sp, "spanId", "span_id"), _SPAN_ID, _ZERO_SPAN, "spanId"),
            parent=_parent_id(_field(sp, "parentSpanId", "parent_span_id")),
            trace_state=_opt_str(_field(sp, "traceState", "trace_state")),
            name=_opt_str(sp.get("name")) or "",
            # Protobuf's types bound these (int32 enums, fixed32 flags, uint32 counts);
            # a JSON number does not, and the columns must hold it.
            kind=_ranged(_enum(sp.get("kind"), _SPAN_KINDS, "kind"), _INT32_MIN, _INT32_MAX, "kind"),
            start=_int(_field(sp, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
            end=_int(_field(sp, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
            status_code=_ranged(_enum(status.get("code"), _STATUS_CODES, "status.code"),
                                _INT32_MIN, _INT32_MAX, "status.code"),
            status_message=_opt_str(status.get("message")),
            # 0 is protobuf's "absent" (proto3 has no presence): stored as protobuf gives it.
            flags=_ranged(_int(flags, "flags"), 0, _UINT32_MAX, "flags") or None if flags is not None else None,
            resource=resource, scope_name=scope_name, scope_version=scope_version,
            attrs=_json_attrs(sp.get("attributes")),
            events=[_json_event(e) for e in sp.get("events") or ()],
            links=[_json_link(li) for li in sp.get("links") or ()],
            dropped=tuple(_ranged(_int(_field(sp, name, snake), name), 0, _UINT32_MAX, name) for name, snake in
                          (("droppedAttributesCount", "dropped_attributes_count"),
                           ("droppedEventsCount", "dropped_events_count"),
                           ("droppedLinksCount", "dropped_links_count"))),
        )

    # -- protobuf ------------------------------------------------------------------------
    def add_protobuf_request(self, payload: bytes, line_no: int | None = None,
                             *, require_spans: bool = False) -> None:
        """Append the spans of one serialized ExportTraceServiceRequest.

        Raises OTLPDecodeError when the bytes do not parse (or, with ``require_spans``,
        parse to a message without resourceSpans: a file that is not OTLP at all)."""
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        req = ExportTraceServiceRequest()
        try:
            req.ParseFromString(payload)
        except (DecodeError, ValueError) as exc:
            # Protobuf refuses a whole message for one string that is not UTF-8 (and an
            # exporter does not retry a 400: every span in it would be lost). When the
            # bytes are well-formed protobuf, decode each entry on its own instead.
            if not self._add_protobuf_entries(payload, line_no):
                raise OTLPDecodeError(f"not an OTLP protobuf ExportTraceServiceRequest: {exc}",
                                      hint="send application/x-protobuf bytes of an ExportTraceServiceRequest") from exc
            return
        if require_spans and payload and not req.resource_spans:
            raise OTLPDecodeError("not an OTLP protobuf ExportTraceServiceRequest: no resourceSpans found",
                                  hint="toolctl reads OTLP/JSON, OTLP protobuf and tool-call JSON lines")
        for i, rs in enumerate(req.resource_spans):
            self._add_pb_resource_spans(rs, f"resourceSpans[{i}]", line_no)

    def _add_pb_resource_spans(self, rs: Any, where: str, line_no: int | None) -> None:
        resource = _Resource(_pb_attrs(rs.resource.attributes))
        for j, ss in enumerate(rs.scope_spans):
            self._add_pb_spans(ss.spans, resource, ss.scope, f"{where}.scopeSpans[{j}]", line_no)

    def _add_pb_spans(self, spans: Any, resource: _Resource, scope: Any, where: str,
                      line_no: int | None) -> None:
        """Each span, or a refusal naming it; an entry of ``spans`` that is the bytes of a
        span protobuf could not decode (``_add_protobuf_entries``) is refused as such."""
        for k, sp in enumerate(spans):
            if isinstance(sp, bytes):
                self.reject(line_no, f"{where}.spans[{k}]: {_UNDECODABLE}", _bytes_text(sp))
                continue
            try:
                self._add_pb_span(sp, resource, scope.name, scope.version)
            except (_SpanError, ValueError, TypeError) as exc:
                self.reject(line_no, f"{where}.spans[{k}]: {exc}", _pb_text(sp))

    def _add_protobuf_entries(self, payload: bytes, line_no: int | None) -> bool:
        """Decode a request that protobuf refused whole, entry by entry: each resourceSpans,
        else its resource and each scopeSpans, else that scope and each span. An entry
        that cannot be decoded is refused with the spans in it. False when the bytes are
        not protobuf framing at all (nothing added)."""
        from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
        from opentelemetry.proto.resource.v1.resource_pb2 import Resource
        from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

        try:
            entries = _length_delimited(payload, 1)
        except ValueError:
            return False
        if not entries:
            return False
        for i, rs_bytes in enumerate(entries):
            where = f"resourceSpans[{i}]"
            decoded = _decode(ResourceSpans, rs_bytes)
            if decoded is not None:
                self._add_pb_resource_spans(decoded, where, line_no)
                continue
            scopes = _fields_or_none(rs_bytes, 2)
            res = _decode(Resource, b"".join(_fields_or_none(rs_bytes, 1) or ()))
            if scopes is None or res is None:
                self.reject(line_no, f"{where}: resource {_UNDECODABLE}", _bytes_text(rs_bytes),
                            spans=sum(len(_fields_or_none(s, 2) or ()) for s in scopes or ()) or 1)
                continue
            resource = _Resource(_pb_attrs(res.attributes))
            for j, ss_bytes in enumerate(scopes):
                swhere = f"{where}.scopeSpans[{j}]"
                ss = _decode(ScopeSpans, ss_bytes)
                if ss is not None:
                    self._add_pb_spans(ss.spans, resource, ss.scope, swhere, line_no)
                    continue
                spans = _fields_or_none(ss_bytes, 2)
                scope = _decode(InstrumentationScope, b"".join(_fields_or_none(ss_bytes, 1) or ()))
                if spans is None or scope is None:
                    self.reject(line_no, f"{swhere}: scope {_UNDECODABLE}", _bytes_text(ss_bytes),
                                spans=len(spans or ()) or 1)
                    continue
                decoded_spans = [_decode(Span, b) or b for b in spans]  # bytes: undecodable
                self._add_pb_spans(decoded_spans, resource, scope, swhere, line_no)
        return True

    def _add_pb_span(self, sp: Any, resource: _Resource, scope_name: str, scope_version: str) -> None:
        trace_id, span_id = sp.trace_id, sp.span_id
        if len(trace_id) != 16 or not any(trace_id):
            raise _SpanError("trace_id is not 16 bytes (or is all zero)")
        if len(span_id) != 8 or not any(span_id):
            raise _SpanError("span_id is not 8 bytes (or is all zero)")
        parent = sp.parent_span_id
        if parent and len(parent) != 8:
            raise _SpanError("parent_span_id is not 8 bytes")
        self._append(
            trace_id=trace_id.hex(), span_id=span_id.hex(),
            parent=parent.hex() if parent and any(parent) else None,
            trace_state=sp.trace_state, name=sp.name, kind=sp.kind,
            start=sp.start_time_unix_nano, end=sp.end_time_unix_nano,
            status_code=sp.status.code, status_message=sp.status.message,
            flags=sp.flags if sp.flags else None,
            resource=resource, scope_name=scope_name, scope_version=scope_version,
            attrs=_pb_attrs(sp.attributes),
            events=[{"time_unix_nano": e.time_unix_nano, "name": e.name,
                     "attributes": _typed_obj(_pb_attrs(e.attributes)),
                     "dropped_attributes_count": e.dropped_attributes_count} for e in sp.events],
            links=[_pb_link(li) for li in sp.links],
            dropped=(sp.dropped_attributes_count, sp.dropped_events_count, sp.dropped_links_count),
        )

    # -- to Arrow ------------------------------------------------------------------------
    def to_arrow(self):
        """The spans as an Arrow table with COLUMNS (types as in the ``spans`` table)."""
        import pyarrow as pa

        cols = list(zip(*self.rows)) if self.rows else [()] * len(COLUMNS)
        arrays = [pa.array(c, type=_arrow_type(name, pa)) for name, c in zip(COLUMNS, cols)]
        return pa.Table.from_arrays(arrays, names=list(COLUMNS))

    def rejects_arrow(self):
        import pyarrow as pa

        line_no, reason, raw = (list(c) for c in zip(*self.rejects)) if self.rejects else ([], [], [])
        return pa.table({
            "line_no": pa.array(line_no, pa.int64()),
            "reason": pa.array(reason, pa.string()),
            "raw": pa.array(raw, pa.string()),
            "raw_bytes": pa.array([len(r.encode("utf-8", "replace")) for r in raw], pa.int64()),
        })


_INT_COLS = {"kind": "int32", "status_code": "int32", "attempt": "int32", "http_status": "int32",
             "start_ns": "int64", "end_ns": "int64", "flags": "int64",
             "dropped_attributes_count": "int64", "dropped_events_count": "int64",
             "dropped_links_count": "int64"}


def _arrow_type(name: str, pa: Any) -> Any:
    if name in _INT_COLS:
        return getattr(pa, _INT_COLS[name])()
    if name == "start_time":
        return pa.timestamp("ns")
    if name in ("auth_signal", "retryable"):
        return pa.bool_()
    if name in ("latency_ms", "confidence"):
        return pa.float64()
    return pa.string()


def _count_spans(rs: Any) -> int:
    """Spans inside a refused resourceSpans entry, as far as they can be counted (≥ 1)."""
    try:
        scopes = rs.get("scopeSpans", rs.get("scope_spans")) or ()
        n = sum(len(ss.get("spans") or ()) for ss in scopes)
    except (AttributeError, TypeError):
        return 1
    return max(n, 1)


class _Resource:
    """A resource's attributes, decoded once per resourceSpans entry (not per span)."""

    __slots__ = ("attrs", "json", "service", "version")

    def __init__(self, attrs: dict[str, Any]):
        self.attrs = attrs
        self.json = typed_json(attrs)
        name, version = attrs.get("service.name"), attrs.get("service.version")
        self.service = name if isinstance(name, str) else None
        self.version = version if isinstance(version, str) else None


# -- OTLP/JSON values ----------------------------------------------------------------------
def _field(msg: dict, camel: str, snake: str) -> Any:
    """A message field by its JSON name (lowerCamelCase), else by its protobuf field name:
    the OTLP spec writes the first, the Collector's reader takes both (and so do the
    exporters that serialize with the field names)."""
    v = msg.get(camel)
    return msg.get(snake) if v is None else v


#: AnyValue keys under their protobuf field names → their JSON names (see _field).
_ANY_KEYS = {"string_value": "stringValue", "int_value": "intValue", "bool_value": "boolValue",
             "double_value": "doubleValue", "bytes_value": "bytesValue", "array_value": "arrayValue",
             "kvlist_value": "kvlistValue"}


def _hex_id(v: Any, pattern: re.Pattern, zero: str, what: str) -> str:
    if not isinstance(v, str) or not pattern.fullmatch(v):
        raise _SpanError(f"{what} {v!r} is not {len(zero)} hex digits")
    v = v.lower()
    if v == zero:
        raise _SpanError(f"{what} is all zero (invalid)")
    return v


def _parent_id(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if not isinstance(v, str) or not _SPAN_ID.fullmatch(v):
        raise _SpanError(f"parentSpanId {v!r} is not 16 hex digits")
    v = v.lower()
    return None if v == _ZERO_SPAN else v


def _int(v: Any, what: str) -> int:
    """An int64 field: a JSON number or a decimal string; absent = 0 (proto3 default)."""
    if v is None:
        return 0
    if type(v) is int:
        return v
    if type(v) is str:
        try:
            return int(v, 10)
        except ValueError:
            pass
    elif type(v) is float and v.is_integer():
        return int(v)
    raise _SpanError(f"{what} {v!r} is not an integer")


def _ranged(n: int, lo: int, hi: int, what: str) -> int:
    if not lo <= n <= hi:
        raise _SpanError(f"{what} {n} is out of range ({lo}..{hi})")
    return n


def _enum(v: Any, names: dict[str, int], what: str) -> int:
    """An enum: its number (2, 2.0 or "2", as protobuf's own JSON parser takes) or its name."""
    if v is None:
        return 0
    if type(v) is int:
        return v
    if isinstance(v, str) and v in names:
        return names[v]
    try:
        return _int(v, what)
    except _SpanError:
        raise _SpanError(f"{what} {v!r} is not a known enum value") from None


def _obj(v: Any, what: str) -> dict:
    """A JSON object field (absent or null: empty), else the span's reason to be refused."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _SpanError(f"{what} is not an object ({type(v).__name__})")
    return v


def _opt_str(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    raise _SpanError(f"expected a string, got {type(v).__name__}")


def _json_any(v: Any) -> Any:
    """An OTLP/JSON AnyValue → a plain Python value (empty AnyValue → None)."""
    if type(v) is dict and len(v) == 1:
        x = v.get("stringValue")
        if type(x) is str:  # the common case, without the general walk
            return x
    elif not isinstance(v, dict):
        if v is None:
            return None
        raise _SpanError(f"attribute value {v!r} is not an AnyValue object")
    for key, x in v.items():
        key = _ANY_KEYS.get(key, key)
        if key == "stringValue":
            if isinstance(x, str):
                return x
        elif key == "intValue":
            n = _int(x, "intValue")
            if not -(2**63) <= n <= _INT64_MAX:
                raise _SpanError(f"intValue {x!r} is out of the int64 range")
            return n
        elif key == "boolValue":
            if type(x) is bool:
                return x
        elif key == "doubleValue":
            if type(x) in (int, float):
                return float(x)
            if isinstance(x, str):
                return _FLOAT_WORDS[x] if x in _FLOAT_WORDS else float(x)
        elif key == "bytesValue":
            if isinstance(x, str):
                try:
                    return base64.b64decode(x.replace("-", "+").replace("_", "/")
                                            + "=" * (-len(x) % 4), validate=True)
                except binascii.Error as exc:
                    raise _SpanError(f"bytesValue is not base64: {exc}") from exc
        elif key == "arrayValue":
            values = _obj(x, "arrayValue").get("values") or []
            if not isinstance(values, list):
                raise _SpanError("arrayValue.values is not an array")
            return [_json_any(e) for e in values]
        elif key == "kvlistValue":
            return _json_attrs(_obj(x, "kvlistValue").get("values"))
        else:
            continue  # unknown field: ignored, as OTLP/JSON receivers must
        raise _SpanError(f"{key} has the wrong JSON type ({type(x).__name__})")
    return None


def _json_attrs(kvs: Any) -> dict[str, Any]:
    if not kvs:
        return {}
    if not isinstance(kvs, list):
        raise _SpanError("attributes is not an array")
    out = {}
    for kv in kvs:
        key = _obj(kv, "attribute").get("key")
        if not isinstance(key, str):
            raise _SpanError("attribute without a string key")
        out[key] = _json_any(kv.get("value"))
    return out


def _typed_obj(attrs: dict[str, Any]) -> Any:
    return typed_value(attrs)


def _json_event(e: Any) -> dict[str, Any]:
    if not isinstance(e, dict):
        raise _SpanError("event is not an object")
    return {"time_unix_nano": _int(_field(e, "timeUnixNano", "time_unix_nano"), "events.timeUnixNano"),
            "name": _opt_str(e.get("name")) or "",
            "attributes": _typed_obj(_json_attrs(e.get("attributes"))),
            "dropped_attributes_count": _int(_field(e, "droppedAttributesCount", "dropped_attributes_count"),
                                             "droppedAttributesCount")}


def _json_link(li: Any) -> dict[str, Any]:
    if not isinstance(li, dict):
        raise _SpanError("link is not an object")
    return {"trace_id": _hex_id(_field(li, "traceId", "trace_id"), _TRACE_ID, _ZERO_TRACE, "links.traceId"),
            "span_id": _hex_id(_field(li, "spanId", "span_id"), _SPAN_ID, _ZERO_SPAN, "links.spanId"),
            "trace_state": _opt_str(_field(li, "traceState", "trace_state")) or None,
            "flags": _int(li.get("flags"), "links.flags") or None if li.get("flags") is not None else None,
            "attributes": _typed_obj(_json_attrs(li.get("attributes"))),
            "dropped_attributes_count": _int(_field(li, "droppedAttributesCount", "dropped_attributes_count"),
                                             "droppedAttributesCount")}


# -- protobuf values -----------------------------------------------------------------------
def _pb_any(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "bool_value":
        return v.bool_value
    if which == "double_value":
        return v.double_value
    if which == "bytes_value":
        return bytes(v.bytes_value)
    if which == "array_value":
        return [_pb_any(e) for e in v.array_value.values]
    if which == "kvlist_value":
        return _pb_attrs(v.kvlist_value.values)
    return None  # empty AnyValue (or a string-table index this receiver has no table for)


def _pb_attrs(kvs: Any) -> dict[str, Any]:
    # The hot loop of protobuf decoding (~20 attributes a span). WhichOneof costs more
    # than reading a field, so a non-empty string_value (the common case; in a oneof it
    # means the value IS that string) is taken without it. Other scalars inline; nested
    # values and bytes through _pb_any.
    out = {}
    for kv in kvs:
        v = kv.value
        text = v.string_value
        if text:
            out[kv.key] = text
            continue
        which = v.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = ""
        elif which == "int_value":
            out[kv.key] = v.int_value
        elif which == "bool_value":
            out[kv.key] = v.bool_value
        elif which == "double_value":
            out[kv.key] = v.double_value
        else:
            out[kv.key] = _pb_any(v)
    return out


def _pb_link(li: Any) -> dict[str, Any]:
    if len(li.trace_id) != 16 or len(li.span_id) != 8:
        raise _SpanError("link ids are not 16/8 bytes")
    return {"trace_id": li.trace_id.hex(), "span_id": li.span_id.hex(),
            "trace_state": li.trace_state or None, "flags": li.flags or None,
            "attributes": _typed_obj(_pb_attrs(li.attributes)),
            "dropped_attributes_count": li.dropped_attributes_count}


_UNDECODABLE = "cannot be decoded: a string that is not valid UTF-8, or corrupt bytes"


def _decode(cls: Any, data: bytes) -> Any:
    """``cls.FromString(data)``, or None when protobuf refuses it."""
    from google.protobuf.message import DecodeError

    try:
        return cls.FromString(data)
    except (DecodeError, ValueError):
        return None


def _length_delimited(data: bytes, field_no: int) -> list[bytes]:
    """The values of length-delimited field ``field_no`` in a serialized message, in order;
    other fields skipped. Raises ValueError when ``data`` is not protobuf framing."""
    from collector.sources import read_varint

    out, i, n = [], 0, len(data)
    while i < n:
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            _, i = read_varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            size, i = read_varint(data, i)
            if number == field_no:
                out.append(data[i:i + size])
            i += size
        else:  # groups (3, 4) are not used by OTLP
            raise ValueError(f"wire type {wire}")
        if i > n:
            raise ValueError("truncated field")
    return out


def _fields_or_none(data: bytes, field_no: int) -> list[bytes] | None:
    try:
        return _length_delimited(data, field_no)
    except ValueError:
        return None


def _bytes_text(data: bytes) -> str:
    return data[:_REJECT_RAW_CHARS].decode("utf-8", "backslashreplace")


def _pb_text(sp: Any) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(sp, as_one_line=True)[:_REJECT_RAW_CHARS]


def _raw_text(raw: Any) -> str:
    """A refused document as text for the rejects table: valid Unicode whatever it holds
    (an unpaired surrogate is written as its escape)."""
    try:
        return unicode_json(raw, default=repr)[:_REJECT_RAW_CHARS]
    except (ValueError, RecursionError):
        try:
            return ascii(raw)[:_REJECT_RAW_CHARS]
        except RecursionError:
            return f"({type(raw).__name__} nested too deeply to show)"


# -- the entry point -----------------------------------------------------------------------
def decode_request(payload: bytes, encoding: Encoding) -> SpanBatch:
    """Decode one request body (already gunzipped). Raises OTLPDecodeError if it is not one."""
    batch = SpanBatch()
    if encoding == "json":
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OTLPDecodeError(f"OTLP/JSON payload is not valid JSON: {exc}",
                                  hint="send an ExportTraceServiceRequest as JSON") from exc
        except RecursionError:
            raise OTLPDecodeError("OTLP/JSON payload is nested too deeply to decode",
                                  hint="send an ExportTraceServiceRequest as JSON") from None
        batch.add_json_request(doc, raw=payload)
    elif encoding == "protobuf":
        batch.add_protobuf_request(payload)
    else:
        raise ValueError(f"unknown OTLP encoding {encoding!r}")
    return batch


def ingest_otlp_traces(store: Any, payload: bytes, *, encoding: Encoding, source: str,
                       kind: str = "http") -> TraceIngestResult:
    """Decode an ExportTraceServiceRequest and store its spans in one transaction.

    ``payload`` is the request body, already gunzipped; ``source`` names where it came
    from (kept on every span and reject row). Every span is stored (duplicates by
    (trace_id, span_id) are skipped); tool spans become tool calls in ``tool_calls``.
    Spans that cannot be stored are counted in ``rejected_spans``, kept in ``rejects``
    and summarised in ``error_message`` (OTLP partial_success).

    Raises OTLPDecodeError (nothing stored) when the payload cannot be decoded at all,
    StoreError when the store refuses the write.
    """
    batch = decode_request(payload, encoding)
    return write_batch(store, batch, source=source, kind=kind)


def write_batch(store: Any, batch: SpanBatch, *, source: str, kind: str) -> TraceIngestResult:
    """Store a decoded batch in one transaction; see ``ingest_otlp_traces``."""
    return SpanWrite(batch, source=source, kind=kind)(store)


class SpanWrite:
    """One decoded request, ready for the collector's writer queue (``WriteQueue``).

    Built in the decoding thread, so the Arrow conversion stays off the writer thread.
    Calling it stores the request as one batch. ``merge_key``/``run_many`` let the writer
    store every request of a group commit with the same source and kind as ONE batch:
    one insert, one digest, one ``batches`` row and one ledger entry per burst instead of
    per request, which is what bounds the rate at 512-span requests. Each request still
    gets its exact result: the insert names the spans it stored (``new_keys``) and each
    request counts its own; a span sent twice within the burst counts for the first.
    """

    __slots__ = ("keys", "rejected_spans", "first_reject", "source", "kind", "prepared", "merge_key",
                 "toolctl_quiet")

    def __init__(self, batch: SpanBatch | None, *, source: str, kind: str, preparer: Any = None):
        """``preparer``: runs a function with a connection to the store (the collector's
        pool of companion connections); the spans are then redacted and their ledger
        hashes begun here, in the decoding thread (``toolctl.store.spans.prepare_spans``).
        Without one, the writer does that when it stores them. ``batch`` None: the caller
        sets what a batch gives (``from_prepared``)."""
        self.source = source
        self.kind = kind
        self.merge_key = ("otlp_spans", source, kind)
        if batch is None:
            return
        #: (trace_id, span_id) of each decoded span, in order: what this request counts as its own
        self.keys = [(r[0], r[1]) for r in batch.rows]
        self.rejected_spans = batch.rejected_spans
        self.first_reject = batch.rejects[0][1] if batch.rejects else None
        spans = batch.to_arrow() if batch.rows else None
        rejects = batch.rejects_arrow() if batch.rejects else None
        if preparer is not None:
            from toolctl.store.spans import prepare_spans

            self.prepared = preparer(lambda store: prepare_spans(store, spans, rejects))
        else:
            self.prepared = (spans, rejects)

    @classmethod
    def from_prepared(cls, prepared: Any, *, keys: list, rejected_spans: int, first_reject: str | None,
                      source: str, kind: str) -> "SpanWrite":
        """A request prepared elsewhere (a decoding worker process: ``collector.decode_pool``)."""
        write = cls(None, source=source, kind=kind)
        write.keys = keys
        write.rejected_spans = rejected_spans
        write.first_reject = first_reject
        write.prepared = prepared
        return write

    def __call__(self, store: Any) -> TraceIngestResult:
        return self.run_many(store, [self])[0]

    @staticmethod
    def run_many(store: Any, writes: list["SpanWrite"]) -> list[TraceIngestResult]:
        """Store ``writes`` (same source and kind) as one batch; one result per write."""
        from collector.telemetry import tally_spans
        from toolctl.store.spans import PreparedSpans, merge_prepared, prepare_spans, write_span_batch

        first = writes[0]
        parts = [w.prepared if isinstance(w.prepared, PreparedSpans) else prepare_spans(store, *w.prepared)
                 for w in writes]
        merged = len(writes) > 1
        batch = merge_prepared(parts)
        written = write_span_batch(store, batch, source=first.source, kind=first.kind, return_keys=merged)
        tally = tally_spans(store, TraceIngestResult(spans=written.spans, duplicates=written.duplicates,
                                                     tool_calls=written.tool_calls,
                                                     rejected_spans=written.rejected),
                            batch_id=written.batch_id, redacted=batch.redacted)
        out = []
        for w in writes:
            message = None
            if w.first_reject is not None:  # a refused resource or scope entry counts each span in it
                message = f"{w.rejected_spans} span(s) rejected; first: {w.first_reject}"
            if merged:
                new, stored, tools = written.new_keys, 0, 0
                for key in w.keys:
                    is_tool = new.pop(key, None)
                    if is_tool is not None:
                        stored += 1
                        tools += is_tool
                counts = (stored, len(w.keys) - stored, tools)
            else:
                counts = (written.spans, written.duplicates, written.tool_calls)
            out.append(TraceIngestResult(spans=counts[0], duplicates=counts[1], tool_calls=counts[2],
                                         rejected_spans=w.rejected_spans, error_message=message,
                                         tally=None if out else tally))
        return out


def prepare_write(payload: bytes, encoding: Encoding, *, source: str, kind: str,
                  preparer: Any = None) -> SpanWrite:
    """Decode a request body into a ``SpanWrite`` (raises OTLPDecodeError like ``decode_request``);
    ``preparer`` as for ``SpanWrite``."""
    return SpanWrite(decode_request(payload, encoding), source=source, kind=kind, preparer=preparer)


# -- files ---------------------------------------------------------------------------------
#: Spans decoded before a batch is written (one transaction each) when reading a file of
#: one request per line; bounds memory on large Collector file-exporter outputs.
FILE_BATCH_SPANS = 50_000


@dataclass
class FileIngestResult:
    """What one OTLP file did: ``spans`` new, ``duplicates`` already stored, ``tool_calls``
    new tool spans, ``rejected`` spans or documents refused (each kept in ``rejects``)."""

    spans: int = 0
    duplicates: int = 0
    tool_calls: int = 0
    rejected: int = 0
    #: The collector's /metrics tally of each batch written (``toolctl serve`` counts them).
    tallies: list = field(default_factory=list)


def ingest_otlp_file(store: Any, stream: Any, *, fmt: str, source: str, kind: str,
                     stream_error: Any = None) -> FileIngestResult:
    """Ingest one OTLP file (``fmt`` 'otlp_json' or 'otlp_protobuf'; stream decompressed).

    OTLP/JSON: the whole file as one (pretty-printed) request, or else one request per
    line. A line that is not JSON, or JSON that is not an ExportTraceServiceRequest (a
    file may not mix formats), is refused with its line number; the other lines are
    stored. Protobuf: the whole file is one serialized request. A file that cannot be
    decoded at all (or breaks mid-way, e.g. a truncated gzip) is one reject, and what
    could be decoded before the break is stored. ``stream_error``: see ``read_all``.
    """
    data, broken = read_all(stream, stream_error)
    return ingest_otlp_data(store, data, fmt=fmt, source=source, kind=kind, broken=broken)


def one_request_per_line(data: bytes) -> bool:
    """How an OTLP/JSON file is read: one request per line (the Collector's file exporter)
    when one of its first lines alone is a request and the whole file is not one JSON
    document; otherwise the whole file is one (pretty-printed) request. The first test
    comes first: a pretty-printed request, whose first line is ``{``, is not parsed here."""
    if not _first_line_is_json(data):
        return False
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return True  # "Extra data" right after the first line
    return False


def ingest_otlp_data(store: Any, data: bytes, *, fmt: str, source: str, kind: str,
                     broken: str | None = None, first_line: int | None = None) -> FileIngestResult:
    """``ingest_otlp_file`` of a file's bytes. ``broken``: why reading it stopped early
    (one more reject). ``first_line``: ``data`` is the part of a one-request-per-line
    OTLP/JSON file that starts at that line (a forwarded ingest sends such a file in
    parts, see collector/forward.py); None reads ``data`` as a whole file."""
    out = FileIngestResult()

    def flush(batch: SpanBatch) -> None:
        if batch.rows or batch.rejects:
            r = write_batch(store, batch, source=source, kind=kind)
            out.spans += r.spans
            out.duplicates += r.duplicates
            out.tool_calls += r.tool_calls
            out.rejected += batch.rejected_spans  # a refused resource or scope: all its spans
            out.tallies.append(r.tally)

    batch = SpanBatch()
    if fmt == "otlp_protobuf":
        try:
            batch.add_protobuf_request(data, require_spans=True)
        except OTLPDecodeError as exc:
            batch.reject(None, exc.message, _hex_head(data))
    else:
        if first_line is None and not one_request_per_line(data):
            try:
                doc = json.loads(data)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                batch.reject(None, f"the file is not valid OTLP/JSON: {exc}", _text_of(data))
            else:
                _add_json_doc(batch, doc, None, data)
        else:
            for line_no, line in enumerate(data.split(b"\n"), start=first_line or 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                    batch.reject(line_no, f"line is not valid JSON: {exc}",
                                 _text_of(line))
                    continue
                _add_json_doc(batch, doc, line_no, line)
                if len(batch) >= FILE_BATCH_SPANS:
                    flush(batch)
                    batch = SpanBatch()
    if broken is not None:
        batch.reject(None, f"input ended abnormally after {len(data)} bytes: {broken}", "")
    flush(batch)
    return out


def _add_json_doc(batch: SpanBatch, doc: Any, line_no: int | None, raw: bytes) -> None:
    if not isinstance(doc, dict) or ("resourceSpans" not in doc and "resource_spans" not in doc):
        where = f"line {line_no}" if line_no else "the file"
        batch.reject(line_no, f"{where} is not an OTLP ExportTraceServiceRequest (no resourceSpans); "
                     "a file may not mix OTLP and tool-call JSON lines: put them in separate files",
                     _text_of(raw))
        return
    try:
        batch.add_json_request(doc, line_no, raw)
    except OTLPDecodeError as exc:
        batch.reject(line_no, exc.message, _text_of(raw))


def _first_line_is_json(data: bytes) -> bool:
    """One request per line (Collector file exporter) rather than one broken pretty-printed
    request? True when one of the first lines alone is a request, so a corrupt first line
    does not cost the lines after it."""
    for line in data.split(b"\n", 50)[:50]:
        if b"resourceSpans" in line or b"resource_spans" in line:
            try:
                doc = json.loads(line)
            except (ValueError, UnicodeDecodeError, RecursionError):
                continue
            if isinstance(doc, dict) and ("resourceSpans" in doc or "resource_spans" in doc):
                return True
    return False


def read_all(stream: Any, stream_error: Any = None) -> tuple[bytes, str | None]:
    """Every byte of ``stream``, and why it ended early (None: it did not).

    ``stream_error``: a function returning the exception a decompressor that ends its
    stream instead of raising stopped at (``OpenedSource.error``: a truncated or corrupt
    gzip), or None. Without it such a break would read as a clean end of the file."""
    import zlib

    chunks = []
    try:
        while True:
            chunk = stream.read(16 * 1024 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
    except (EOFError, OSError, zlib.error) as exc:
        return b"".join(chunks), str(exc) or type(exc).__name__
    exc = stream_error() if stream_error is not None else None
    return b"".join(chunks), (str(exc) or type(exc).__name__) if exc is not None else None


def _text_of(raw: bytes) -> str:
    return raw[:_REJECT_RAW_CHARS].decode("utf-8", "backslashreplace")


def _hex_head(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data[:256])
