"""Span → tool-call mapping: which rule matched, the fields it fills, auth signals, encoding."""

from __future__ import annotations

import base64
import json
import math

import pytest

from collector.mapping import is_auth_signal, map_span, tool_rule, typed_json

START = 1_764_039_600_000_000_000


def mapped(attrs, *, resource=None, name="span", status_code=0, duration_ns=1_000_000):
    return map_span(attrs, resource or {}, name=name, status_code=status_code,
                    start_ns=START, end_ns=START + duration_ns)


@pytest.mark.parametrize("attrs, rule", [
    ({"gen_ai.operation.name": "execute_tool"}, "gen_ai"),
    ({"gen_ai.tool.name": "x"}, "gen_ai.tool.name"),
    ({"openinference.span.kind": "TOOL"}, "openinference"),
    ({"openinference.span.kind": "tool"}, "openinference"),
    ({"traceloop.span.kind": "tool"}, "traceloop"),
    ({"mcp.method.name": "tools/call", "gen_ai.tool.name": "read_file"}, "mcp"),
])
def test_each_convention_marks_a_tool_span_and_names_its_rule(attrs, rule):
    assert tool_rule(attrs) == rule


@pytest.mark.parametrize("attrs", [
    {},
    {"gen_ai.operation.name": "chat"},
    {"gen_ai.operation.name": "invoke_agent"},
    {"openinference.span.kind": "LLM"},
    {"traceloop.span.kind": "task"},
    {"mcp.method.name": "tools/list"},
    {"http.request.method": "GET", "http.response.status_code": 200},
])
def test_non_tool_spans_are_never_tool_calls(attrs):
    m = mapped(attrs)
    assert m.tool_rule is None and m.tool is None and m.status is None


def test_tool_name_falls_back_to_the_span_name():
    assert mapped({"gen_ai.operation.name": "execute_tool"}, name="execute_tool get_weather").tool == "get_weather"
    assert mapped({"mcp.method.name": "tools/call"}, name="tools/call read_file").tool == "read_file"
    assert mapped({"traceloop.span.kind": "tool"}, name="web_search.tool").tool == "web_search"
    assert mapped({"openinference.span.kind": "TOOL", "tool.name": "sql"}, name="whatever").tool == "sql"


def test_genai_fields_are_mapped_from_their_attributes():
    attrs = {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_1", "gen_ai.tool.call.arguments": '{"city": "Paris"}',
        "gen_ai.tool.call.result": "sunny", "gen_ai.conversation.id": "conv-1", "enduser.id": "bob",
        "toolctl.attempt": 3, "toolctl.idempotency_key": "k1", "toolctl.retryable": False,
        "toolctl.confidence": 0.5, "http.response.status_code": 502,
    }
    m = mapped(attrs, resource={"tenant.id": "acme"}, duration_ns=250_500_000)
    assert (m.tool, m.call_id, m.session_id, m.user_id, m.tenant) == ("get_weather", "call_1", "conv-1", "bob", "acme")
    assert (m.attempt, m.idempotency_key, m.retryable, m.confidence) == (3, "k1", False, 0.5)
    assert m.latency_ms == 250.5 and m.http_status == 502 and m.status == "ok"
    assert json.loads(m.args) == {"city": "Paris"} and json.loads(m.result) == "sunny"


def test_span_attribute_wins_over_resource_attribute_for_tenant_and_user():
    m = mapped({"gen_ai.tool.name": "t", "tenant.id": "span-t", "user.id": "span-u"},
               resource={"tenant.id": "res-t", "user.id": "res-u"})
    assert (m.tenant, m.user_id) == ("span-t", "span-u")


def test_status_is_error_for_status_code_2_or_an_error_type():
    assert mapped({"gen_ai.tool.name": "t"}, status_code=2).status == "error"
    m = mapped({"gen_ai.tool.name": "t", "error.type": "tool_error"}, status_code=1)
    assert (m.status, m.error_code) == ("error", "tool_error")
    assert mapped({"gen_ai.tool.name": "t"}, status_code=1).status == "ok"


