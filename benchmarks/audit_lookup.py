"""Audit lookups at scale: id lookups with and without the 0004 ART indexes, and their ingest cost.

Not a test. Builds N synthetic events (default 1,000,000) in two DuckDB files: one with
the toolctl schema (indexes on call_id, trace_id, idempotency_key) and a copy without
those indexes, then times point lookups through ``toolctl.audit.lookups.search_events``
and the insert of the same rows into each.

    python benchmarks/audit_lookup.py [N] [--dir /tmp/bench]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

FILL = """
INSERT INTO events
SELECT 'ev-' || i, TIMESTAMP '2026-11-24 00:00:00' + to_microseconds(i * 1000), 'tool' || (i % 20),
       CASE WHEN i % 50 = 0 THEN 'error' ELSE 'ok' END, (i % 1000)::DOUBLE, 1,
       md5('t' || (i // 4)), NULL, 'call-' || (i // 2), NULL, 'tenant' || (i % 7), 'u' || (i % 1000),
       'svc', 'v1', 'execute', 1 + i % 2, 'idem-' || (i // 2), 1000, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, 1, 'bench', i
FROM range($n) r(i)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    from toolctl.audit.lookups import EventFilter, search_events
    from toolctl.store import Store

    base = Path(args.dir or tempfile.mkdtemp(prefix="audit-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    results = {}
    for label in ("indexed", "no_index"):
        path = base / f"{label}.duckdb"
        path.unlink(missing_ok=True)
        with Store.open(path, write=True) as store:
            if label == "no_index":
                for idx in ("events_call_id_idx", "events_trace_id_idx", "events_idempotency_key_idx"):
                    store.execute(f"DROP INDEX {idx}")  # fixed names, not input
            t = time.perf_counter()
            store.execute(FILL, {"n": args.n}).fetchall()
            fill = time.perf_counter() - t
            probes = {"event_id": lambda i: EventFilter(event_id=f"ev-{i}"),
                      "call_id": lambda i: EventFilter(call_id=f"call-{i // 2}"),
                      "idempotency_key": lambda i: EventFilter(idempotency_key=f"idem-{i // 2}")}
            lookups = {}
            for name, make in probes.items():
                times = []
                for k in range(25):
                    i = (k * 7919 * 13) % args.n
                    t = time.perf_counter()
                    rows = search_events(store, make(i), limit=10)
                    times.append((time.perf_counter() - t) * 1000)
                    assert rows, name
                lookups[name] = statistics.median(times)
        results[label] = (fill, lookups)
        print(f"{label:9s} insert {args.n:,} rows: {fill:6.2f} s;  median lookup ms: "
              + ", ".join(f"{k} {v:.2f}" for k, v in lookups.items()))
    extra = results["indexed"][0] - results["no_index"][0]
    print(f"index cost at ingest: {extra:+.2f} s for {args.n:,} rows "
          f"({extra / args.n * 1e6:+.2f} µs/row)")


if __name__ == "__main__":
    main()
