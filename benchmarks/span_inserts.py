"""Benchmark: one request's span insert into a grown store, plain against skipping.

    python benchmarks/span_inserts.py --stored 2000000 --repeat 5
    python benchmarks/span_inserts.py --stored 20000 --repeat 1      # smoke size

``toolctl serve`` stores each burst of span requests with ``spans.write_span_batch``. A plain
INSERT lets the primary key's ART index check each new (trace_id, span_id); with ON CONFLICT
DO NOTHING, DuckDB plans a MERGE with a hash join against every stored key, so its cost
grows with the table. write_span_batch runs the plain form and falls back to the skipping
one only for a batch that repeats or hits a stored key; before that change every batch
used the skipping one. This script times both on the same store, alternating: a store
preloaded with --stored spans (benchmarks/serve.py's PRELOAD_SQL), then --repeat rounds of
one 512-span request (decoded and prepared as the collector does) through the real
write_span_batch per form, each in its own committed transaction. Prints a table and one
JSON document.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def request(trace: int, n: int) -> bytes:
    """``n`` tool spans of one trace; ids are md5 hex, spread over the key space as real ones."""
    trace_id = hashlib.md5(f"bench-trace-{trace}".encode()).hexdigest()
    spans = [{"traceId": trace_id, "spanId": hashlib.md5(f"{trace}-{i}".encode()).hexdigest()[:16],
              "name": "execute_tool search",
              "startTimeUnixNano": str(1_795_000_000_000_000_000 + trace * 10**9 + i),
              "endTimeUnixNano": str(1_795_000_000_000_000_000 + trace * 10**9 + i + 5_000_000),
              "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                             {"key": "gen_ai.tool.name", "value": {"stringValue": f"tool_{i % 7}"}},
                             {"key": "gen_ai.tool.call.id", "value": {"stringValue": f"call-{trace}-{i}"}}]}
             for i in range(n)]
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]},
        "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}).encode()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stored", type=int, default=2_000_000, help="spans in the store before the inserts")
    p.add_argument("--spans", type=int, default=512, help="spans per request (the SDK's batch)")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from serve import preload_store

    from collector.otlp import prepare_write
    from toolctl.audit.ledger import verify
    from toolctl.store import Store, spans

    plain_check = spans._keys_unique
    forms = {"plain (write_span_batch)": plain_check,
             "skipping (ON CONFLICT, every batch before)": lambda table: False}
    times: dict[str, list[float]] = {name: [] for name in forms}
    with tempfile.TemporaryDirectory(prefix="toolctl-bench-spans-") as tmp:
        db = Path(tmp) / "spans.duckdb"
        started = time.perf_counter()
        preload_store(db, args.stored)
        print(f"preloaded {args.stored:,} spans in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with Store.open(db, write=True) as store:
            trace = 1
            for _ in range(args.repeat + 1):  # the first round warms the indexes up, not timed
                for name, keys_unique in forms.items():
                    write = prepare_write(request(trace, args.spans), "json", source="bench", kind="http")
                    trace += 1
                    spans._keys_unique = keys_unique  # the form under test
                    try:
                        t0 = time.perf_counter()
                        result = write(store)
                        elapsed = time.perf_counter() - t0
                    finally:
                        spans._keys_unique = plain_check
                    assert result.spans == args.spans, result
                    times[name].append(elapsed)
            intact = verify(store).intact
    rows = {name: {"median_ms": statistics.median(t[1:]) * 1000, "runs_ms": [x * 1000 for x in t[1:]]}
            for name, t in times.items()}
    ref = rows["plain (write_span_batch)"]["median_ms"]
    print(f"\n{args.spans}-span request into a store of {args.stored:,} spans, median of {args.repeat}\n")
    print("| insert | median ms | ratio |\n|---|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_ms']:.1f} | {r['median_ms'] / ref:.2f} |")
    print(json.dumps({"stored": args.stored, "spans": args.spans, "repeat": args.repeat,
                      "ledger_intact": intact, "results": rows}))
    return 0 if intact else 1


if __name__ == "__main__":
    sys.exit(main())
