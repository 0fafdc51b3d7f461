"""The gate fetches the arms' latencies on a second connection while it counts, same answer."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np

from collector.pipeline import ingest_paths
from toolctl.gate import data
from toolctl.gate.checks import reads_latencies
from toolctl.gate.runbook import load_runbook
from toolctl.store import Store

WINDOW = {"since": datetime(2026, 11, 24), "until": datetime(2026, 11, 25)}


def _store(tmp_path):
    path = tmp_path / "calls.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i in range(400):
            f.write(json.dumps({"event_id": f"e{i}", "call_id": f"c{i}", "ts": "2026-11-24T06:00:00Z",
                                "tool": "search", "status": "ok", "latency_ms": (i * 37) % 101,
                                "version": "v2" if i % 3 else "v1"}) + "\n")
    store = Store.open(tmp_path / "s.duckdb", write=True)
    ingest_paths(store, [str(path)])
    return store


def _latencies(ctx):
    return ctx.cand.latencies, ctx.base.latencies


def test_latencies_fetched_ahead_equal_the_ones_fetched_on_use(tmp_path):
    with _store(tmp_path) as store:
        ahead = data.build_context(store, **WINDOW, baseline="v1", candidate="v2", tools=None,
                                   latencies_needed=True)
        lazy = data.build_context(store, **WINDOW, baseline="v1", candidate="v2", tools=None)
        for a, b in zip(_latencies(ahead), _latencies(lazy)):
            assert len(a) > 100 and np.array_equal(a, b) and np.all(np.diff(a) >= 0)
        assert ahead.cand.counts == lazy.cand.counts


def test_inside_a_transaction_latencies_are_read_on_the_same_connection(tmp_path):
    # In the collector the gate runs inside a write burst: a second connection would not see
    # the burst's uncommitted rows, so the latencies must come from the counting connection.
    with _store(tmp_path) as store:
        with store.transaction():
            store.execute("DELETE FROM events WHERE version = 'v2' AND latency_ms > 50")
            ctx = data.build_context(store, **WINDOW, baseline="v1", candidate="v2", tools=None,
                                     latencies_needed=True)
            cand = ctx.cand.latencies
            assert len(cand) == ctx.cand.counts["attempts"] and cand.max() <= 50


def test_only_runbooks_with_latency_checks_fetch_ahead():
    assert reads_latencies(load_runbook("latency-slo").checks)
    assert not reads_latencies(load_runbook("auth-mismatch").checks)
