"""Hand-computed checks of tests/reference.py itself (no toolctl code involved).

If these fail, the reference is wrong -- fix the reference, not the CLI."""

from __future__ import annotations

import gzip
import json
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import reference as R  # noqa: E402


def ev(event_id, ts, status="ok", latency=10, tool="t", **kw):
    d = {"event_id": event_id, "ts": ts, "tool": tool, "status": status, "latency_ms": latency}
    d.update(kw)
    return json.dumps(d, ensure_ascii=False)


def write(tmp_path, name, lines, nl="\n"):
    p = tmp_path / name
    data = nl.join(lines) + nl
    if name.endswith(".gz"):
        with gzip.open(p, "wb") as fh:
            fh.write(data.encode("utf-8"))
    else:
        p.write_bytes(data.encode("utf-8"))
    return p


# ---------------------------------------------------------------- timestamps
@pytest.mark.parametrize("text,iso", [
    ("2026-11-24T06:00:00Z", "2026-11-24T06:00:00Z"),
    ("2026-11-24T06:00:00.123+02:00", "2026-11-24T04:00:00.123Z"),
    ("2026-11-25T01:30:00+05:30", "2026-11-24T20:00:00Z"),
    ("2026-11-24T19:00:00-05:00", "2026-11-25T00:00:00Z"),
    ("2026-12-31T23:59:59.999999-00:30", "2027-01-01T00:29:59.999999Z"),
    ("2024-02-29T12:00:00+14:00", "2024-02-28T22:00:00Z"),
    ("2026-11-24t06:00:00z", "2026-11-24T06:00:00Z"),
    ("2026-11-24T06:00:00-00:00", "2026-11-24T06:00:00Z"),
    ("2026-11-24T06:00:00.1234567Z", "2026-11-24T06:00:00.123456Z"),
])
def test_parse_ts(text, iso):
    assert R.us_to_iso(R.parse_ts_us(text)) == iso


@pytest.mark.parametrize("text", [
    "2026-11-24T06:00:00", "2026-11-24", "2026-02-30T00:00:00Z", "2026-11-24T25:00:00Z",
    "yesterday", "2026-11-24T06:00Z", "2026-11-24T06:00:00+0200", "",
    "2026-11-24T06:00:00+24:00", "2026-11-24T06:00:00+05:60", "2026-11-24T06:00:00.Z",
    "2026-11-24T23:59:60Z", "２０２６-11-24T06:00:00Z",
])
def test_parse_ts_rejects(text):
    assert R.parse_ts_us(text) is None


def test_render_roundtrip():
    us = R.parse_ts_us("2026-11-24T23:59:59.5Z")
    for off in (0, 330, -210, 840, -720):
        for z in (True, False):
            assert R.parse_ts_us(R.render_ts(us, off, zulu=z)) == us
    assert R.render_ts(us, 0) == "2026-11-24T23:59:59.500Z"
    assert R.render_ts(us, 0, zulu=False) == "2026-11-24T23:59:59.500+00:00"
    assert R.render_ts(us, 330) == "2026-11-25T05:29:59.500+05:30"


# ---------------------------------------------------------------- line rules
@pytest.mark.parametrize("line,cat", [
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1,"message":"\xff"}', "invalid_utf8"),
    (b'{"event_id":"a"', "invalid_json"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":NaN}', "invalid_json"),
    (b"[1]", "not_object"),
    (b"null", "not_object"),
    (b'{"ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1}', "missing:event_id"),
    (b'{"event_id":"a","ts":null,"tool":"t","status":"ok","latency_ms":1}', "missing:ts"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":"1"}', "wrong_type:latency_ms"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":true}', "wrong_type:latency_ms"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1,"attempt":true}', "wrong_type:attempt"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1,"http_status":"401"}', "wrong_type:http_status"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00","tool":"t","status":"ok","latency_ms":1}', "bad_value:ts"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":-1}', "bad_value:latency_ms"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"OK","latency_ms":1}', "bad_value:status"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1,"confidence":1.01}', "bad_value:confidence"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1,"attempt":0}', "bad_value:attempt"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1,"stage":"run"}', "bad_value:stage"),
    (b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok","latency_ms":1,"schema_version":2}', "bad_value:schema_version"),
])
def test_validate_rejects(line, cat):
    with pytest.raises(R._Reject) as ei:
        R.validate_line(line)
    assert ei.value.category == cat


