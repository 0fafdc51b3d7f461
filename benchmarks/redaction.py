"""How redaction's cost grows with a value's length (found by fuzzing: it grew quadratically).

    python benchmarks/redaction.py                 # 16k → 128k characters
    python benchmarks/redaction.py --max-chars 32000

Times ``Redactor.value`` and ``Redactor.loose_text`` (what ingest, serve and
``toolctl.instrument`` run on arguments, results and messages) on strings of n characters
that hold no secret (a word, base64, hex), doubling n. A linear cost doubles per row (ratio
~2); the quadratic one this replaced took 1.4 s at 32k and 25 s at 128k characters (~4 per
row). Prints a table and one JSON document; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toolctl.audit.redact import Redactor, load_rules  # noqa: E402


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-chars", type=int, default=16_000)
    ap.add_argument("--max-chars", type=int, default=128_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    red = Redactor(load_rules(None), b"benchmark-salt")
    rows = []
    n = args.min_chars
    while n <= args.max_chars:
        samples = {"word": "x" * n, "base64": base64.b64encode(os.urandom(n * 3 // 4)).decode()[:n],
                   "hex": os.urandom(n // 2).hex()}
        for kind, text in samples.items():
            rows.append({"chars": n, "kind": kind,
                         "value_s": best_of(lambda: red.value({"a": text}), args.repeat),
                         "loose_text_s": best_of(lambda: red.loose_text(text), args.repeat)})
        n *= 2
    prev: dict[str, dict] = {}
    print(f"{'chars':>8} {'kind':8} {'value s':>9} {'ratio':>6} {'loose s':>9} {'ratio':>6}")
    for r in rows:
        p = prev.get(r["kind"])
        r["value_ratio"] = r["value_s"] / p["value_s"] if p and p["value_s"] else None
        r["loose_ratio"] = r["loose_text_s"] / p["loose_text_s"] if p and p["loose_text_s"] else None
        prev[r["kind"]] = r
        fmt = lambda x: "" if x is None else f"{x:.2f}"  # noqa: E731
        print(f"{r['chars']:>8,} {r['kind']:8} {r['value_s']:9.4f} {fmt(r['value_ratio']):>6} "
              f"{r['loose_text_s']:9.4f} {fmt(r['loose_ratio']):>6}")
    ratios = [x for r in rows for x in (r["value_ratio"], r["loose_ratio"]) if x]
    print(json.dumps({"rows": rows, "median_doubling_ratio": statistics.median(ratios) if ratios else None}))


if __name__ == "__main__":
    main()
