"""Benchmark: CPU per span of `toolctl serve`'s two stages, without HTTP or exporters.

    python benchmarks/serve_stages.py --requests 200
    python benchmarks/serve_stages.py --requests 200 --before-tree /tmp/before --repeat 3

The end-to-end benchmark (serve.py) on a 2-core machine measures the whole box: server,
exporters and the GIL share two cores, and its figures move by ±10% between identical runs.
This one measures the server's two stages apart, each in a fresh subprocess per tree and
repeat, on the same SDK-encoded 512-span requests (serve.py's generator):

* **request stage** (the decoding threads, in parallel): ``collector.otlp.prepare_write``:
  decode, build the Arrow table and, where the tree has it, redact and begin the ledger
  hashes on a companion connection, as the server's preparer pool does;
* **writer stage** (one thread, the serial stage): ``SpanWrite.run_many`` over bursts of
  ``--burst`` requests, as the write queue merges them: insert, ledger entry, commit.

Both as process CPU µs per span (DuckDB's own threads included) and wall µs per span; the
writer's wall time bounds the server's throughput at ~1e6 / (writer wall µs) spans/s on an
otherwise idle core. Each run ends with ``audit verify`` on the store it wrote (must be
intact). Prints a table and one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Runs inside the subprocess, with the tree under test first on sys.path.
CHILD = r"""
import json, os, sys, tempfile, time
from pathlib import Path
tree, bench, n, burst = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path[:0] = [tree, bench]
from serve import build_batches
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from collector import otlp
from toolctl.audit.ledger import verify
from toolctl.store import Store

payloads = [encode_spans(b).SerializeToString() for b in build_batches(7, 512 * n, 512)]
with tempfile.TemporaryDirectory() as d:
    store = Store.open(Path(d) / "stages.duckdb", write=True)
    store.space_checkpoints()
    kw = {}
    if "preparer" in otlp.prepare_write.__code__.co_varnames:
        companion = store.companion()
        kw["preparer"] = lambda fn: fn(companion)
    c0, w0 = time.process_time(), time.perf_counter()
    writes = [otlp.prepare_write(p, "protobuf", source="otlp-http:/v1/traces", kind="http", **kw)
              for p in payloads]
    c1, w1 = time.process_time(), time.perf_counter()
    for i in range(0, len(writes), burst):
        with store.transaction():
            otlp.SpanWrite.run_many(store, writes[i:i + burst])
    c2, w2 = time.process_time(), time.perf_counter()
    spans = store.scalar("SELECT count(*) FROM spans")
    intact = verify(store).intact
    store.close()
print(json.dumps({"spans": spans, "intact": intact,
                  "request_cpu_us": 1e6 * (c1 - c0) / spans, "request_wall_us": 1e6 * (w1 - w0) / spans,
                  "writer_cpu_us": 1e6 * (c2 - c1) / spans, "writer_wall_us": 1e6 * (w2 - w1) / spans}))
"""


def run_tree(tree: Path, requests: int, burst: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(tree / "benchmarks"), str(requests),
                          str(burst)], capture_output=True, text=True, env=env, cwd=tree)
    if out.returncode != 0:
        raise SystemExit(f"serve_stages: the run on {tree} failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200, help="512-span requests")
    ap.add_argument("--burst", type=int, default=4, help="requests merged per writer burst")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before-tree", default=None, metavar="DIR",
                    help="a checkout to compare with (e.g. a git worktree of the previous landing)")
    args = ap.parse_args()
    trees = {"this tree": REPO}
    if args.before_tree:
        trees[f"before ({Path(args.before_tree).name})"] = Path(args.before_tree).resolve()
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.repeat):  # alternating, so drift on a shared machine hits both
        for name, tree in trees.items():
            runs[name].append(run_tree(tree, args.requests, args.burst))
    rows = []
    for name, rs in runs.items():
        if not all(r["intact"] for r in rs):
            print(f"serve_stages: audit verify failed on the store written by {name}", file=sys.stderr)
            return 1
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k.endswith("_us")}
        rows.append({"tree": name, "spans": rs[0]["spans"], **med,
                     "writer_bound_spans_per_s": 1e6 / med["writer_wall_us"]})
    print(f"{'tree':28} {'request cpu':>11} {'request wall':>12} {'writer cpu':>10} {'writer wall':>11}"
          f" {'writer-bound/s':>14}  (µs per span, medians of {args.repeat})", file=sys.stderr)
    for r in rows:
        print(f"{r['tree']:28} {r['request_cpu_us']:11.1f} {r['request_wall_us']:12.1f} {r['writer_cpu_us']:10.1f}"
              f" {r['writer_wall_us']:11.1f} {r['writer_bound_spans_per_s']:14,.0f}", file=sys.stderr)
    print(json.dumps({"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                  "python": platform.python_version()},
                      "requests": args.requests, "burst": args.burst, "repeat": args.repeat, "rows": rows},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
