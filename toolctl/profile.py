"""Where a command spent its time: ``toolctl --profile`` / ``TOOLCTL_PROFILE=1``.

A tiny process-wide recorder. The CLI calls :func:`enable` first thing in ``main()``; the
store reports each statement it runs through :func:`query` and its open/close through
:func:`phase`. When profiling is off, every hook is one check of the module global
``ENABLED`` (no timing, no allocation). :func:`report` renders the timeline as plain text
for stderr: start-up (interpreter and imports, up to ``main()``), each recorded phase and
query (wall time, rows), the Python time between them, and what followed the last store
close (rendering the output).

``TOOLCTL_PROFILE=2`` (or ``--profile`` with ``TOOLCTL_PROFILE=2``) also asks DuckDB for the
operator profile of the slowest query and appends its hottest operators.

No terminal libraries here: the library layer must not import typer or rich.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

#: Read by the hooks; False costs one global lookup per statement.
ENABLED = False
#: 2 = also collect DuckDB's operator profile of the slowest query.
LEVEL = 0


@dataclass
class Event:
    label: str
    start: float
    end: float
    rows: int | None = None
    detail: str | None = None
    depth: int = 0  # inside how many phases (queries of a migration run inside "store open")
    thread: str | None = None  # None: the main thread; else the name of the thread that ran it


_events: list[Event] = []
_depth = 0
_main_at: float | None = None
_startup_s: float | None = None


def env_level(environ: dict[str, str] | None = None) -> int:
    """The profiling level TOOLCTL_PROFILE asks for (0 when unset, empty, 0, false or no)."""
    value = (environ if environ is not None else os.environ).get("TOOLCTL_PROFILE", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return 0
    return 2 if value == "2" else 1


def _process_age() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere). 10 ms resolution."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def enable(level: int = 1) -> None:
    """Start recording (idempotent). Call it as early as possible: it marks the end of start-up."""
    global ENABLED, LEVEL, _main_at, _startup_s
    if not ENABLED:
        _main_at = time.perf_counter()
        _startup_s = _process_age()
        _events.clear()
    ENABLED = True
    LEVEL = max(LEVEL, level)


def disable() -> None:
    """Stop recording and forget what was recorded."""
    global ENABLED, LEVEL, _main_at, _startup_s, _depth
    ENABLED, LEVEL, _main_at, _startup_s, _depth = False, 0, None, None, 0
    _events.clear()


@contextmanager
def phase(label: str) -> Iterator[None]:
    """Time a block as one named phase (a no-op when profiling is off)."""
    global _depth
    if not ENABLED:
        yield
        return
    start = time.perf_counter()
    ev = Event(label, start, start, depth=_depth)
    _events.append(ev)  # appended at its start: the report lists events in start order
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        ev.end = time.perf_counter()


def mark(label: str) -> None:
    """Record an instant (e.g. "store closed"): what follows it is measured from here."""
    if ENABLED:
        now = time.perf_counter()
        _events.append(Event(label, now, now, depth=_depth))


def query(sql: str, run: Callable[[], Any], rows_of: Callable[[Any], int | None] = len,
          explain: Callable[[], str | None] | None = None) -> Any:
    """Run ``run()`` (which executes and drains one statement) and record it.

    ``rows_of(result)`` gives the row count; ``explain`` (level 2 only) returns DuckDB's
    operator profile of the statement just run.
    """
    start = time.perf_counter()
    result = run()
    end = time.perf_counter()
    try:
        rows = rows_of(result)
    except TypeError:
        rows = None
    detail = explain() if (LEVEL >= 2 and explain is not None) else None
    # A helper thread's query (ingest parses ahead) is summarised apart: it overlaps the timeline.
    current = threading.current_thread()
    helper = None if current is threading.main_thread() else current.name
    _events.append(Event(describe_sql(sql), start, end, rows, detail,
                         _depth if helper is None else 0, thread=helper))
    return result


def describe_sql(sql: str) -> str:
    """A short name for a statement: its leading ``-- name:`` comment, else its first words."""
    for line in sql.strip().splitlines():
        line = line.strip()
        if line.startswith("--"):
            head = line[2:].strip()
            name = head.split(":", 1)[0].strip()
            if name and " " not in name:
                return f"query {name}"
            continue
        if line:
            return "query " + " ".join(line.split())[:60]
    return "query"


def summarize_duckdb_profile(doc: str, top: int = 8) -> str | None:
    """The hottest operators of DuckDB's JSON query profile, one line each."""
    import json

    try:
        tree = json.loads(doc)
    except ValueError:
        return None
    ops: list[tuple[float, str, int]] = []

    def walk(node: dict) -> None:
        timing = float(node.get("timing") or node.get("operator_timing") or 0.0)
        name = str(node.get("name") or node.get("operator_name") or node.get("type") or "?").strip()
        info = node.get("extra_info") or {}
        what = info.get("Table") or info.get("Groups") or info.get("Conditions") or info.get("CTE Name")
        if isinstance(what, list):
            what = ", ".join(map(str, what))
        label = f"{name} {str(what)[:60]}" if what else name
        ops.append((timing, label, int(node.get("intermediate_rows") or node.get("operator_cardinality") or 0)))
        for child in node.get("children") or ():
            walk(child)

    roots = tree.get("operator") or tree.get("children") or []
    for root in roots if isinstance(roots, list) else [roots]:
        walk(root)
    if not ops:
        return None
    ops.sort(reverse=True)
    return "\n".join(f"{t:8.3f} s  {label}  ({rows:,} rows)" for t, label, rows in ops[:top])


