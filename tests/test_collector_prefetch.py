"""collector.pipeline.prefetch: the reader runs one batch ahead without changing what is stored."""

from __future__ import annotations

import threading

import pytest

from collector.pipeline import prefetch


def test_prefetch_yields_every_item_in_order():
    assert list(prefetch(iter(range(1000)), depth=2)) == list(range(1000))


def test_a_producer_error_is_raised_at_its_place_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise EOFError("truncated")

    got = []
    with pytest.raises(EOFError, match="truncated"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []
    finished = threading.Event()

    def items():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            finished.set()

    with pytest.raises(RuntimeError):
        for x in prefetch(items(), depth=1):
            if x == 3:
                raise RuntimeError("store refused the batch")
    assert finished.wait(5)  # the producer was not left reading the rest of the input
    assert len(produced) <= 3 + 1 + 2  # at most depth items beyond the one in hand (+ in flight)


def test_the_producer_runs_ahead_of_the_consumer():
    first_taken = threading.Event()
    second_made = threading.Event()

    def items():
        yield 1
        second_made.set()
        yield 2

    it = prefetch(items(), depth=1)
    assert next(it) == 1
    first_taken.set()
    assert second_made.wait(5)  # made while the consumer still holds item 1
    assert list(it) == [2]


def test_ingest_parses_on_a_second_connection_and_stores_the_same_rows(tmp_path):
    # The parse-ahead stage hands its rows over as Arrow: JSON must arrive as JSON (not
    # text re-parsed or re-quoted), the checkpoint setting must be back to normal after the
    # bulk load, and many batches must be stored in line order with exact accounting.
    import json

    from collector.pipeline import ingest_paths
    from toolctl.store import Store

    path = tmp_path / "calls.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i in range(3000):
            f.write(json.dumps({"event_id": f"e{i}", "ts": "2026-11-24T06:00:00Z", "tool": "t",
                                "status": "ok", "latency_ms": i, "args": {"q": "ü", "n": [i, 1.5]},
                                "region": "eu"}) + "\n")
        f.write("not json\n")
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        before = store.scalar("SELECT current_setting('checkpoint_threshold')")
        summary = ingest_paths(store, [str(path)], chunk_bytes=16 * 1024)  # ~30 batches
        after = store.scalar("SELECT current_setting('checkpoint_threshold')")
        # the parse connection's Arrow setting stays on that connection (a plain SET is global)
        assert store.scalar("SELECT current_setting('arrow_lossless_conversion')") is False
        rows = store.execute("SELECT event_id, typeof(args), args::VARCHAR, extra::VARCHAR, line_no"
                             " FROM events ORDER BY line_no").fetchall()
        batches = store.scalar("SELECT count(*) FROM batches")
    assert (summary.accepted, summary.rejected, summary.lines) == (3000, 1, 3001)
    assert before == after
    assert batches > 20
    assert [r[0] for r in rows] == [f"e{i}" for i in range(3000)]
    assert rows[7][1:] == ("JSON", '{"q":"ü","n":[7,1.5]}', '{"region":"eu"}', 8)
