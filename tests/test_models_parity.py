"""The bulk validator (DuckDB SQL) and the schema model (pydantic) decide every line alike.

Files are validated in DuckDB for speed; single events (HTTP) and `toolctl schema` use
the pydantic model. Drift between the two would make the same line accepted by one path
and rejected by the other, so every edge case runs through both.
"""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from collector.pipeline import ingest_paths
from toolctl.models import ToolCallEvent
from toolctl.store import Store

BASE = {"event_id": "e1", "ts": "2026-11-24T06:00:00Z", "tool": "search", "status": "ok", "latency_ms": 12.5}


def variant(**changes):
    doc = dict(BASE)
    for key, value in changes.items():
        if value is ...:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc, ensure_ascii=False)


# (line, accepted?) — every rejection rule, and the near misses that must pass.
CASES = [
    (variant(), True),
    (variant(event_id=...), False),
    (variant(ts=...), False),
    (variant(tool=...), False),
    (variant(status=...), False),
    (variant(latency_ms=...), False),
    (variant(latency_ms=None), False),
    (variant(event_id=None), False),
    (variant(event_id=""), False),
    (variant(tool=""), False),
    (variant(event_id=5), False),
    (variant(tool=["x"]), False),
    (variant(latency_ms="12"), False),
    (variant(latency_ms=True), False),
    (variant(latency_ms=-0.001), False),
    (variant(latency_ms=0), True),
    (variant(latency_ms=10**20), True),
    (variant(status="OK"), False),
    (variant(status="failed"), False),
    (variant(status="error"), True),
    (variant(ts="yesterday"), False),
    (variant(ts="2026-11-24T06:00:00"), False),
    (variant(ts="2026-11-24"), False),
    (variant(ts=1732428000), False),
    (variant(ts="2026-11-24T06:00:00.123456789+05:30"), True),
    (variant(ts="2026-11-24t06:00:00z"), True),
    (variant(ts="2026-11-24 06:00:00-01:00"), True),
    (variant(ts="2026-13-24T06:00:00Z"), False),
    (variant(ts="2026-02-30T06:00:00Z"), False),
    (variant(ts="2026-11-24T23:59:60Z"), False),
    (variant(ts="2026-11-24T06:00:00+24:00"), False),
    (variant(ts="2026-11-24T06:00:00+05:60"), False),
    (variant(ts="2026-11-24T06:00:00-23:59"), True),
    # Found by fuzzing: DuckDB read 24:00:00 as the next midnight, Python refused it.
    (variant(ts="2024-12-31T24:00:00Z"), False),
    (variant(ts="2024-12-31T23:60:00Z"), False),
    # Times whose UTC falls outside the years 0001-9999 (stored, but printed as "BC" / year
    # 10000 and unusable as a window).
    (variant(ts="0001-01-01T00:00:00+01:00"), False),
    (variant(ts="9999-12-31T23:59:59-01:00"), False),
    (variant(ts="0001-01-01T00:00:00Z"), True),
    (variant(ts="9999-12-31T23:59:59.999999Z"), True),
    ('{"event_id":"e1","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1e400}', False),
    (variant(timeout_ms=1e400), False),
    (variant(confidence=1.7), False),
    (variant(confidence=-0.1), False),
    (variant(confidence=1), True),
    (variant(confidence=0), True),
    (variant(confidence="0.9"), False),
    (variant(confidence=None), True),
    (variant(attempt=0), False),
    (variant(attempt=2), True),
    (variant(attempt=2.0), False),
    (variant(attempt="2"), False),
    (variant(attempt=2**40), False),
    (variant(attempt=None), True),
    (variant(schema_version=1), True),
    (variant(schema_version=2), False),
    (variant(schema_version="1"), False),
    (variant(stage="execute"), True),
    (variant(stage="run"), False),
    (variant(retryable=True), True),
    (variant(retryable="true"), False),
    (variant(retryable=1), False),
    (variant(http_status=403), True),
    (variant(http_status="403"), False),
    (variant(http_status=403.0), False),
    (variant(http_status=2**40), False),
    (variant(timeout_ms=-1), False),
    (variant(timeout_ms=30000), True),
    (variant(args={"q": "x"}), True),
    (variant(args=["q"]), False),
    (variant(args="q=x"), False),
    (variant(data={"r": [1, 2]}), True),
    (variant(data=3), False),
    (variant(tenant=7), False),
    (variant(user=None, tenant=None, call_id=None), True),
    (variant(trace_id="ABCDEF0123456789ABCDEF0123456789"), True),
    (variant(trace_id=123), False),
    (variant(unknown_field={"nested": [1, "two"]}, another=None), True),
    (variant(tool="查询库存"), True),
    ('{"event_id":"e1","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1', False),
    ("[1, 2]", False),
    ('"just a string"', False),
    ("42", False),
    ("null", False),
    ("{}", False),
    ("not json at all", False),
]


