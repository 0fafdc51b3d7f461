"""Engines benchmark: the same figures on a DuckDB file, on DuckDB over the lake, on Spark local.

    python benchmarks/engines.py                     # 10M events (the RESULTS.md case)
    python benchmarks/engines.py --events 200000     # smoke size
    python benchmarks/engines.py --no-spark

The events are generated inside DuckDB (no JSON parsing: this measures the queries), over 72
hours, 8 tools, 20 tenants, 3 versions, 20% retries sharing a call id, 5% errors, 1% auth
failures. The lake is the store's events written as hive-partitioned zstd Parquet (one file
per hour). Each engine runs `stats --by tool` and the 4-dimension hourly `stats --by tool
--by tenant --by version --every 1h`; wall time per query (best of --repeat), Spark's
session start-up reported separately. Prints a table and one JSON document.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GENERATE = """
INSERT INTO events (event_id, ts, tool, status, latency_ms, schema_version, call_id, tenant,
                    version, service, attempt, error_code, http_status, batch_id)
SELECT 'e' || i,
       TIMESTAMP '2026-11-01 00:00:00' + to_microseconds((i * (259200000000 // $n))::BIGINT),
       'tool_' || (i % 8),
       CASE WHEN hash(i) % 100 < 5 OR i % 5 = 3 THEN 'error' ELSE 'ok' END,
       round(exp(3.5 + (hash(i * 7) % 1000) / 400.0), 3),
       1,
       'c' || (i - (i % 5 = 4)::INT),
       'tenant_' || (hash(i * 3) % 20),
       'v' || (i % 3),
       'gateway',
       1 + (i % 5 = 4)::INT,
       CASE WHEN hash(i * 11) % 100 = 0 THEN 'PERMISSION_DENIED' END,
       CASE WHEN hash(i * 13) % 200 = 0 THEN 401 END,
       1
FROM range($n) t(i)
"""

QUERIES = {
    "stats --by tool": dict(by=["tool"]),
    "4-dim hourly": dict(by=["tool", "tenant", "version"], every=timedelta(hours=1)),
}


def build(work: Path, n: int) -> tuple[Path, Path]:
    from toolctl.store import Store

    db, lake = work / f"engines-{n}.duckdb", work / f"lake-{n}"
    if db.exists() and lake.exists():
        return db, lake
    for p in (db, lake):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    t = time.perf_counter()
    with Store.open(db, write=True) as store:
        store.execute(GENERATE, {"n": n})
        store.execute("CHECKPOINT")
        lake.mkdir()
        (lake / "_toolctl_lake.json").write_text(json.dumps({"format": "toolctl-lake", "version": 1}))
        store.execute(
            "COPY (SELECT *, strftime(ts, '%Y-%m-%d') AS dt, strftime(ts, '%H') AS hour FROM events ORDER BY ts) "
            "TO $dir (FORMAT parquet, PARTITION_BY (dt, hour), COMPRESSION zstd, FILENAME_PATTERN 'w0-{i}')",
            {"dir": str(lake / "events")})
    print(f"generated {n:,} events, store and lake, in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return db, lake


def time_queries(source, repeat: int) -> dict:
    from toolctl.metrics.stats import StatsQuery, stats

    out = {}
    for name, q in QUERIES.items():
        walls = []
        for _ in range(repeat):
            t = time.perf_counter()
            rows = stats(source, StatsQuery(**q))
            walls.append(time.perf_counter() - t)
        out[name] = {"best_s": min(walls), "rows": len(rows)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", default="/tmp/toolctl-bench")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--spark-master", default="local[*]")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    db, lake = build(work, args.events)

    from toolctl.engines import open_source, spark_session
    from toolctl.store import Store

    results = {}
    with Store.open(db, write=False) as store:
        results["duckdb file"] = time_queries(store, args.repeat)
    with open_source("duckdb", lake) as src:
        results["duckdb lake"] = time_queries(src, args.repeat)
    startup = None
    if not args.no_spark:
        t = time.perf_counter()
        spark_session(args.spark_master)
        startup = time.perf_counter() - t
        with open_source("spark", lake, args.spark_master) as src:
            results[f"spark {args.spark_master}"] = time_queries(src, args.repeat)
    lake_bytes = sum(f.stat().st_size for f in lake.rglob("*.parquet"))
    print(f"{args.events:,} events; store {db.stat().st_size / 2**20:,.0f} MiB, lake {lake_bytes / 2**20:,.0f} MiB "
          f"in {len(list(lake.rglob('*.parquet')))} files; best of {args.repeat}")
    print(f"{'engine':22s} " + " ".join(f"{q:>18s}" for q in QUERIES))
    for engine, r in results.items():
        print(f"{engine:22s} " + " ".join(f"{r[q]['best_s']:>17.2f}s" for q in QUERIES))
    if startup is not None:
        print(f"(Spark session start-up: {startup:.1f} s, not included)")
    print(json.dumps({"events": args.events, "repeat": args.repeat, "spark_startup_s": startup,
                      "results": results}))


if __name__ == "__main__":
    main()
