"""``toolctl serve --lake DIR``: append what the collector committed to the Parquet lake.

A 2xx still means "in the DuckDB store"; the lake follows. After a commit that stored rows,
the sink waits ``flush_seconds`` (so a burst of requests becomes one file per partition,
not one per request), then submits one export job to the writer queue: it exports every
(batch, hour) the store has not exported yet (``toolctl.lake.export``), in its own
transaction, so the lake lags the store by about ``flush_seconds`` plus one export. The
export's bookkeeping is in the store, so a restart (or a crash) resumes where the last
committed export ended; a failed export is retried after the next interval. On shutdown
the sink exports once more after the last request was answered.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from collector.writer_queue import Job, QueueClosedError, QueueFullError, WriteQueue


class LakeSink:
    """One thread that turns committed writes into lake exports through ``writes``."""

    def __init__(self, writes: WriteQueue, lake: Path, *, flush_seconds: float = 1.0):
        self.writes = writes
        self.lake = Path(lake)
        self.flush_seconds = flush_seconds
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="toolctl-lake", daemon=True)
        self.exports = 0
        self.files = 0
        self.failures = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._due.set()  # resume: export whatever an earlier run left behind
        self._thread.start()

    def notify(self, jobs: list[Job]) -> None:
        """on_commit hook (writer thread): rows were committed unless every job was our own."""
        if any(not getattr(job.run, "toolctl_lake", False) for job in jobs):
            self._due.set()

    def close(self) -> None:
        """Stop the thread, then export what is left (call before the write queue closes)."""
        self._stop.set()
        self._due.set()
        if self._thread.is_alive():
            self._thread.join()
        self.export_now()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._due.wait()
            if self._stop.wait(self.flush_seconds):
                return
            self._due.clear()
            if not self.export_now():
                self._due.set()  # retry after the next interval

    def export_now(self) -> bool:
        """Run one export through the writer; False when it failed (the store is unchanged)."""
        from toolctl.lake.export import export_pending

        def run(store: Any) -> Any:
            return export_pending(store, self.lake)

        run.toolctl_lake = True  # its commit does not make another export due
        run.toolctl_alone = True  # its own transaction, never merged into a burst
        run.toolctl_quiet = True  # no commit span for it in the collector's telemetry
        try:
            result = self.writes.submit(run, 0).result()
        except (QueueFullError, QueueClosedError) as exc:
            self.last_error = exc.message
            return False
        except Exception as exc:  # disk full, lake unwritable: the store keeps the rows
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            sys.stderr.write(f"toolctl serve: lake export to {self.lake} failed ({self.last_error}); "
                             f"retrying in {self.flush_seconds:g}s\n")
            sys.stderr.flush()
            return False
        self.exports += 1
        self.files += len(result.files)
        return True