def model_accepts(line: str) -> bool:
    try:
        ToolCallEvent.model_validate_json(line)
    except ValidationError:
        return False
    return True


def test_model_decisions_match_the_documented_rules():
    wrong = [(line, expected) for line, expected in CASES if model_accepts(line) != expected]
    assert not wrong, f"model disagrees with the contract on: {wrong}"


def test_bulk_validator_decides_every_line_like_the_model(tmp_path):
    lines = []
    for i, (line, _) in enumerate(CASES):
        # Give each case its own event_id so dedupe does not mask a decision.
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("event_id"), str) and doc["event_id"]:
            doc["event_id"] = f"case-{i}"
            line = json.dumps(doc, ensure_ascii=False)
        lines.append(line)
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        ingest_paths(store, [str(path)])
        rejected_lines = {r[0] for r in store.execute("SELECT line_no FROM rejects").fetchall()}
    disagreements = []
    for i, line in enumerate(lines, start=1):
        bulk = i not in rejected_lines
        if bulk != model_accepts(line):
            disagreements.append((line, {"bulk": bulk, "model": model_accepts(line)}))
    assert not disagreements, disagreements


def test_a_line_that_repeats_a_schema_field_is_refused_not_guessed(tmp_path):
    # Found by fuzzing: `"status":"ok","status":"error"` was stored as ok (the JSON functions
    # read the first value) while its unknown fields kept the last, and pydantic reads the
    # last. RFC 8259 leaves the value undefined; an audit store refuses the line. (The model
    # validates decoded objects, whose keys are unique; lines are validated in bulk.)
    lines = ['{"event_id": "d1", "ts": "2026-11-24T06:00:00Z", "tool": "t", "status": "ok", "status": "error", "latency_ms": 1}',
             '{"event_id": "d2", "ts": "2026-11-24T06:00:00Z", "tool": "t", "status": "ok", "latency_ms": 1, "x": 1, "x": 2}',
             '{"event_id": "d3", "ts": "2026-11-24T06:00:00Z", "tool": "t", "status": "ok", "latency_ms": 1, "args": {"a": 1, "a": 2}}']
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        ingest_paths(store, [str(path)])
        assert store.execute("SELECT line_no, reason FROM rejects ORDER BY line_no").fetchall() == [
            (1, 'key "status" appears twice: which value holds is undefined')]
        # an unknown key twice is kept as written (nothing depends on it); nested: not checked
        assert store.execute("SELECT event_id FROM events ORDER BY 1").fetchall() == [("d2",), ("d3",)]


def test_model_normalises_ids_and_time_to_utc():
    event = ToolCallEvent.model_validate_json(variant(ts="2026-11-24T08:00:00+02:00", trace_id="ABC"))
    assert event.ts.isoformat() == "2026-11-24T06:00:00+00:00"
    assert event.trace_id == "abc"


@pytest.mark.parametrize("field", ["event_id", "ts", "tool", "status", "latency_ms"])
def test_schema_lists_required_fields(field):
    from toolctl.models import event_json_schema

    assert field in event_json_schema()["required"]


def test_unknown_fields_are_kept_as_written_whatever_their_keys(tmp_path):
    # Keys a JSON path would trip on (quotes, slashes, tildes, dots, unicode, empty), values
    # of every JSON type, and a repeated unknown key (kept as written, both occurrences).
    odd = {"region": "eu-west-1", 'a"b': [1, {"c": None}], "x/y~z": 1.5, "dot.ted": True,
           "ünï": "ü😀", "": {}, "big": 123456789012345678901234}
    plain = json.dumps({**BASE, "event_id": "odd", **odd}, ensure_ascii=False)
    repeated = ('{"event_id":"rep","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok",'
                '"latency_ms":1,"region":"a","region":"b"}')
    none = json.dumps({**BASE, "event_id": "none"})
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join([plain, repeated, none]) + "\n", encoding="utf-8")
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        ingest_paths(store, [str(path)])
        extra = dict(store.execute("SELECT event_id, extra::VARCHAR FROM events").fetchall())
    assert list(json.loads(extra["odd"]).items()) == list(odd.items())  # same keys, same order
    assert extra["rep"] == '{"region":"a","region":"b"}'
    assert extra["none"] is None
