"""Span requests of one writer burst are stored as one batch, each request counted exactly.

The serve throughput work (benchmarks/serve.py) merges every span request of a group
commit into one insert, one `batches` row and one ledger entry. These tests pin what must
not change: each request's own counts (new, duplicate, tool calls, rejected), dedupe
across requests of the same burst, the ledger still verifying, and a bad request in a
merged burst costing the others nothing.
"""

from __future__ import annotations

import json

import pytest

from collector.otlp import SpanWrite, prepare_write
from collector.writer_queue import WriteQueue
from toolctl.audit.ledger import verify
from toolctl.store import Store
from tests.conftest import submit_burst

SOURCE = "otlp-http:/v1/traces"


def _span(trace: int, span: int, *, tool: str | None = None, parent: int | None = None,
          attrs: dict | None = None) -> dict:
    a = [{"key": k, "value": {"stringValue": v}} for k, v in (attrs or {}).items()]
    if tool:
        a += [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
              {"key": "gen_ai.tool.name", "value": {"stringValue": tool}}]
    sp = {"traceId": f"{trace:032x}", "spanId": f"{span:016x}", "name": f"execute_tool {tool}" if tool else "x",
          "startTimeUnixNano": str(1_795_000_000_000_000_000 + span),
          "endTimeUnixNano": str(1_795_000_000_000_000_000 + span + 5_000_000), "attributes": a}
    if parent:
        sp["parentSpanId"] = f"{parent:016x}"
    return sp


def _request(*spans: dict) -> bytes:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}]}]}).encode()


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "g.duckdb", write=True)
    yield s
    s.close()




def _write(body: bytes) -> SpanWrite:
    return prepare_write(body, "json", source=SOURCE, kind="http")


def test_a_burst_of_span_requests_is_one_batch_with_exact_per_request_counts(store):
    # A: 3 new spans, 2 of them tool calls. B: 1 span of A again + 2 new (1 tool) + a span
    # repeated inside B. C: only an already-stored span and one refused span (bad id).
    a = _request(_span(1, 1), _span(1, 2, tool="search", parent=1), _span(1, 3, tool="read", parent=1))
    b = _request(_span(1, 2, tool="search", parent=1), _span(2, 4, tool="write"), _span(2, 5),
                 _span(2, 5))
    c = _request(_span(1, 3, tool="read", parent=1), {**_span(3, 6), "spanId": "xyz"})
    queue = WriteQueue(store)
    queue.start()
    results = [f.result(10) for f in submit_burst(queue, [_write(a), _write(b), _write(c)])]
    queue.close(10)

    assert [(r.spans, r.duplicates, r.tool_calls, r.rejected_spans) for r in results] == [
        (3, 0, 2, 0), (2, 2, 1, 0), (0, 1, 0, 1)]
    assert "spans[1]" in results[2].error_message and results[0].error_message is None
    assert queue.merged_jobs == 3
    assert store.scalar("SELECT count(*) FROM spans") == 5
    assert store.scalar("SELECT count(*) FROM tool_calls") == 3
    # One batch for the burst: every span and the refused one under the same batch_id.
    batches = store.fetch_dicts("SELECT batch_id, lines, accepted, duplicates, rejected FROM batches")
    assert len(batches) == 1
    assert batches[0]["lines"] == 3 + 4 + 2 and batches[0]["accepted"] == 5
    assert batches[0]["duplicates"] == 3 and batches[0]["rejected"] == 1
    assert store.scalar("SELECT count(DISTINCT batch_id) FROM spans") == 1
    assert store.scalar("SELECT count(*) FROM rejects WHERE batch_id = ?", [batches[0]["batch_id"]]) == 1
    assert verify(store).intact


def _spy_skip_stored(monkeypatch) -> list[bool]:
    from toolctl.store import spans

    seen, real = [], spans._write_span_batch

    def spy(*args, skip_stored, **kw):
        seen.append(skip_stored)
        return real(*args, skip_stored=skip_stored, **kw)

    monkeypatch.setattr(spans, "_write_span_batch", spy)
    return seen


