"""kill -9 at any moment, then the same ingest again: every valid event stored exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from tests.conftest import run_toolctl


def _big_file(path, n):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if i % 997 == 0:
                f.write('{"event_id": "broken-%d", "ts": ' % i + "\n")  # a reject every ~1000 lines
                continue
            f.write(json.dumps({
                "event_id": f"ev-{i}", "ts": "2026-11-24T06:%02d:%02dZ" % (i // 60 % 60, i % 60),
                "tool": f"tool-{i % 7}", "status": "error" if i % 13 == 0 else "ok",
                "latency_ms": i % 500, "call_id": f"c-{i // 2}", "attempt": 1 + i % 2,
                "args": {"q": "x" * 40},
            }) + "\n")
            if i % 5000 == 0:
                f.write(json.dumps({"event_id": f"ev-{i}", "ts": "2026-11-24T06:00:00Z",
                                    "tool": "dup", "status": "ok", "latency_ms": 1}) + "\n")
    valid = {f"ev-{i}" for i in range(n) if i % 997 != 0}
    rejects = len([i for i in range(n) if i % 997 == 0])
    return valid, rejects


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_stores_each_event_once(tmp_path):
    src = tmp_path / "big.jsonl"
    valid, n_rejects = _big_file(src, 120_000)
    db = tmp_path / "s.duckdb"
    cmd = [sys.executable, "-m", "toolctl", "--db", str(db), "ingest", str(src), "--batch-bytes", "262144"]
    killed = 0
    for delay in (0.8, 1.6, 2.4):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
    assert killed, "ingest finished before it could be killed: make the input larger"

    final = run_toolctl("--db", db, "ingest", src, "--format", "json")
    assert final.returncode == 3, final.stderr  # the file has rejects
    summary = json.loads(final.stdout)
    assert summary["accepted"] + summary["duplicates"] + summary["rejected"] == summary["lines"]

    conn = duckdb.connect(str(db), read_only=True)
    ids = [r[0] for r in conn.execute("SELECT event_id FROM events").fetchall()]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(ids) == valid, "stored events differ from the valid lines"
    assert conn.execute("SELECT count(*) FROM rejects").fetchone()[0] == n_rejects
    # the duplicate line of an already stored id never replaced the first occurrence
    assert conn.execute("SELECT count(*) FROM events WHERE tool = 'dup'").fetchone()[0] == 0
    conn.close()

    again = run_toolctl("--db", db, "ingest", src, "--format", "json")
    assert json.loads(again.stdout)["accepted"] == 0
