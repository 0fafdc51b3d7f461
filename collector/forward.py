"""``toolctl ingest`` while ``toolctl serve`` holds the store: send the lines to it.

The files are read exactly as a local ingest reads them (directories, ``-``, gzip by
magic bytes) and sent to ``POST /v1/tool-calls`` in chunks that end at a newline, each
naming its source path and first line number, so the stored rows (source, line_no,
rejects) are the same as a local ingest would store. Each chunk is one transaction on
the server; re-running after an interruption stores nothing twice.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable

from collector.sources import expand_paths, open_source, progress_callback
from toolctl.models import IngestSummary
from toolctl.remote import FORWARD_CHUNK_BYTES, RemoteStore, ServerInfo, chunk_lines
from toolctl.errors import InputError


def forward_paths(server: ServerInfo, db_path: Path, paths: list[str], *,
                  chunk_bytes: int = FORWARD_CHUNK_BYTES, max_line_bytes: int | None = None,
                  progress: Callable[[int, int | None], None] | None = None) -> IngestSummary:
    """Send every line of ``paths`` to the collector; returns the same summary as ingest.

    Raises InputError for a missing path (before anything is sent) and RemoteError when
    the collector refuses or does not answer (what was acknowledged before is stored).
    """
    sources = expand_paths(paths)
    on_bytes = progress_callback(sources, progress)

    summary = IngestSummary()
    with RemoteStore(server, db_path) as remote:
        for source in sources:
            opened = open_source(source, on_bytes)
            counts = {"lines": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
            try:
                for first_line, data in chunk_lines(opened.stream, chunk_bytes):
                    res = remote.send_lines(data, source=source.name, first_line=first_line,
                                            kind=source.kind, max_line_bytes=max_line_bytes)
                    for key in counts:
                        counts[key] += res[key]
            except (EOFError, OSError, zlib.error) as exc:
                raise InputError(f"cannot read {source.name}: {exc}",
                                 hint="the lines before the damage were sent; fix the file and run again") from exc
            finally:
                opened.close()
            remote.record_source(source=source.name, sha256=opened.counter.sha256.hexdigest(),
                                 nbytes=opened.counter.nbytes, **counts)
            summary.files += 1
            summary.bytes += opened.counter.nbytes
            for key, value in counts.items():
                setattr(summary, key, getattr(summary, key) + value)
            summary.sources.append({"source": source.name, "format": "jsonl",
                                    "bytes": opened.counter.nbytes,
                                    "sha256": opened.counter.sha256.hexdigest(),
                                    "compressed": opened.compressed, "forwarded_to": server.url,
                                    **counts})
    return summary