def test_new_spans_go_in_without_a_join_against_every_stored_span(store, monkeypatch):
    # ON CONFLICT makes DuckDB hash-join the batch against every stored key (a cost that
    # grows with the table): only a batch that repeats a key, or hits a stored one, pays it.
    seen = _spy_skip_stored(monkeypatch)
    assert _write(_request(_span(20, 1, tool="a"), _span(20, 2)))(store).spans == 2
    assert seen == [False]
    repeated = _write(_request(_span(21, 3), _span(21, 3)))(store)  # the same span twice
    assert (repeated.spans, repeated.duplicates) == (1, 1) and seen == [False, True]
    again = _write(_request(_span(20, 1, tool="a"), _span(22, 4, tool="b")))(store)  # one stored
    assert (again.spans, again.duplicates, again.tool_calls) == (1, 1, 1)
    assert seen == [False, True, False, True]  # tried plainly, then redone skipping
    assert store.scalar("SELECT count(*) FROM spans") == 4
    assert store.scalar("SELECT count(*) FROM batches") == 3  # the failed try left nothing
    assert verify(store).intact


def test_a_burst_that_hits_a_stored_span_is_replayed_per_request_and_counted_exactly(store, monkeypatch):
    _write(_request(_span(30, 1, tool="a")))(store)
    seen = _spy_skip_stored(monkeypatch)
    a = _write(_request(_span(31, 2, tool="b"), _span(31, 3)))
    b = _write(_request(_span(30, 1, tool="a"), _span(32, 4)))  # 30/1 was stored before
    c = _write(_request(_span(33, 5, tool="c")))
    queue = WriteQueue(store)
    queue.start()
    results = [f.result(10) for f in submit_burst(queue, [a, b, c])]
    queue.close(10)
    assert [(r.spans, r.duplicates, r.tool_calls) for r in results] == [(2, 0, 1), (1, 1, 0), (1, 0, 1)]
    # The merged insert failed and rolled back; each request then went in on its own.
    assert seen[0] is False and seen[1:] == [False, False, True, False]
    assert store.scalar("SELECT count(*) FROM spans") == 5
    assert store.scalar("SELECT count(*) FROM batches") == 4
    assert store.scalar("SELECT count(DISTINCT batch_id) FROM spans") == 4
    assert verify(store).intact


def test_a_bad_request_in_a_merged_burst_is_refused_alone(store):
    good1 = _write(_request(_span(5, 1, tool="a"), _span(5, 2)))
    good2 = _write(_request(_span(6, 3, tool="b")))
    bad = _write(_request(_span(7, 4)))
    spans, rejects = bad.prepared
    bad.prepared = (spans.drop_columns(["start_ns"]), rejects)  # the insert cannot bind this table
    queue = WriteQueue(store)
    queue.start()
    futures = submit_burst(queue, [good1, bad, good2])
    assert (futures[0].result(10).spans, futures[2].result(10).spans) == (2, 1)
    with pytest.raises(Exception):
        futures[1].result(10)
    queue.close(10)
    assert store.scalar("SELECT count(*) FROM spans") == 3
    assert store.scalar("SELECT count(*) FROM spans WHERE trace_id = ?", [f"{7:032x}"]) == 0
    # Replayed one request per transaction: one batch each for the two good ones.
    assert store.scalar("SELECT count(*) FROM batches") == 2
    assert verify(store).intact


def test_requests_from_different_sources_are_not_merged(store):
    w1 = _write(_request(_span(8, 1)))
    w2 = prepare_write(_request(_span(8, 2)), "json", source="other-source", kind="http")
    queue = WriteQueue(store)
    queue.start()
    assert [f.result(10).spans for f in submit_burst(queue, [w1, w2])] == [1, 1]
    queue.close(10)
    rows = store.fetch_dicts("SELECT source, count(*) AS n FROM batches GROUP BY source ORDER BY source")
    assert rows == [{"source": "other-source", "n": 1}, {"source": SOURCE, "n": 1}]