def test_validate_accepts_nulls_and_unknown():
    e = R.validate_line(b'{"event_id":"a","ts":"2026-11-24T06:00:00Z","tool":"t","status":"error",'
                        b'"latency_ms":0,"tenant":null,"attempt":null,"confidence":1,"zzz":[1]}')
    assert e["tenant"] is None and e["attempt"] == 1 and e["latency_ms"] == 0


def test_line_length_boundary(tmp_path):
    g = R._Gen(1)
    ok = R._sized_line(g, R.MAX_LINE_BYTES)
    bad = R._sized_line(g, R.MAX_LINE_BYTES + 1)
    p = tmp_path / "x.jsonl"
    p.write_bytes(ok + b"\n" + bad + b"\n")
    events, rejects = R.parse_file(p)
    assert len(events) == 1 and rejects == [(2, "line_too_long")]


def test_parse_file_line_numbers_crlf_blank_gzip(tmp_path):
    lines = [
        ev("a", "2026-11-24T06:00:00Z"),
        "",
        "   ",
        "{bad",
        ev("b", "2026-11-24T06:00:00+01:00"),
    ]
    for name, nl in (("x.jsonl", "\r\n"), ("y.jsonl.gz", "\n")):
        p = write(tmp_path, name, lines, nl)
        events, rejects = R.parse_file(p)
        assert [e["event_id"] for e in events] == ["a", "b"]
        assert [e["_line_no"] for e in events] == [1, 5]
        assert rejects == [(4, "invalid_json")]
        assert R.count_nonblank_lines(p) == 3


