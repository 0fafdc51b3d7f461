"""Benchmark: small write batches into a store that already holds N events, by checkpoint policy.

    python benchmarks/writes_at_scale.py --events 10000000   # the queries benchmark's store
    python benchmarks/writes_at_scale.py --events 20000      # smoke size

What a collector (``toolctl serve``) or repeated small ingests do to a grown store: batches of
--batch JSON lines through the real writer (``write_line_batch``: parse, validate, redact,
insert into the indexed events table, ledger digest, commit), --lines in total, on a fresh
copy of the store built by benchmarks/queries.py (cached in its --workdir). Run once with
DuckDB's default checkpoint threshold (16 MB of WAL) and once with toolctl's spaced one
(``Store.space_checkpoints``), alternating, each in a fresh process. Reports events/s and the
slowest batch (a checkpoint stalls the batch that triggers it), as a table and as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CHILD = r"""
import json, sys, time
import pyarrow as pa
from toolctl.store import Store
from toolctl.store.writer import write_line_batch
db, data, batch, spaced = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
lines = open(data, "rb").read().decode().splitlines()
store = Store.open(db, write=True)
if spaced:
    store.space_checkpoints()
stored, worst, started = 0, 0.0, time.perf_counter()
for i in range(0, len(lines), batch):
    part = lines[i:i + batch]
    table = pa.table({"line_no": pa.array(range(i + 1, i + 1 + len(part)), pa.int64()),
                      "line": pa.array(part), "pre_reason": pa.nulls(len(part), pa.string()),
                      "raw_bytes": pa.nulls(len(part), pa.int64())})
    t = time.perf_counter()
    stored += write_line_batch(store, table, source="bench", kind="http").accepted
    worst = max(worst, time.perf_counter() - t)
elapsed = time.perf_counter() - started
store.close()
print(json.dumps({"stored": stored, "seconds": elapsed, "worst_batch_s": worst}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000, help="events already in the store")
    ap.add_argument("--lines", type=int, default=200_000, help="events written by the benchmark")
    ap.add_argument("--batch", type=int, default=4096, help="lines per write (one transaction)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default=os.environ.get("TMPDIR", "/tmp") + "/toolctl-bench-queries")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    from queries import build_store
    from run import generate

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    grown = work / f"events-{args.events}-s{args.seed}.duckdb"
    build_store(grown, args.events, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="toolctl-bench-writes-"))
    data = tmp / "new.jsonl"
    generate(data, args.lines, seed=11)
    # The generated ids would collide with nothing in the grown store (different id space),
    # but make that explicit: every line must be stored, or the comparison is void.
    data.write_text(data.read_text(encoding="utf-8").replace('"evt-', '"new-'), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs: dict[str, list[dict]] = {"default (16 MB)": [], "spaced (toolctl)": []}
    try:
        for _ in range(args.repeat):
            for name, flag in (("default (16 MB)", "0"), ("spaced (toolctl)", "1")):
                db = tmp / "store.duckdb"
                shutil.copyfile(grown, db)
                proc = subprocess.run([sys.executable, "-c", CHILD, str(db), str(data), str(args.batch), flag],
                                      capture_output=True, text=True, env=env, cwd=str(REPO))
                if proc.returncode != 0:
                    raise SystemExit(proc.stderr[-2000:])
                doc = json.loads(proc.stdout.strip().splitlines()[-1])
                if doc["stored"] != args.lines:
                    raise SystemExit(f"stored {doc['stored']} of {args.lines} lines")
                runs[name].append(doc)
                for suffix in ("", ".wal"):
                    Path(str(db) + suffix).unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = {name: {"events_per_s": statistics.median(args.lines / d["seconds"] for d in docs),
                      "worst_batch_s": max(d["worst_batch_s"] for d in docs), "runs": docs}
               for name, docs in runs.items()}
    print(f"{args.lines:,} events in batches of {args.batch} into a store of {args.events:,} events, "
          f"median of {args.repeat}\n")
    print("| checkpoint policy | events/s | slowest batch s |\n|---|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['events_per_s']:,.0f} | {r['worst_batch_s']:.2f} |")
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "events": args.events, "lines": args.lines,
                      "batch": args.batch, "results": results}))


if __name__ == "__main__":
    main()