def _exotic_span(trace: int, span: int, **attrs) -> dict:
    sp = _span(trace, span, tool="検索🔎")
    typed = {"toolctl.confidence": {"doubleValue": 0.1 + 0.2}, "toolctl.attempt": {"intValue": "2147483647"},
             "toolctl.retryable": {"boolValue": True},
             "big": {"intValue": str(2**63 - 1)}, "neg": {"doubleValue": -1e-300},
             "gen_ai.tool.call.arguments": {"stringValue": '{ "q" :  "naïve\\u00e9" ,\n "n": 1.50 }'},
             "gen_ai.tool.call.result": {"stringValue": "not json \u0000 at all"},
             **attrs}
    sp["attributes"] += [{"key": k, "value": v} for k, v in typed.items()]
    sp["status"] = {"code": 2, "message": "Bearer tok_live_abcdefghijklmnop refused"}
    return sp


def test_spans_hashed_in_the_decoding_threads_give_the_digest_audit_verify_recomputes(store, monkeypatch):
    # The collector redacts and begins each span row's ledger hash on a companion connection
    # (SpanWrite's preparer) and the writer only finishes it with the batch id and source.
    # The digest must be byte for byte what `audit verify` computes from the stored rows,
    # for values whose JSON is easy to get subtly wrong, and the writer must really use them.
    import toolctl.audit.ledger as ledger

    companion = store.companion()
    used = []
    record = ledger.record_batch

    def spy(*args, span_hashes=None, **kwargs):
        used.append(span_hashes is not None)
        return record(*args, span_hashes=span_hashes, **kwargs)

    monkeypatch.setattr(ledger, "record_batch", spy)

    def write(body: bytes, source: str = SOURCE) -> SpanWrite:
        return prepare_write(body, "json", source=source, kind="http", preparer=lambda fn: fn(companion))

    secret = {"api_key": {"stringValue": "sk-proj-Zq9xLm2Vb8Nw4Tr6Yp1Hd3Kf"}}
    a = write(_request(_exotic_span(10, 1, **secret), _exotic_span(10, 2), _span(10, 3)))
    b = write(_request(_exotic_span(11, 4), {**_span(11, 5), "spanId": "nothex"}), source="sourcé ✓")
    c = write(_request(_span(12, 6), _span(12, 6)))  # a span twice in one request
    d = write(_request(_span(10, 3), _span(13, 7)))  # one span already stored by `a`
    e = write(_request(_span(14, 8)))
    f = write(_request(_span(14, 8), _span(14, 9)))  # a span also in `e`, same burst
    queue = WriteQueue(store)
    queue.start()
    for burst in ([a], [b], [c], [d], [e, f]):
        [fut.result(10) for fut in submit_burst(queue, burst)]
    queue.close(10)
    companion.close()

    assert store.scalar("SELECT count(*) FROM spans") == 8
    stored = store.scalar("SELECT attributes FROM spans WHERE span_id = ?", [f"{1:016x}"])
    assert "sk-proj-Zq9xLm2Vb8Nw4Tr6Yp1Hd3Kf" not in stored and "api_key" in stored
    assert store.scalar("SELECT confidence FROM spans WHERE span_id = ?", [f"{1:016x}"]) == 0.1 + 0.2
    # a, b, d hashed ahead; c (repeat inside a request) and e+f (repeat across the burst)
    # fall back to hashing the stored rows; verification covers both.
    assert used == [True, True, False, True, False]
    report = verify(store)
    assert report.intact, report
    assert store.scalar("SELECT count(*) FROM ledger WHERE kind = 'span_batch'") == 5


def test_a_tampered_span_stored_with_a_prepared_hash_is_caught_by_verify(store):
    companion = store.companion()
    write = prepare_write(_request(_exotic_span(20, 1), _span(20, 2)), "json", source=SOURCE, kind="http",
                          preparer=lambda fn: fn(companion))
    queue = WriteQueue(store)
    queue.start()
    submit_burst(queue, [write])[0].result(10)
    queue.close(10)
    companion.close()
    assert verify(store).intact
    store.execute("UPDATE spans SET latency_ms = latency_ms + 1 WHERE span_id = ?", [f"{1:016x}"])
    assert not verify(store).intact