def test_mcp_call_id_is_the_jsonrpc_request_id_and_attempt_defaults_to_1():
    m = mapped({"mcp.method.name": "tools/call", "gen_ai.tool.name": "f", "jsonrpc.request.id": 7})
    assert (m.call_id, m.attempt) == ("7", 1)
    assert mapped({"gen_ai.tool.name": "f", "toolctl.attempt": 0}).attempt == 1


@pytest.mark.parametrize("attrs, expected", [
    ({"http.response.status_code": 401}, True),
    ({"http.response.status_code": "403"}, True),
    ({"http.status_code": 401}, True),
    ({"rpc.response.status_code": "UNAUTHENTICATED"}, True),
    ({"error.type": "PERMISSION_DENIED"}, True),
    ({"error.type": "401"}, True),
    ({"rpc.grpc.status_code": 16}, True),
    ({"http.response.status_code": 404}, False),
    ({"http.response.status_code": True}, False),
    ({"error.type": "timeout"}, False),
    ({}, False),
    # the same value in another attribute type counts the same (found by fuzzing: only
    # http.* took 401.0 or "401"; the others wanted the exact type)
    ({"http.response.status_code": 401.0}, True),
    ({"rpc.grpc.status_code": 7.0}, True),
    ({"rpc.grpc.status_code": "16"}, True),
    ({"rpc.grpc.status_code": True}, False),
    ({"rpc.grpc.status_code": 7.5}, False),
    ({"rpc.response.status_code": 403.0}, True),
    ({"rpc.response.status_code": "403"}, True),
    ({"error.type": 401}, True),
    ({"error.type": " unauthenticated "}, False),
    ({"error.type": 404}, False),
])
def test_auth_signals(attrs, expected):
    assert is_auth_signal(attrs) is expected


def test_typed_json_keeps_every_otlp_type_distinguishable():
    value = {"s": "x", "b": True, "i": 2**63 - 1, "d": 3.0, "nan": float("nan"),
             "inf": float("-inf"), "raw": b"\x00\xff", "arr": [1, 1.0, None],
             "kv": {"$bytes": "looks like a marker"}}
    text = typed_json(value)
    back = json.loads(text)
    assert back["i"] == 2**63 - 1 and type(back["i"]) is int
    assert back["d"] == 3.0 and type(back["d"]) is float
    assert back["nan"] == {"$double": "NaN"} and back["inf"] == {"$double": "-Infinity"}
    assert base64.b64decode(back["raw"]["$bytes"]) == b"\x00\xff"
    assert [type(x) for x in back["arr"]] == [int, float, type(None)]
    assert back["kv"] == {"$kvlist": {"$bytes": "looks like a marker"}}
    assert not math.isnan(back["d"])


def test_typed_json_of_a_flat_map_is_the_standard_encoders_text():
    # Flat maps of finite scalars (almost every span's attributes) take orjson; the text
    # must be what the standard encoder writes (doubles below 1e-4 may be spelled without
    # an exponent: the same value). Anything orjson would write differently or refuse
    # (a non-finite double, a lone surrogate, an int beyond 64 bits) takes the standard one.
    import random

    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    rng = random.Random(5)
    chars = [chr(c) for c in [*range(0x80), 0xa0, 0xe9, 0x2028, 0x2029, 0xfeff, 0x4e2d, 0x1f600]]
    values = [0, -1, 2**63 - 1, -(2**63), True, False, None, 0.98, 1.0, -0.0, 1e16, 1e300,
              123456789012345.6, 2.5e-5, 2**64, 10**30, "x\ud800y"]
    for _ in range(20_000):
        d = {"".join(rng.choices(chars, k=rng.randint(0, 5))):
             rng.choice(values) if rng.random() < 0.5 else "".join(rng.choices(chars, k=rng.randint(0, 9)))
             for _ in range(rng.randint(0, 6))}
        got = typed_json(d)
        if 2.5e-5 in d.values():
            assert json.loads(got) == json.loads(enc(d))
        else:
            assert got == enc(d), d
    assert typed_json({"a": float("nan"), "b": 1}) == '{"a":{"$double":"NaN"},"b":1}'
    assert typed_json({"a": float("inf")}) == '{"a":{"$double":"Infinity"}}'
    assert typed_json({"big": 2**64}) == '{"big":18446744073709551616}'
