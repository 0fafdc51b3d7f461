"""What counting an attempt once costs when a store holds JSON lines and tool spans.

    python benchmarks/overlap.py --events 3000000 --spans 1000000
    python benchmarks/overlap.py --events 20000 --spans 10000 --repeat 1   # smoke size

Migration 0007 makes the tool_calls view drop a tool span when a JSON-line event names its
(trace_id, span_id): an ANTI JOIN of the spans against the events on every query. This
builds one in-memory store with toolctl's own migrations: N events (benchmarks/queries.py's
seeded generator, inside DuckDB) and S tool spans made from the first S events, every other
one with that event's trace and span id (shadowed: half the spans), and times toolctl's
stats() library function by tool through the view as it is (0007) and through the union
without the ANTI JOIN (0002's view: the reference), alternating in one process; medians of
--repeat. Also an events-only store (no spans: what the 10M query benchmarks measure).
Prints a table and one JSON document.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queries import FILL_SQL  # noqa: E402  (benchmarks/ is not a package)

# S tool spans from the first S events: span i keeps the event's span id; even i also keeps
# its trace id (a JSON line names it: shadowed), odd i gets another trace (a span alone).
SPANS_SQL = """
INSERT INTO spans (trace_id, span_id, name, kind, start_ns, end_ns, start_time, status_code,
                   tool, status, latency_ms, call_id, attempt, tool_rule, auth_signal, batch_id)
SELECT CASE WHEN i % 2 = 0 THEN trace_id ELSE md5('other:' || i::VARCHAR) END, span_id,
       'execute_tool ' || tool, 1, epoch_ns(ts), epoch_ns(ts) + (latency_ms * 1e6)::BIGINT,
       ts::TIMESTAMP_NS, CASE WHEN status = 'error' THEN 2 ELSE 1 END,
       tool, status, latency_ms, call_id, attempt, 'gen_ai', false, 2
FROM (SELECT row_number() OVER (ORDER BY ts, event_id) AS i, * FROM events) e
WHERE i <= $s
"""


def view_sql(version: str) -> str:
    """The tool_calls view of migration 0002 (the union) or of the latest migration, as a
    TEMP VIEW named tool_calls_<version>."""
    from toolctl.store import migrations

    sqls = [sql for v, _, sql in migrations() if "CREATE OR REPLACE VIEW tool_calls AS" in sql]
    sql = sqls[0] if version == "union" else sqls[-1]
    body = sql[sql.index("CREATE OR REPLACE VIEW tool_calls AS"):].split(";")[0]
    return body.replace("VIEW tool_calls AS", f"TEMP VIEW tool_calls_{version} AS")


def build(n: int, s: int, seed: int):
    from toolctl.store import Store

    store = Store.open(Path("/nonexistent/overlap-bench.duckdb"), write=False)  # in memory, migrated
    store.conn.execute(FILL_SQL, {"n": n, "seed": seed, "span_us": 7 * 86_400 * 1_000_000})
    if s:
        store.conn.execute(SPANS_SQL, {"s": s})
    for version in ("union", "latest"):
        store.conn.execute(view_sql(version))
    return store


def timed_stats(store, version: str) -> tuple[float, int]:
    """stats() by tool reading the chosen view (the query text names tool_calls)."""
    from toolctl.metrics.stats import StatsQuery, stats

    store.conn.execute(f"CREATE OR REPLACE TEMP VIEW tool_calls AS SELECT * FROM tool_calls_{version}")
    t = time.perf_counter()
    rows = stats(store, StatsQuery(by=("tool",)))
    return time.perf_counter() - t, sum(r["attempts"] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.spans > args.events:
        ap.error("--spans must not exceed --events (spans are made from events)")
    results = []
    for n, s in ((args.events, args.spans), (args.events, 0)):
        store = build(n, s, args.seed)
        times = {"union": [], "latest": []}
        attempts = {}
        for _ in range(args.repeat):
            for version in times:
                dt, attempts[version] = timed_stats(store, version)
                times[version].append(dt)
        store.close()
        med = {v: statistics.median(ts) for v, ts in times.items()}
        results.append({"events": n, "tool_spans": s, "shadowed_spans": s // 2,
                        "attempts_union": attempts["union"], "attempts_latest": attempts["latest"],
                        "union_s": round(med["union"], 4), "latest_s": round(med["latest"], 4),
                        "ratio": round(med["latest"] / med["union"], 3)})
        assert attempts["union"] - attempts["latest"] == s // 2, attempts
    print(f"stats() by tool, median of {args.repeat}; `union`: 0002's view, `0007`: with the ANTI JOIN\n")
    print("| events | tool spans | shadowed | union s | 0007 s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['events']:,} | {r['tool_spans']:,} | {r['shadowed_spans']:,} | {r['union_s']:.3f} "
              f"| {r['latest_s']:.3f} | {r['ratio']:.2f} |")
    import duckdb

    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}",
                      "python": platform.python_version(), "duckdb": duckdb.__version__,
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