def test_no_trailing_newline_truncated(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_bytes(ev("a", "2026-11-24T06:00:00Z").encode() + b"\n" + b'{"event_id": "b", "ts')
    events, rejects = R.parse_file(p)
    assert len(events) == 1 and rejects == [(2, "invalid_json")]


def test_store_dedupe_first_wins_and_reingest(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    write(d, "b.jsonl", [ev("x", "2026-11-24T06:00:00Z", latency=2), "oops"])
    write(d, "a.jsonl", [ev("x", "2026-11-24T06:00:00Z", latency=1),
                         ev("x", "2026-11-24T06:00:00Z", latency=3),
                         ev("y", "2026-11-24T06:00:00Z", status="nope")])
    st = R.RefStore()
    s1 = st.ingest([d])
    assert s1 == {"files": 2, "lines": 5, "accepted": 1, "duplicates": 2, "rejected": 2}
    assert [e["latency_ms"] for e in st.events] == [1]  # a.jsonl sorts first
    s2 = st.ingest([d])
    assert s2 == {"files": 2, "lines": 5, "accepted": 0, "duplicates": 3, "rejected": 2}
    assert len(st.rejects) == 2


# ---------------------------------------------------------------- figures
def _events(lines):
    return [R.validate_line(line.encode()) for line in lines]


def test_figures_hand_computed():
    evs = _events([
        # call c1: attempt 1 error, attempt 2 ok  -> final ok
        ev("e1", "2026-11-24T06:00:00Z", "error", 100, call_id="c1", attempt=1, http_status=401),
        ev("e2", "2026-11-24T06:00:01Z", "ok", 200, call_id="c1", attempt=2),
        # call c2: two attempt-2 events, the later ts wins (error)
        ev("e3", "2026-11-24T06:00:00Z", "ok", 300, call_id="c2", attempt=2),
        ev("e4", "2026-11-24T06:00:05Z", "error", 400, call_id="c2", attempt=2,
           error_code="PERMISSION_DENIED"),
        # call c3: same attempt & ts: greatest event_id wins ("e6" > "e5") -> ok
        ev("e5", "2026-11-24T06:00:00Z", "error", 500, call_id="c3"),
        ev("e6", "2026-11-24T06:00:00Z", "ok", 600, call_id="c3"),
        # no call_id: own call, error; lowercase code is not an auth failure
        ev("e7", "2026-11-24T06:00:00Z", "error", 700, error_code="unauthenticated",
           http_status=500),
        # attempt default 1 loses against explicit attempt 2 even when later
        ev("e8", "2026-11-24T06:09:00Z", "ok", 800, call_id="c4"),
        ev("e9", "2026-11-24T06:01:00Z", "error", 900, call_id="c4", attempt=2,
           error_code="UNAUTHENTICATED", http_status=403),
    ])
    (row,) = R.stats(evs)
    assert row["attempts"] == 9
    assert row["calls"] == 5
    assert row["retries"] == 4
    assert row["errors"] == 3  # c2, e7, c4
    assert row["error_rate"] == pytest.approx(3 / 5)
    assert row["auth_failures"] == 3  # e1 (401), e4 (PERMISSION_DENIED), e9
    # latencies 100..900 step 100: p50 = 500; p95: pos 7.6 -> 860; p99: pos 7.92 -> 892
    assert row["p50_ms"] == pytest.approx(500)
    assert row["p95_ms"] == pytest.approx(860)
    assert row["p99_ms"] == pytest.approx(892)

    # 5m buckets split call c4: 06:00 bucket has e9 (final, error); 06:05 has e8 (ok)
    rows = {r["bucket"]: r for r in R.stats(evs, every="5m")}
    assert set(rows) == {"2026-11-24T06:00:00Z", "2026-11-24T06:05:00Z"}
    b5 = rows["2026-11-24T06:05:00Z"]
    assert (b5["attempts"], b5["calls"], b5["errors"]) == (1, 1, 0)
    b0 = rows["2026-11-24T06:00:00Z"]
    assert (b0["attempts"], b0["calls"], b0["errors"]) == (8, 5, 3)

    # grouping by status: the 'ok' group of c2 only has e3 -> final ok
    rows = {r["status"]: r for r in R.stats(evs, by=["status"])}
    assert rows["ok"]["errors"] == 0 and rows["error"]["errors"] == rows["error"]["calls"]
    assert rows["ok"]["calls"] == 4  # c1, c2, c3, c4
    assert rows["error"]["calls"] == 5  # c1, c2, c3, e7, c4


def test_null_group_key_and_window_and_filters():
    evs = _events([
        ev("a", "2026-11-24T06:00:00Z", tenant="x"),
        ev("b", "2026-11-24T06:59:59.999999Z", tenant=None),
        ev("c", "2026-11-24T07:00:00Z"),
        ev("d", "2026-11-24T08:00:00+01:00", tool="u"),  # == 07:00Z
    ])
    rows = R.stats(evs, by=["tenant"])
    assert [(r["tenant"], r["attempts"]) for r in rows] == [("x", 1), (None, 3)]
    rows = R.stats(evs, since="2026-11-24T06:00:00Z", until="2026-11-24T07:00:00Z")
    assert rows[0]["attempts"] == 2
    rows = R.stats(evs, since="2026-11-24T08:00:00+01:00")
    assert rows[0]["attempts"] == 2
    rows = R.stats(evs, by=["tool"], every="1h", filters={"tool": "u"})
    assert rows == [dict(bucket="2026-11-24T07:00:00Z", tool="u", **R.figures([evs[3]]))]
    assert R.stats(evs, filters={"tool": "nope"}) == []
    assert R.stats(evs, every="1d")[0]["bucket"] == "2026-11-24T00:00:00Z"


def test_corpus_is_deterministic(tmp_path):
    a = R.make_messy_corpus(tmp_path / "a", seed=7, n_calls=50)
    b = R.make_messy_corpus(tmp_path / "b", seed=7, n_calls=50)
    for x, y in zip(a, b):
        assert R.read_bytes(x) == R.read_bytes(y)
    st = R.RefStore()
    s = st.ingest([tmp_path / "a"])
    assert s["accepted"] + s["duplicates"] + s["rejected"] == s["lines"]
    assert s["rejected"] > 50 and s["duplicates"] > 0
    assert not math.isnan(R.stats(st.events)[0]["p99_ms"])


def test_tricky_calls_in_corpus(tmp_path):
    R.make_messy_corpus(tmp_path, seed=3, n_calls=20)
    st = R.RefStore()
    st.ingest([tmp_path])
    by_id = {e["event_id"]: e for e in st.events}
    tool = R.TOOLS[0]
    trk = [e for e in st.events if e["event_id"].startswith("trk-0-")]
    assert len(trk) == 10
    assert by_id["trk-0-a1"]["attempt"] == 1 and by_id["trk-0-b1"]["attempt"] == 1
    for call_ev, expect in (("trk-0-a1", 1), ("trk-0-b1", 0), ("trk-0-c9", 1), ("trk-0-e1", 0)):
        cid = by_id[call_ev]["call_id"]
        (row,) = R.stats([e for e in trk if e["call_id"] == cid])
        assert (row["calls"], row["errors"]) == (1, expect), call_ev
    cid = by_id["trk-0-d1"]["call_id"]
    rows = R.stats([e for e in trk if e["call_id"] == cid], by=["tool"])
    assert {r["tool"]: r["errors"] for r in rows} == {R.TOOLS[1]: 1, tool: 0}
