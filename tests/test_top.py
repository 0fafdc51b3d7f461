"""`toolctl top` in a real pseudo-terminal (starts, refreshes, quits on q or Ctrl-C and
restores the terminal) and against a store held by a running `toolctl serve`."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import REPO, run_toolctl
from tests.test_collector_server import NDJSON, ndjson, serve  # noqa: F401 (fixture)
from tests.test_views_metrics import known_live, view_db, view_docs  # noqa: F401 (fixture)

ALT_SCREEN_ON, ALT_SCREEN_OFF = b"\x1b[?1049h", b"\x1b[?1049l"


class PtyProc:
    """The CLI with a pseudo-terminal as stdin/stdout/stderr (120×40)."""

    def __init__(self, *args: str):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.before = termios.tcgetattr(slave)
        self.slave = slave
        env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
        self.proc = subprocess.Popen([sys.executable, "-m", "toolctl", *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=REPO, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        self.out = b""

    def read_until(self, pattern: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.out):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout}s; got {self.out[-2000:]!r}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    if self.proc.poll() is not None:
                        raise AssertionError(f"exited {self.proc.returncode}: {self.out[-2000:]!r}")
        return self.out

    def finish(self, timeout: float = 30) -> int:
        # Keep reading while waiting: a child that filled the pty's buffer (frames drawn
        # while this test was descheduled on a loaded machine) blocks in write() and could
        # neither see the key nor restore the terminal (TCSADRAIN waits for a reader).
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.proc.args, timeout)
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    pass
        code = self.proc.returncode
        while True:  # drain what it wrote last
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                break
            try:
                data = os.read(self.master, 65536)
            except OSError:
                break
            if not data:
                break
            self.out += data
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        os.close(self.master)
        os.close(self.slave)


@pytest.mark.parametrize("key", [b"q", b"\x03"], ids=["q", "ctrl-c"])
def test_top_refreshes_and_quits_cleanly_restoring_the_terminal(view_db, key):
    p = PtyProc("--db", str(view_db), "top", "--interval", "0.2", "--window", "15m",
                "--until", "2026-11-24T06:30:00Z")
    try:
        p.read_until(rb"frame 1\b")
        p.read_until(rb"frame 3\b")  # it refreshed at least twice
        assert ALT_SCREEN_ON in p.out and b"fetch" in p.out
        assert termios.tcgetattr(p.slave)[3] & termios.ICANON == 0  # cbreak while running
        os.write(p.master, key)
        assert p.finish() == 0
        tail = p.out[p.out.rindex(ALT_SCREEN_ON):]
        assert ALT_SCREEN_OFF in tail  # back to the normal screen
        assert b"Traceback" not in p.out and b"Interrupted" not in p.out
        assert termios.tcgetattr(p.slave) == p.before  # echo and line mode restored
    finally:
        p.close()


def test_top_without_a_terminal_prints_one_snapshot_and_exits_0(view_db):
    res = run_toolctl("--db", view_db, "top", "--interval", "0.1", "--window", "15m",
                      "--until", "2026-11-24T06:30:00Z", timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("toolctl top — last 15m") == 1
    assert "\x1b[" not in res.stdout


def _now_docs():
    """view_docs shifted so that their 30 minutes end one minute ago: `top` with its
    default until=now sees them, as an operator would during an incident."""
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=31)
    return view_docs(start), start + timedelta(minutes=30)


def test_top_against_a_live_serve_reads_through_the_collector(serve):
    docs, end = _now_docs()
    s = serve()
    r = s.post("/v1/tool-calls", ndjson(docs), NDJSON)
    assert r.status_code == 200 and r.json()["accepted"] == len(docs)
    res = run_toolctl("--db", s.db, "top", "--window", "15m", "--until", end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "--format", "json")
    assert res.returncode == 0, res.stderr
    assert s.proc.poll() is None  # the collector held the file all along
    snap = json.loads(res.stdout)
    known = known_live(docs, end - timedelta(minutes=15), end)
    assert {r["tool"]: (r["calls"], r["errors"], r["retries"], r["auth_failures"]) for r in snap["rows"]} == \
        {t: (k["calls"], k["errors"], k["retries"], k["auth_failures"]) for t, k in known.items()}
    assert snap["movers"][0] == "fetch"
    # Default window end (now, on the server) with a wide window sees every call.
    res = run_toolctl("--db", s.db, "top", "--window", "1h", "--once")
    assert res.returncode == 0, res.stderr
    assert re.search(r"│\s+fetch\s+│\s+[\d.]+\s+│\s+40\s+│", res.stdout), res.stdout
    # The live view too: a pty frame through the collector, then q.
    p = PtyProc("--db", str(s.db), "top", "--interval", "0.3", "--window", "1h")
    try:
        p.read_until(rb"frame 2\b")
        assert b"fetch" in p.out
        os.write(p.master, b"q")
        assert p.finish() == 0
    finally:
        p.close()
    assert s.proc.poll() is None
    # Stats --histogram goes through the collector too.
    res = run_toolctl("--db", s.db, "stats", "--histogram", "--tool", "fetch", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["count"] == sum(d["tool"] == "fetch" for d in docs)


def test_live_top_survives_a_busy_store_and_recovers(tmp_path, view_db):
    """Another process holding the store (an ingest) shows in the frame; top keeps going."""
    import shutil

    import duckdb

    db = tmp_path / "busy.duckdb"
    shutil.copy(view_db, db)
    holder = duckdb.connect(str(db))  # a writer in this process: top cannot open the file
    p = PtyProc("--db", str(db), "top", "--interval", "0.2", "--window", "15m",
                "--until", "2026-11-24T06:30:00Z")
    try:
        p.read_until(rb"frame 2: Error: ")
        holder.close()
        p.read_until(rb"fetch")  # the next refresh reads the store again
        os.write(p.master, b"q")
        assert p.finish() == 0
    finally:
        p.close()


def test_top_ends_on_sigterm_restoring_the_terminal(view_db):
    """`kill PID`, `timeout 60 toolctl top`: the default action of SIGTERM left the terminal on
    the alternate screen with the cursor hidden and echo off."""
    import signal

    p = PtyProc("--db", str(view_db), "top", "--interval", "0.2", "--window", "15m",
                "--until", "2026-11-24T06:30:00Z")
    try:
        p.read_until(rb"frame 2\b")
        p.proc.send_signal(signal.SIGTERM)
        assert p.finish() == 0
        tail = p.out[p.out.rindex(ALT_SCREEN_ON):]
        assert ALT_SCREEN_OFF in tail and b"\x1b[?25h" in tail  # normal screen, cursor shown
        assert b"Traceback" not in p.out
        assert termios.tcgetattr(p.slave) == p.before  # echo and line mode restored
    finally:
        p.close()