def events() -> list[Event]:
    """What was recorded so far, in order."""
    return list(_events)


def report(now: float | None = None) -> str:
    """The timeline as text lines (for stderr)."""
    end = now if now is not None else time.perf_counter()
    lines = []
    total_since_main = end - (_main_at or end)
    wall = total_since_main + (_startup_s or 0.0)
    lines.append(f"profile: {wall:.3f} s wall")
    if _startup_s is not None:
        lines.append(f"  {_startup_s:8.3f} s  start-up: interpreter and imports before main()")
    cursor = _main_at or end
    helpers = [ev for ev in _events if ev.thread is not None]
    for ev in _events:
        if ev.thread is not None:
            continue
        indent = "  " * ev.depth
        if ev.depth == 0:
            gap = ev.start - cursor
            if gap >= 0.0005:
                lines.append(f"  {gap:8.3f} s  python: arguments, imports, command logic")
        dur = ev.end - ev.start
        rows = "" if ev.rows is None else f"  ({ev.rows:,} rows)"
        if dur == 0 and ev.rows is None:
            lines.append(f"  {'':8}    {indent}{ev.label}")
        else:
            lines.append(f"  {dur:8.3f} s  {indent}{ev.label}{rows}")
        if ev.depth == 0:
            cursor = max(cursor, ev.end)
    tail = end - cursor
    if _events:
        lines.append(f"  {tail:8.3f} s  python: rendering the output")
    else:
        lines.append(f"  {tail:8.3f} s  python: the command (no store access recorded)")
    queries = [ev for ev in _events if ev.label.startswith("query") and ev.depth == 0 and ev.thread is None]
    if queries:
        qsum = sum(ev.end - ev.start for ev in queries)
        slow = max(queries, key=lambda ev: ev.end - ev.start)
        lines.append(f"  {len(queries)} queries, {qsum:.3f} s in DuckDB; slowest: {slow.label}")
        if slow.detail:
            lines.append("  DuckDB operator profile of the slowest query:")
            lines.extend("    " + line for line in slow.detail.splitlines())
    if helpers:
        lines.append("  at the same time, on other threads (not in the timeline above):")
        totals: dict[tuple[str, str], list[float]] = {}
        for ev in helpers:
            totals.setdefault((ev.thread or "", ev.label), []).append(ev.end - ev.start)
        for (thread, label), durations in sorted(totals.items(), key=lambda kv: -sum(kv[1])):
            lines.append(f"  {sum(durations):8.3f} s  {label}  ({len(durations)}x, thread {thread})")
    return "\n".join(lines) + "\n"
