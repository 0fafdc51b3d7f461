"""The benchmark suite runs end to end at a smoke size and reports what RESULTS.md quotes.

Not a performance test: no timing is asserted. It keeps the scripts from rotting (a
renamed function, a changed CLI) and checks the accounting they report: every ingested
event stored, every acknowledged span stored, ratios computed against the reference.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
pytestmark = pytest.mark.slow


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_run_py_smoke_reports_ingest_queries_and_serve(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--events", "2000", "--repeat", "1",
                           "--cases", "ingest,queries,serve", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parts = _last_json(proc.stdout)["parts"]
    assert not [p for p in parts.values() if "error" in p], parts
    ingest = parts["ingest"]["results"]
    assert ingest["duckdb read_json CTAS (reference)"]["ratio_to_reference"] == 1.0
    assert ingest["toolctl ingest"]["ratio_to_reference"] > 0
    assert {t["case"] for t in parts["queries"]["targets"]} >= {"stats --by tool", "gate", "--help"}
    serve = {r["target"]: r for r in parts["serve"]["results"]}
    ours, ref = serve["toolctl serve"], serve["reference: null receiver"]
    assert ours["acked"] == ours["stored"] == ours["sent"] == 2000 and ours["failed"] == 0
    assert ref["acked"] == ref["sent"] == 2000 and ref["stored"] is None  # stores nothing


def test_serve_benchmark_on_a_preloaded_store_counts_only_the_load():
    proc = subprocess.run([sys.executable, str(BENCH / "serve.py"), "--spans", "1000", "--procs", "1",
                           "--preload", "5000", "--no-reference"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    doc = json.loads(out[out.index("\n{") + 1:])  # the table, then one (indented) JSON document
    assert doc["preload"] == 5000 and [r["target"] for r in doc["results"]] == ["toolctl serve"]
    ours = doc["results"][0]
    assert ours["acked"] == ours["stored"] == ours["sent"] == 1000 and ours["failed"] == 0


def test_writes_at_scale_smoke_stores_every_line_under_both_checkpoint_policies(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "writes_at_scale.py"), "--events", "3000",
                           "--lines", "3000", "--batch", "1000", "--repeat", "1", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = _last_json(proc.stdout)["results"]
    assert set(results) == {"default (16 MB)", "spaced (toolctl)"}
    assert all(run["stored"] == 3000 for r in results.values() for run in r["runs"])


def test_serve_stages_smoke_reports_both_stages_on_a_store_that_verifies():
    proc = subprocess.run([sys.executable, str(BENCH / "serve_stages.py"), "--requests", "3", "--repeat", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [row] = json.loads(proc.stdout)["rows"]
    assert row["spans"] == 3 * 512  # every span of the 3 requests stored
    assert row["request_cpu_us"] > 0 and row["writer_wall_us"] > 0
    assert row["writer_bound_spans_per_s"] == 1e6 / row["writer_wall_us"]


def test_span_inserts_smoke_times_both_forms_on_a_store_that_verifies():
    proc = subprocess.run([sys.executable, str(BENCH / "span_inserts.py"), "--stored", "5000",
                           "--spans", "64", "--repeat", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = _last_json(proc.stdout)
    assert doc["ledger_intact"] and len(doc["results"]) == 2
    assert all(r["median_ms"] > 0 for r in doc["results"].values())


def test_overlap_benchmark_smoke_counts_each_shadowed_span_once():
    proc = subprocess.run([sys.executable, str(BENCH / "overlap.py"), "--events", "4000", "--spans", "1001",
                           "--repeat", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    doc = json.loads(out[out.index("\n{") + 1:])
    mixed, events_only = doc["results"]
    assert mixed["attempts_union"] == 5001 and mixed["attempts_latest"] == 5001 - 500
    assert events_only["tool_spans"] == 0 and events_only["attempts_union"] == events_only["attempts_latest"] == 4000
